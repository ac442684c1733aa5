"""Fault injection: random bit flips and byte overwrites inside the chunks of HDF5 and Zarr
(format 2 and 3) files, pure and error-bounded, read back through h5py, zarr and h5dump in
subprocesses with timeouts.

    nice -n 10 python benchmarks/fault_injection.py --cases 10000

Each case corrupts one chunk of one file in place (the chunk's bytes are found through
HDF5's chunk index or the chunk file), reads the whole array back in a reader process and
restores the chunk. Outcomes: ``error`` (the reader raised; h5dump exited non-zero),
``identical`` (the data read equals the uncorrupted file's), ``wrong`` (read without error,
different data), ``crash`` (the reader process died, or exited abnormally) and ``hang``
(no answer within the timeout). A reader process handles a batch of cases and reports
each as it finishes; when one dies or hangs, the batch goes on in a new process. Writes
benchmarks/results/fault_injection.{json,md}; exits non-zero on any wrong read, crash or hang.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "fixture" / "models"
MODEL = "fixture-16"
SHAPE, CHUNKS = (8, 40, 37), (2, 40, 37)


def frames() -> np.ndarray:
    """Blobs the fixture model knows and Poisson counts it does not (the gate falls back)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import blobs

    rng = np.random.default_rng(0)
    x = np.empty(SHAPE, np.float32)
    x[::2] = blobs(SHAPE[0] // 2, shape=SHAPE[1:], seed=3)
    x[1::2] = rng.poisson(rng.uniform(2, 200, (SHAPE[0] // 2, 1, 1)) * np.ones((SHAPE[0] // 2,) + SHAPE[1:]))
    x[0, 4:8, 4:20] = np.nan
    return x


SETTINGS = {"pure": {}, "bounded": {"error_bound": 0.5}}


def write_files(d: Path) -> list[dict]:
    """One file per container and setting; returns their descriptions with each chunk's
    (path, offset, size) and the uncorrupted decoded data."""
    import h5py
    import zarr

    import saecodec.hdf5
    from saecodec import SAECodec, SAEZarrCodec

    x = frames()
    out = []
    for setting, opts in SETTINGS.items():
        path = d / f"{setting}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("frames", data=x, chunks=CHUNKS, **saecodec.hdf5.SAE(model=MODEL, **opts))
        with h5py.File(path, "r") as f:
            ds = f["frames"]
            chunks = [(str(path), int(c.byte_offset), int(c.size))
                      for c in (ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks()))]
            ref = ds[...]
        out.append({"name": f"hdf5 {setting}", "kind": "hdf5", "path": str(path), "chunks": chunks})
        np.save(d / f"hdf5 {setting}.npy", ref)
        for fmt_, make in (("zarr2", lambda p: zarr.create(shape=x.shape, chunks=CHUNKS, dtype="f4", store=p,
                                                           zarr_format=2, compressor=SAECodec(MODEL, **opts))),
                           ("zarr3", lambda p: zarr.create_array(store=p, shape=x.shape, chunks=CHUNKS, dtype="f4",
                                                                 serializer=SAEZarrCodec(model=MODEL, **opts),
                                                                 compressors=None))):
            p = d / f"{setting}.{fmt_}"
            z = make(str(p))
            z[...] = x
            files = sorted(q for q in p.rglob("*") if q.is_file() and q.name[0] != "." and q.name != "zarr.json")
            chunks = [(str(q), 0, q.stat().st_size) for q in files]
            assert len(chunks) == len(out[-1]["chunks"]), (p, chunks)
            out.append({"name": f"{fmt_} {setting}", "kind": "zarr", "path": str(p), "chunks": chunks})
            np.save(d / f"{fmt_} {setting}.npy", zarr.open_array(str(p), mode="r")[...])
    return out


READER = r'''
import json, sys, os
import numpy as np
kind, path, ref_path = sys.argv[1], sys.argv[2], sys.argv[3]
ref = np.load(ref_path)
# The HDF5 filter reports why it failed on stderr (h5py only says 'filter returned failure'):
# fd 2 goes to a file, and each case reads what its read wrote there.
# Answers go out on a copy of stdout; anything else written to fd 1 (by any library) goes to
# that file too, so it can never garble an answer.
answers = os.fdopen(os.dup(1), "w")
err = open(ref_path + ".stderr", "w+b")
os.dup2(err.fileno(), 2)
os.dup2(err.fileno(), 1)
if kind == "hdf5":
    import h5py
    def read():
        with h5py.File(path, "r") as f:
            return f["frames"][...]
else:
    import zarr
    def read():
        return zarr.open_array(path, mode="r")[...]
for line in sys.stdin:
    case = json.loads(line)
    with open(case["file"], "r+b") as fh:
        fh.seek(case["at"])
        old = fh.read(len(case["new"]) // 2)
        fh.seek(case["at"])
        fh.write(bytes.fromhex(case["new"]))
    try:
        try:
            back = read()
            same = back.shape == ref.shape and np.array_equal(back, ref, equal_nan=True)
            res = {"outcome": "identical" if same else "wrong"}
        except Exception as e:
            res = {"outcome": "error", "error": type(e).__name__, "message": str(e)[:160]}
            err.seek(0)
            said = [ln for ln in err.read().decode(errors="replace").splitlines() if "saecodec" in ln
                    and "Warning" not in ln]
            if said:
                res["stderr"] = said[0][:160]
        err.seek(0)
        err.truncate()
    finally:
        with open(case["file"], "r+b") as fh:
            fh.seek(case["at"])
            fh.write(old)
    res["id"] = case["id"]
    answers.write(json.dumps(res) + "\n")
    answers.flush()
'''


def make_cases(files: list[dict], n: int, rng) -> list[dict]:
    cases = []
    for i in range(n):
        f = files[i % len(files)]
        path, start, size = f["chunks"][rng.integers(len(f["chunks"]))]
        with open(path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(size)
        kind = ("bit flip", "byte overwrite", "16 bytes overwritten", "8 bytes at the end")[rng.integers(4)]
        if kind == "bit flip":
            at = int(rng.integers(size))
            new = bytes([chunk[at] ^ (1 << int(rng.integers(8)))])
        elif kind == "byte overwrite":
            at = int(rng.integers(size))
            new = bytes([(chunk[at] + int(rng.integers(1, 256))) % 256])
        else:
            k = min(16 if kind.startswith("16") else 8, size)
            at = int(rng.integers(size - k + 1)) if kind.startswith("16") else size - k
            new = bytes(rng.integers(0, 256, k, dtype=np.uint8))
            if new == chunk[at:at + k]:
                new = bytes([new[0] ^ 1]) + new[1:]
        cases.append({"id": i, "set": f["name"], "kind": kind, "file": path, "at": start + at, "new": new.hex(),
                      "offset_in_chunk": at, "chunk_size": size})
    return cases


def serve(cmd: list, todo: list, env, timeout: float, log) -> tuple[dict, str | None, int]:
    """One reader process ``cmd`` over the cases ``todo`` (a JSON line each in, a JSON answer
    with the case's ``id`` each out), each answer awaited at most ``timeout`` seconds (the
    first 3x: it waits for imports). Returns the answers by id, ``"hang"`` or ``"crash"`` when
    the process stopped answering (the case in progress is ``todo[len(answers)]``), and its
    return code (also used by benchmarks/hostile_files.py)."""
    import queue
    import threading

    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout] + [lines.put(None)], daemon=True).start()
    proc.stdin.write("".join(json.dumps(c) + "\n" for c in todo))
    proc.stdin.close()
    results, outcome = {}, None
    while len(results) < len(todo):
        try:
            line = lines.get(timeout=timeout * (3 if not results else 1))
        except queue.Empty:
            proc.kill()
            outcome = "hang"
            break
        if line is None:
            outcome = "crash"
            break
        r = json.loads(line)
        results[r["id"]] = r
        if len(results) % 100 == 0:
            print(f"  {len(results)}/{len(todo)}", flush=True)
    proc.wait()
    return results, outcome, proc.returncode


def run_batches(files, cases, reader: Path, tmp: Path, env, timeout: float, batch: int) -> dict:
    """Python readers: many cases per process, each answer awaited at most ``timeout``
    seconds; a death or hang costs the case in progress, and the batch goes on in a new process."""
    results = {}
    by_set = {}
    for c in cases:
        by_set.setdefault(c["set"], []).append(c)
    for f in files:
        todo = list(by_set.get(f["name"], []))
        while todo:
            part, todo = todo[:batch], todo[batch:]
            while part:
                log = open(tmp / "reader.log", "w+")  # what the reader says before it redirects fd 2
                answers, outcome, returncode = serve([sys.executable, str(reader), f["kind"], f["path"],
                                                      str(tmp / f"{f['name']}.npy")], part, env, timeout, log)
                results.update(answers)
                log.seek(0)
                said = log.read()[-2000:]
                log.close()
                if outcome is None:
                    break
                bad = part[len(answers)]  # the case in progress when the reader died or hung
                after = Path(tmp / f"{f['name']}.npy.stderr")
                results[bad["id"]] = {"id": bad["id"], "outcome": outcome, "returncode": returncode,
                                      "reader_log": said,
                                      "reader_stderr": after.read_text(errors="replace")[-2000:] if after.exists() else ""}
                restore(files, bad)
                part = part[len(answers) + 1:]
            print(f"  {f['name']}: {sum(1 for c in by_set[f['name']] if c['id'] in results)}"
                  f"/{len(by_set[f['name']])}", flush=True)
    return results


def restore(files, case) -> None:
    """Put back a chunk a dead reader left corrupted (the copy made before the run)."""
    src = Path(case["file"] + ".clean")
    if src.exists():
        with open(case["file"], "r+b") as fh, open(src, "rb") as clean:
            clean.seek(case["at"])
            old = clean.read(len(case["new"]) // 2)
            fh.seek(case["at"])
            fh.write(old)


def run_h5dump(files, cases, tmp: Path, env, timeout: float) -> dict:
    """h5dump, one process per case, binary output compared with the uncorrupted file's."""
    h5dump = shutil.which("h5dump")
    results = {}
    for case in cases:
        f = next(f for f in files if f["name"] == case["set"].replace("h5dump ", "hdf5 "))
        with open(case["file"], "r+b") as fh:
            fh.seek(case["at"])
            old = fh.read(len(case["new"]) // 2)
            fh.seek(case["at"])
            fh.write(bytes.fromhex(case["new"]))
        out = tmp / "dump.bin"
        out.unlink(missing_ok=True)
        try:
            proc = subprocess.run([h5dump, "-d", "frames", "-b", "LE", "-o", str(out), f["path"]],
                                  capture_output=True, text=True, env=env, timeout=timeout)
            if proc.returncode < 0:
                res = {"outcome": "crash", "returncode": proc.returncode}
            elif proc.returncode > 0:
                res = {"outcome": "error", "error": "h5dump exit %d" % proc.returncode,
                       "message": next((ln for ln in proc.stderr.splitlines() if "saecodec" in ln), "")[:160]}
            else:
                ref = np.load(tmp / f"{f['name']}.npy")
                back = np.fromfile(out, "<f4") if out.exists() else np.zeros(0)
                same = back.size == ref.size and np.array_equal(back.reshape(ref.shape), ref, equal_nan=True)
                res = {"outcome": "identical" if same else "wrong"}
        except subprocess.TimeoutExpired:
            res = {"outcome": "hang"}
        finally:
            with open(case["file"], "r+b") as fh:
                fh.seek(case["at"])
                fh.write(old)
        res["id"] = case["id"]
        results[case["id"]] = res
    return results


def summarise(cases, results) -> dict:
    table: dict = {}
    messages = Counter()
    first = {}
    for c in cases:
        r = results[c["id"]]
        row = table.setdefault(c["set"], Counter())
        row[r["outcome"]] += 1
        row["cases"] += 1
        if r["outcome"] == "error":
            msg = r.get("message", "")
            if "stderr" in r:  # h5py: the filter's own message
                msg = r["stderr"]
            key = "checksum mismatch" if "checksum mismatch" in msg else (msg or r.get("error", "?"))
            messages[key] += 1
            first.setdefault(key, {"case": c["id"], "set": c["set"], "kind": c["kind"], "message": msg})
    total = Counter()
    for row in table.values():
        total.update(row)
    return {"by_set": {k: dict(v) for k, v in sorted(table.items())}, "total": dict(total),
            "error_messages": dict(messages.most_common()), "first_case_per_message": first}


def markdown(res: dict) -> str:
    cols = ("cases", "error", "identical", "wrong", "crash", "hang")
    lines = ["# Fault injection", "", f"Command: `{res['command']}` ({res['date']}, {res['seconds']} s, code {res['code']})", "",
             "Random bit flips, single-byte overwrites, 16 random bytes and 8 random bytes at the end, inside "
             "one chunk (the chunk's own bytes), read back in reader subprocesses with a timeout. error: the "
             "reader raised (h5dump: non-zero exit; h5py's messages are the filter's own, from the reader's stderr); identical: the same data as the uncorrupted file; wrong: "
             "different data without an error; crash: the reader process died; hang: no answer in time.", "",
             "| file, reader | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for name, row in list(res["summary"]["by_set"].items()) + [("**total**", res["summary"]["total"])]:
        lines.append(f"| {name} | " + " | ".join(str(row.get(c, 0)) for c in cols) + " |")
    lines += ["", "Error messages (the filter's own for h5py and h5dump):", ""]
    lines += [f"* {k}: {v}" for k, v in res["summary"]["error_messages"].items()]
    return "\n".join(lines) + "\n"


def code() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10_000, help="cases read by h5py and zarr")
    ap.add_argument("--h5dump-cases", type=int, default=300, help="further cases read by h5dump (one process each)")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds a reader may take for one case before it counts as hung (3x for the first)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--code", default=None,
                    help="what code ran, for the record (default: the checkout's git HEAD, '+ changes' if dirty)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fault_injection")
    args = ap.parse_args(argv)
    os.environ["SAECODEC_MODEL_PATH"] = str(MODELS)
    import saecodec.hdf5

    env = {**os.environ, "HDF5_PLUGIN_PATH": str(saecodec.hdf5.plugin_dir()), "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = write_files(tmp)
        for f in files:
            for path in {c[0] for c in f["chunks"]}:
                shutil.copyfile(path, path + ".clean")
        reader = tmp / "reader.py"
        reader.write_text(READER)
        cases = make_cases(files, args.cases, rng)
        results = run_batches(files, cases, reader, tmp, env, args.timeout, args.batch)
        if args.h5dump_cases and shutil.which("h5dump"):
            h5 = [f for f in files if f["kind"] == "hdf5"]
            extra = make_cases(h5, args.h5dump_cases, rng)
            for c in extra:
                c["id"] += len(cases)
                c["set"] = c["set"].replace("hdf5 ", "h5dump ")
            results.update(run_h5dump(files, extra, tmp, env, args.timeout))
            print(f"  h5dump: {len(extra)}", flush=True)
            cases += extra
        for f in files:  # the runs left every chunk as it was
            for path in {c[0] for c in f["chunks"]}:
                assert Path(path).read_bytes() == Path(path + ".clean").read_bytes(), path
    res = {"command": "python benchmarks/fault_injection.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d %H:%M"), "seconds": round(time.time() - t0), "code": args.code or code(),
           "summary": summarise(cases, results),
           "examples": [dict(c, **results[c["id"]]) for c in cases
                        if results[c["id"]]["outcome"] not in ("error", "identical")][:50]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    t = res["summary"]["total"]
    return 1 if t.get("wrong", 0) or t.get("crash", 0) or t.get("hang", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
