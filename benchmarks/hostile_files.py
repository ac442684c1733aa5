"""Hostile files: what an attacker (or a damaged copy) hands a reader, read back through
h5py, h5dump and zarr in reader subprocesses (issue #22, items 1-7 and 9).

    nice -n 10 python benchmarks/hostile_files.py [--flips 270]

Cases, each on its own copy of a file saecodec wrote (HDF5 in the earliest and the 1.10
format, zarr v2 and v3; pure, bounded, and the model-free codec's bounded mode):

* substitution: a valid payload (its CRC intact) of another element type, another shape,
  another chunk position, or a bomb (a 55-byte payload claiming 16-64 Mi elements), put
  in a chunk's place (HDF5 ``write_direct_chunk``, the zarr chunk file);
* zarr metadata: every field of ``.zarray`` / ``zarr.json`` edited, and every key of the
  codec's configuration: unknown keys, bad encoder options, a zlib bomb as ``mask``, the
  model as a file path (a secret file, /etc/passwd, /proc/self/environ, a crafted model
  file that asks for a 1 GB network, a file named like a shipped model) or another model;
* HDF5 metadata flips: one random bit of the file outside the chunks' bytes.

Outcomes: ``error`` (the reader raised; h5dump exited non-zero), ``identical`` (the data of
the file as written), ``documented`` (other data, a limit the README states: no container
gives a chunk's position; zarr format 2 gives the codec no chunk spec; edits that are zarr's
semantics), ``wrong`` (other data, silently), ``crash``, ``hang``. Each reader process
resets its peak resident memory before each case: a bomb's peak is compared with the
container's chunk (the least of three reads: a bomb allocates its claim every time, the
allocator's own noise in a long-lived reader does not). Every message (exception and
stderr) is searched for bytes of the files named as models. Writes benchmarks/results/hostile_files.{json,md}; exits non-zero on a
silent wrong read, a crash, a hang, a bomb above 2x its chunk where the container gives the
chunk, or a leaked byte.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
MODELS = ROOT / "tests" / "fixture" / "models"
MODEL = "fixture-16"
SHAPE, CHUNKS = (8, 40, 37), (2, 40, 37)
# 16 MiB chunks: a bomb's claim (4-16x) stands out, and a long-lived reader's allocator noise
# (0-8 MiB measured on refused zarr v3 bombs) stays well below 2x the chunk
BOMB_SHAPE, BOMB_CHUNKS = (4, 2048, 2048), (1, 2048, 2048)
SETTINGS = {"pure": {"model": MODEL}, "bounded": {"model": MODEL, "error_bound": 0.5},
            "model-free": {"model": None, "error_bound": 0.5}}  # model None: the model-free codec (#20)
SECRET = b"root:x:0:0:TOPSECRET:/root:/bin/bash\n"
ZARR_SEMANTICS = "zarr semantics (README: array shape, separator, order, filters)"
NO_POSITION = "no container gives a chunk's position (README)"
ZARR2 = "zarr format 2 gives the codec no chunk spec (README)"
EARLIEST = "HDF5's earliest format: its v1 B-tree chunk index has no checksum (README; saecodec writes 1.10)"


# -- files ------------------------------------------------------------------------------------
def write_hdf5(path: Path, x, chunks, opts, libver) -> None:
    import h5py

    import saecodec.hdf5

    with h5py.File(path, "w", libver=libver) as f:
        f.create_dataset("frames", data=x, chunks=chunks, **saecodec.hdf5.SAE(**opts))


def write_zarr(path: Path, fmt: str, x, chunks, opts) -> None:
    import zarr

    from saecodec import SAECodec, SAEZarrCodec

    if fmt == "zarr2":
        z = zarr.create(shape=x.shape, chunks=chunks, dtype=x.dtype, store=str(path), zarr_format=2,
                        compressor=SAECodec(**opts), fill_value=0)
    else:
        z = zarr.create_array(store=str(path), shape=x.shape, chunks=chunks, dtype=x.dtype, compressors=None,
                              serializer=SAEZarrCodec(**opts), fill_value=0)
    z[...] = x


CONTAINERS = {"hdf5 earliest": ("hdf5", "earliest"), "hdf5 1.10 (compress, decompress)": ("hdf5", ("v110", "v110")),
              "zarr2": ("zarr", "zarr2"), "zarr3": ("zarr", "zarr3")}


def write(kind: str, path: Path, x, chunks, opts) -> None:
    what, arg = CONTAINERS[kind]
    if what == "hdf5":
        write_hdf5(path, x, chunks, opts, arg)
    else:
        write_zarr(path, arg, x, chunks, opts)


def put_chunk(kind: str, path: Path, index: tuple, payload: bytes) -> None:
    import h5py

    if CONTAINERS[kind][0] == "hdf5":
        with h5py.File(path, "r+") as f:
            f["frames"].id.write_direct_chunk(tuple(i * c for i, c in zip(index, f["frames"].chunks)), payload)
    else:
        chunk_file(kind, path, index).write_bytes(payload)


def chunk_file(kind: str, path: Path, index: tuple) -> Path:
    return path / ".".join(map(str, index)) if kind == "zarr2" else path.joinpath("c", *map(str, index))


def get_chunk(kind: str, path: Path, index: tuple) -> bytes:
    import h5py

    if CONTAINERS[kind][0] == "hdf5":
        with h5py.File(path, "r") as f:
            return f["frames"].id.read_direct_chunk(tuple(i * c for i, c in zip(index, f["frames"].chunks)))[1]
    return chunk_file(kind, path, index).read_bytes()


# -- cases ------------------------------------------------------------------------------------
class Cases:
    def __init__(self, tmp: Path):
        self.tmp, self.items, self.refs = tmp, [], {}

    def add(self, category: str, container: str, what: str, path: Path, ref: str, documented: str | None = None,
            chunk_bytes: int | None = None, readers=None):
        readers = readers or (("h5py", "h5dump") if CONTAINERS[container][0] == "hdf5" else ("zarr",))
        for reader in readers:
            self.items.append({"id": len(self.items), "category": category, "container": container, "what": what,
                               "reader": reader, "path": str(path), "ref": ref, "documented": documented,
                               "chunk_bytes": chunk_bytes})

    def copy(self, src: Path) -> Path:
        dst = self.tmp / f"case{len(self.items):05d}{src.suffix}"
        (shutil.copytree if src.is_dir() else shutil.copyfile)(src, dst)
        return dst


def substitution_cases(cases: Cases, bases: dict, x) -> None:
    """Valid payloads in another chunk's place (items 1, 2, 4)."""
    from saecodec import SAECodec

    clean = np.nan_to_num(x[:2])
    for (container, setting), (path, ref) in bases.items():
        codec = SAECodec(**SETTINGS[setting])
        zarr2 = container == "zarr2"
        for dt in ("f8", "f2", "i4", "u4", "i2", "u2", "u1", "i8"):
            case = cases.copy(path)
            put_chunk(container, case, (0, 0, 0), codec.encode(clean.astype(dt)))
            cases.add("substitution", container, f"payload of dtype {dt} [{setting}]", case, ref,
                      ZARR2 if zarr2 and np.dtype(dt).itemsize == 4 else None)
        for shape in ((2, 37, 40), (1, 80, 37), (1, 40, 37), (4, 40, 37), (2, 40, 38)):
            case = cases.copy(path)
            y = np.resize(clean.reshape(-1), shape)
            put_chunk(container, case, (0, 0, 0), codec.encode(np.ascontiguousarray(y)))
            same_count = int(np.prod(shape)) == int(np.prod(CHUNKS))
            cases.add("substitution", container, f"payload of shape {shape} [{setting}]", case, ref,
                      ZARR2 if zarr2 and same_count else None)
        case = cases.copy(path)
        put_chunk(container, case, (0, 0, 0), get_chunk(container, path, (1, 0, 0)))
        cases.add("substitution", container, f"another chunk's payload (position) [{setting}]", case, ref,
                  NO_POSITION)


def bomb_cases(cases: Cases, bomb_bases: dict) -> None:
    """A 55-byte payload (a constant chunk, whose symbols cost no bits) claiming a huge shape
    in every chunk's place (item 5)."""
    import hostile_payloads as hp
    from saecodec import SAECodec

    chunk_bytes = int(np.prod(BOMB_CHUNKS)) * 4
    for (container, setting), (path, ref) in bomb_bases.items():
        small = SAECodec(**SETTINGS[setting]).encode(np.zeros((1, 16, 16), "f4"))
        for claim in ((1, 4096, 4096), (1, 8192, 8192)):
            case = cases.copy(path)
            bomb = hp.reshape(small, claim, tile=None if SETTINGS[setting]["model"] else claim[-2:])
            for i in range(BOMB_SHAPE[0]):
                put_chunk(container, case, (i, 0, 0), bomb)
            cases.add("bomb", container, f"{len(bomb)}-byte {setting} payload claiming {claim} float32 in every "
                      "chunk", case, ref, ZARR2 if container == "zarr2" else None, chunk_bytes)


def zarr_metadata_cases(cases: Cases, bases: dict, secrets: dict) -> None:
    """Every field of the array metadata, and every key of the codec config (items 2, 6, 7, 9)."""
    for (container, setting), (path, ref) in bases.items():
        if CONTAINERS[container][0] != "zarr" or setting == "pure":
            continue
        v2 = container == "zarr2"
        meta_file = path / (".zarray" if v2 else "zarr.json")
        meta = json.loads(meta_file.read_text())

        def edited(what, fn, documented=None):
            case = cases.copy(path)
            doc = json.loads(json.dumps(meta))
            fn(doc)
            (case / meta_file.name).write_text(json.dumps(doc))
            what = what if setting == "bounded" else f"{what} [{setting}]"
            cases.add("zarr metadata" if not what.startswith("config") else "codec config", container, what, case,
                      ref, documented)

        def config(doc):
            return doc["compressor"] if v2 else doc["codecs"][0]["configuration"]

        def setter(key, value, where=None):
            def fn(doc):
                target = config(doc) if where == "config" else doc if where is None else where(doc)
                target[key] = value
            return fn

        if v2:
            fields = [("shape", [16, 40, 37], ZARR_SEMANTICS), ("shape", [4, 40, 37], ZARR_SEMANTICS),
                      ("chunks", [2, 37, 40], ZARR2), ("chunks", [1, 40, 37], None),
                      ("order", "F", ZARR_SEMANTICS), ("dimension_separator", "/", ZARR_SEMANTICS),
                      ("filters", [{"id": "delta", "dtype": "<f4"}], ZARR_SEMANTICS), ("fill_value", 5, None),
                      ("zarr_format", 3, None)]
            fields += [("dtype", d, ZARR2 if np.dtype(d).itemsize == 4 else None)
                       for d in ("<i4", "<u4", ">f4", "<f2", "|u1", "<f8", "<i8")]
        else:
            fields = [("shape", [16, 40, 37], ZARR_SEMANTICS), ("shape", [4, 40, 37], ZARR_SEMANTICS),
                      ("fill_value", 5, None), ("node_type", "group", None),
                      ("attributes", {"x": 1}, None), ("dimension_names", ["a", "b", "c"], None),
                      ("storage_transformers", [{"name": "x"}], None)]
            fields += [("data_type", d, None) for d in ("int32", "uint32", "float16", "uint8", "float64", "int64")]
        for key, value, documented in fields:
            edited(f"{key} = {json.dumps(value)}", setter(key, value), documented)
        if not v2:
            edited("chunk_grid chunk_shape = [2, 37, 40]",
                   setter("chunk_shape", [2, 37, 40], lambda d: d["chunk_grid"]["configuration"]))
            edited("chunk_grid chunk_shape = [1, 40, 37]",
                   setter("chunk_shape", [1, 40, 37], lambda d: d["chunk_grid"]["configuration"]))
            edited('chunk_key_encoding separator = "."',
                   setter("separator", ".", lambda d: d["chunk_key_encoding"]["configuration"]), ZARR_SEMANTICS)
            edited("codecs: a transpose codec first", lambda d: d["codecs"].insert(
                0, {"name": "transpose", "configuration": {"order": [0, 2, 1]}}), ZARR_SEMANTICS)
        bomb = base64.b64encode(_zlib_zeros(256 << 20)).decode()
        for key, value in [("newer_option", 3), ("bound_mode", "bogus"), ("level", -3), ("predictor", "x"),
                           ("latent_dtype", "float8"), ("error_bound", "abc"), ("mask_values", list(range(40))),
                           ("max_error", -1), ("mask_below", "nan"), ("model_name", {"a": 1}),
                           ("mask", {"shape": [3], "bits": "!!"}),
                           ("mask", {"shape": [4096, 4096], "bits": bomb}),
                           ("mask", {"shape": [1 << 20, 1 << 20], "bits": bomb})]:
            what = f"config mask: zlib bomb (256 MiB) stated as {value['shape']}" \
                if key == "mask" and len(value["bits"]) > 10 else f"config {key} = {json.dumps(value)[:60]}"
            edited(what, setter(key, value, "config"))
        for label, model in [("another model's identity", secrets["other identity"]),
                             ("a model name not installed", "no-such-model"), ("garbage", "x" * 64),
                             *[(f"file path: {k}", v) for k, v in secrets["paths"].items()]]:
            edited(f"config model = {label}", setter("model", model, "config"))


def _zlib_zeros(n: int) -> bytes:
    c, block = zlib.compressobj(9), bytes(1 << 20)
    return b"".join(c.compress(block) for _ in range(n >> 20)) + c.flush()


def flip_cases(cases: Cases, bases: dict, n: int, rng) -> None:
    """One random bit outside the chunks' bytes of an HDF5 file (item 3)."""
    import h5py

    for (container, setting), (path, ref) in bases.items():
        if CONTAINERS[container][0] != "hdf5" or setting != "bounded":
            continue
        with h5py.File(path, "r") as f:
            ds = f["frames"]
            data = set()
            for i in range(ds.id.get_num_chunks()):
                info = ds.id.get_chunk_info(i)
                data.update(range(info.byte_offset, info.byte_offset + info.size))
        raw = path.read_bytes()
        meta = np.array([i for i in range(len(raw)) if i not in data])
        for at in rng.choice(meta, size=min(n, len(meta)), replace=False):
            case = cases.copy(path)
            b = bytearray(raw)
            b[int(at)] ^= 1 << int(rng.integers(8))
            case.write_bytes(bytes(b))
            cases.add("metadata flip", container, f"bit flip at byte {int(at)}", case, ref,
                      EARLIEST if container == "hdf5 earliest" else None, readers=("h5py",))


# -- the model files a config may name --------------------------------------------------------
def model_files(tmp: Path) -> dict:
    """Files a hostile config names as its model, and what of them must never be quoted."""
    import dataclasses

    from safetensors.torch import load as st_load
    from safetensors.torch import save as st_save

    from saecodec import model_store
    from saecodec.modelfile import METADATA_KEY, canonical_json

    secret = tmp / "passwd"
    secret.write_bytes(SECRET * 50)
    model = model_store.load(MODEL)
    meta = model.metadata()
    meta["architecture"] = {**meta["architecture"], "m": 32768, "n": 4096}
    meta["frame_shape"] = [64, 64]
    crafted = tmp / "crafted.safetensors"
    crafted.write_bytes(st_save(st_load(model.to_bytes()), metadata={METADATA_KEY: canonical_json(meta)}))
    impostor = tmp / "impostor.safetensors"
    dataclasses.replace(model, name="sas-conv-h", identity=None, path=None).save(impostor)
    paths = {"secret file": str(secret), "/etc/passwd": "/etc/passwd", "/proc/self/environ": "/proc/self/environ",
             "crafted 1 GB architecture": str(crafted), "file named sas-conv-h": str(impostor),
             "relative path": "../passwd"}
    quoted = {"TOPSECRET", "root:x:0", str(int.from_bytes(SECRET[:8], "little"))}
    for p in ("/etc/passwd", "/proc/self/environ"):
        try:
            head = Path(p).read_bytes()[:8]
            quoted |= {head.decode("latin-1"), str(int.from_bytes(head, "little"))}
        except OSError:
            pass
    other = model_store.find("sas64-l1").identity
    return {"paths": paths, "quoted": sorted(q for q in quoted if len(q) >= 6), "other identity": other}


# -- readers ----------------------------------------------------------------------------------
READER = r'''
import ctypes, json, os, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
answers = os.fdopen(os.dup(1), "w")
err = open(sys.argv[1], "w+b")
os.dup2(err.fileno(), 2)
os.dup2(err.fileno(), 1)
trim = ctypes.CDLL("libc.so.6").malloc_trim
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
import h5py, zarr
import saecodec  # registers the plugin with h5py, as a user's import does
def read(c):
    if c["reader"] == "h5py":
        with h5py.File(c["path"], "r") as f:
            return f["frames"][...]
    return zarr.open_array(c["path"], mode="r")[...]
def measured(c):
    trim(0)
    base = status("VmRSS")
    open("/proc/self/clear_refs", "w").write("5")
    try:
        back = read(c)
        ref = np.load(c["ref"])
        same = back.shape == ref.shape and back.dtype == ref.dtype and np.array_equal(back, ref, equal_nan=True)
        res = {"outcome": "identical" if same else "wrong"}
    except Exception as e:
        res = {"outcome": "error", "error": type(e).__name__, "message": str(e)[:400]}
    res["peak"] = status("VmHWM") - base
    return res
for line in sys.stdin:
    c = json.loads(line)
    res = measured(c)
    if c.get("chunk_bytes"):  # a bomb allocates its claim every time; the allocator's noise does not
        peaks = [res["peak"]] + [measured(c)["peak"] for _ in range(2)]
        res["peak"], res["peaks"] = min(peaks), peaks
    err.seek(0)
    said = err.read().decode(errors="replace")
    res["stderr"] = "\n".join(ln for ln in said.splitlines() if "saecodec" in ln)[:400]
    err.seek(0)
    err.truncate()
    if c.get("shadow"):
        from saecodec import SAECodec, model_store
        res["shadow"] = SAECodec("sas-conv-h").model == model_store.find("sas-conv-h", ).identity
    res["id"] = c["id"]
    answers.write(json.dumps(res) + "\n")
    answers.flush()
'''


def run_readers(cases: list, reader: Path, tmp: Path, env, timeout: float) -> dict:
    """Python readers, many cases per process; a death or a hang costs the case in progress."""
    from fault_injection import serve

    results = {}
    todo = [c for c in cases if c["reader"] != "h5dump"]
    while todo:
        with open(tmp / "reader.log", "w+") as log:
            answers, outcome, returncode = serve([sys.executable, str(reader), str(tmp / "reader.stderr")], todo,
                                                 env, timeout, log)
        results.update(answers)
        if outcome is None:
            break
        bad = todo[len(answers)]
        results[bad["id"]] = {"id": bad["id"], "outcome": outcome, "returncode": returncode}
        todo = todo[len(answers) + 1:]
    return results


def run_h5dump(cases: list, tmp: Path, env, timeout: float) -> dict:
    h5dump = shutil.which("h5dump")
    results = {}
    for c in cases:
        if c["reader"] != "h5dump":
            continue
        if h5dump is None:
            results[c["id"]] = {"id": c["id"], "outcome": "skipped"}
            continue
        out = tmp / "dump.bin"
        out.unlink(missing_ok=True)
        try:
            p = subprocess.run([h5dump, "-d", "frames", "-b", "LE", "-o", str(out), c["path"]], capture_output=True,
                               text=True, env=env, timeout=timeout)
            if p.returncode < 0:
                r = {"outcome": "crash", "returncode": p.returncode}
            elif p.returncode > 0:
                r = {"outcome": "error", "error": f"h5dump exit {p.returncode}",
                     "stderr": "\n".join(ln for ln in p.stderr.splitlines() if "saecodec" in ln)[:400]}
            else:
                ref = np.load(c["ref"])
                back = np.fromfile(out, ref.dtype.newbyteorder("<")) if out.exists() else np.zeros(0)
                same = back.size == ref.size and np.array_equal(back.reshape(ref.shape), ref, equal_nan=True)
                r = {"outcome": "identical" if same else "wrong"}
        except subprocess.TimeoutExpired:
            r = {"outcome": "hang"}
        r["id"] = c["id"]
        results[c["id"]] = r
    return results


# -- report -----------------------------------------------------------------------------------
def classify(c: dict, r: dict) -> str:
    if r["outcome"] == "wrong" and c["documented"]:
        return "documented"
    return r["outcome"]


def summarise(cases: list, results: dict, quoted: list) -> dict:
    table, leaks, bombs, wrong, documented = {}, [], [], [], Counter()
    for c in cases:
        r = results[c["id"]]
        kind = classify(c, r)
        row = table.setdefault(f"{c['category']} | {c['container']} | {c['reader']}", Counter())
        row[kind] += 1
        row["cases"] += 1
        text = " ".join(str(r.get(k, "")) for k in ("message", "stderr"))
        if any(q in text for q in quoted):
            leaks.append({**c, **r})
        if kind == "wrong":
            wrong.append({"what": c["what"], "container": c["container"], "reader": c["reader"]})
        if kind == "documented":
            documented[c["documented"]] += 1
        if c["chunk_bytes"] and "peak" in r:
            bombs.append({"container": c["container"], "reader": c["reader"], "what": c["what"],
                          "outcome": kind, "peak_MiB": round(r["peak"] / 2**20, 1),
                          "reads_MiB": [round(p / 2**20, 1) for p in r.get("peaks", [r["peak"]])],
                          "x_chunk": round(r["peak"] / c["chunk_bytes"], 2), "container_gives_chunk": not c["documented"]})
    total = Counter()
    for row in table.values():
        total.update(row)
    config = [{"what": c["what"], "container": c["container"], "outcome": classify(c, results[c["id"]]),
               "peak_MiB": round(results[c["id"]].get("peak", 0) / 2**20, 1),
               "message": (results[c["id"]].get("message") or "")[:160]}
              for c in cases if c["category"] == "codec config"]
    return {"by_set": {k: dict(v) for k, v in sorted(table.items())}, "total": dict(total), "wrong": wrong,
            "documented": dict(documented), "leaks": leaks, "bombs": bombs, "config": config}


def markdown(res: dict) -> str:
    s = res["summary"]
    cols = ("cases", "error", "identical", "documented", "wrong", "crash", "hang")
    out = ["# Hostile files", "", f"Command: `{res['command']}` ({res['date']}, {res['seconds']} s, code {res['code']})",
           "", __doc__.split("\n\n", 2)[2].strip(), "",
           "| category, container, reader | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, row in list(s["by_set"].items()) + [("**total**", s["total"])]:
        out.append(f"| {name} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |")
    out += ["", f"Silent wrong reads: {len(s['wrong'])}" + "".join(f"\n* {w}" for w in s["wrong"]), "",
            "Documented (other data, a limit the README states):", ""]
    out += [f"* {k}: {v}" for k, v in s["documented"].items()]
    out += ["", f"Messages quoting bytes of a file named as a model: {len(s['leaks'])}", "",
            "## Bombs: peak resident memory of the reader during the read, above its memory before", "",
            f"Container chunk: {np.prod(BOMB_CHUNKS) * 4 >> 20} MiB (float32, {BOMB_CHUNKS}); four chunks, each "
            "replaced by the bomb.", "",
            "| container | reader | payload | outcome | peak MiB (least) | x chunk | each read MiB |",
            "|---|---|---|---|---|---|---|"]
    out += [f"| {b['container']} | {b['reader']} | {b['what']} | {b['outcome']} | {b['peak_MiB']} | {b['x_chunk']} | "
            f"{', '.join(map(str, b.get('reads_MiB', [])))} |" for b in s["bombs"]]
    out += ["", "## Codec config edits (zarr)", "", "| container | edit | outcome | peak MiB | message |",
            "|---|---|---|---|---|"]
    out += [f"| {c['container']} | {c['what']} | {c['outcome']} | {c['peak_MiB']} | {c['message'].replace('|', '/')} |"
            for c in s["config"]]
    out += ["", f"A file named `sas-conv-h` read as a config's model left `SAECodec('sas-conv-h')` the shipped "
                f"model afterwards: {res['shadow_ok']}"]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from fault_injection import code, frames

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flips", type=int, default=270, help="metadata bit flips per HDF5 format")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "hostile_files")
    args = ap.parse_args(argv)
    os.environ["SAECODEC_MODEL_PATH"] = str(MODELS)
    import saecodec.hdf5

    env = {**os.environ, "HDF5_PLUGIN_PATH": str(saecodec.hdf5.plugin_dir()), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        x = frames()
        bases, bomb_bases = {}, {}
        for container in CONTAINERS:
            for setting, opts in SETTINGS.items():
                path = tmp / f"{container.split()[0]}-{setting}-{len(bases)}{'.h5' if 'hdf5' in container else '.zarr'}"
                write(container, path, x, CHUNKS, opts)
                ref = tmp / f"ref-{len(bases)}.npy"
                np.save(ref, _read_back(container, path))
                bases[(container, setting)] = (path, str(ref))
            for setting in ("bounded", "model-free"):
                path = tmp / f"bomb-{len(bomb_bases)}{'.h5' if 'hdf5' in container else '.zarr'}"
                xb = np.random.default_rng(1).uniform(1, 100, BOMB_SHAPE).astype("f4")
                write(container, path, xb, BOMB_CHUNKS, SETTINGS[setting])
                ref = tmp / f"bombref-{len(bomb_bases)}.npy"
                np.save(ref, _read_back(container, path))
                bomb_bases[(container, setting)] = (path, str(ref))
        secrets = model_files(tmp)
        cases = Cases(tmp)
        substitution_cases(cases, bases, x)
        bomb_cases(cases, bomb_bases)
        zarr_metadata_cases(cases, bases, secrets)
        flip_cases(cases, bases, args.flips, rng)
        shadow = dict(cases.items[-1])
        cases.items.append({**shadow, "id": len(cases.items), "category": "shadow check", "shadow": True,
                            "path": bases[("zarr3", "bounded")][0].as_posix(), "ref": bases[("zarr3", "bounded")][1],
                            "reader": "zarr", "container": "zarr3", "what": "clean read after the hostile ones",
                            "documented": None, "chunk_bytes": None})
        print(f"{len(cases.items)} cases", flush=True)
        reader = tmp / "reader.py"
        reader.write_text(READER)
        results = run_readers(cases.items, reader, tmp, env, args.timeout)
        results.update(run_h5dump(cases.items, tmp, env, args.timeout))
    summary = summarise(cases.items, results, secrets["quoted"])
    res = {"command": "python benchmarks/hostile_files.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.time() - t0), "code": code(),
           "shadow_ok": bool(results[cases.items[-1]["id"]].get("shadow")), "summary": summary}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    t = summary["total"]
    over = [b for b in summary["bombs"] if b["container_gives_chunk"] and b["x_chunk"] > 2]
    return 1 if t.get("wrong") or t.get("crash") or t.get("hang") or over or summary["leaks"] or \
        not res["shadow_ok"] else 0


def _read_back(container: str, path: Path) -> np.ndarray:
    import h5py
    import zarr

    if CONTAINERS[container][0] == "hdf5":
        with h5py.File(path, "r") as f:
            return f["frames"][...]
    return zarr.open_array(str(path), mode="r")[...]


if __name__ == "__main__":
    sys.exit(main())
