"""Self-test after install: ``python -m saecodec.test`` (as ``python -m hdf5plugin.test``).

Checks, on the shipped default model and small synthetic frames: the model file's
identity, a codec round trip (pure and error-bounded), Zarr format 2 and 3 stores, the
HDF5 plugin read by h5py in a fresh process that never imports saecodec, and h5dump when
it is on PATH. Prints one line per check; exits 1 when any fails.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
from pathlib import Path

import numpy as np

MODEL = "sas-wavelet"  # model_store.DEFAULT_MODEL (not imported here: the self-test imports lazily)
BOUND = 1e-2


def frames(n: int = 3, shape=(64, 80)) -> np.ndarray:
    """Ring-shaped scattering patterns (intensities over four decades)."""
    yy, xx = np.indices(shape)
    r = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2.5)
    out = [np.log10(1e3 / (1 + (r / (4 + 2 * i)) ** 4) + 1.0 + 0.2 * np.cos(r / (2 + i))) for i in range(n)]
    return np.stack(out).astype(np.float32)


def check_model() -> str:
    from . import model_store

    entry = model_store.find(MODEL)
    digest = hashlib.sha256(Path(entry.path).read_bytes()).hexdigest()
    if digest != entry.identity:
        raise AssertionError(f"{entry.path}: SHA-256 {digest}, the model store says {entry.identity}")
    return f"{entry.name} {entry.identity[:12]} ({entry.source})"


def _bounded(x, y, eb=BOUND):
    err = float(np.max(np.abs(y.astype(np.float64) - x)))
    if y.shape != x.shape or y.dtype != x.dtype or not err <= eb:
        raise AssertionError(f"decoded {y.dtype}{y.shape}, max error {err:.3g} > {eb}")
    return err


def check_codec() -> str:
    from .codec import SAECodec

    x = frames()
    pure = SAECodec(MODEL)
    y = pure.decode(pure.encode(x))
    if y.shape != x.shape or not np.all(np.isfinite(y)):
        raise AssertionError("the pure mode did not return finite frames of the input's shape")
    c = SAECodec(MODEL, error_bound=BOUND)
    payload = c.encode(x)
    err = _bounded(x, c.decode(payload))
    return f"bounded {x.nbytes / len(payload):.1f}x, max error {err:.2g} <= {BOUND}"


def check_zarr(fmt: int, tmp: Path) -> str:
    import zarr

    from .codec import SAECodec
    from .zarr3 import SAEZarrCodec

    x = frames()
    path = tmp / f"selftest{fmt}.zarr"
    if fmt == 2:
        z = zarr.create(shape=x.shape, chunks=(2, 64, 80), dtype="f4", store=str(path), zarr_format=2,
                        compressor=SAECodec(MODEL, error_bound=BOUND))
    else:
        z = zarr.create_array(store=str(path), shape=x.shape, chunks=(2, 64, 80), dtype="f4",
                              serializer=SAEZarrCodec(model=MODEL, error_bound=BOUND), compressors=None)
    z[...] = x
    err = _bounded(x, zarr.open_array(str(path), mode="r")[...])
    return f"max error {err:.2g}"


def _fresh(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def check_hdf5(tmp: Path) -> str:
    import h5py

    from . import hdf5

    if not hdf5.plugin_file().exists():
        raise AssertionError(f"the HDF5 plugin is not built: no {hdf5.plugin_file()} (reinstall with pip)")
    x = frames()
    path = tmp / "selftest.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("frames", data=x, chunks=(2, 64, 80), **hdf5.SAE(model=MODEL, error_bound=BOUND))
    out = tmp / "back.npy"
    proc = _fresh(f"""
        import sys, h5py, numpy as np
        with h5py.File({str(path)!r}, "r") as f:
            np.save({str(out)!r}, f["frames"][...])
        """, {"HDF5_PLUGIN_PATH": str(hdf5.plugin_dir())})
    if proc.returncode != 0:
        raise AssertionError("h5py could not read through the plugin: " + proc.stderr.strip().splitlines()[-1]
                             if proc.stderr.strip() else "h5py failed")
    err = _bounded(x, np.load(out))
    return f"plugin {hdf5.plugin_file().name}, filter {hdf5.FILTER_ID}, fresh h5py read, max error {err:.2g}"


def check_h5dump(tmp: Path) -> str | None:
    from . import hdf5

    exe = shutil.which("h5dump")
    if exe is None:
        return None
    path = tmp / "selftest.h5"
    if not path.exists():
        raise AssertionError("no file from the h5py check to dump")
    proc = subprocess.run([exe, "-d", "/frames", "-s", "0,0,0", "-c", "1,1,4", str(path)], capture_output=True,
                          text=True, env={**os.environ, "HDF5_PLUGIN_PATH": str(hdf5.plugin_dir())}, timeout=300)
    if proc.returncode != 0 or "DATA {" not in proc.stdout:
        raise AssertionError(f"h5dump exit {proc.returncode}: {proc.stderr.strip()[-300:]}")
    values = [float(v) for v in proc.stdout.split("(0,0,0):")[1].split("}")[0].replace(",", " ").split()]
    _bounded(frames()[0, 0, :4], np.array(values, dtype=np.float32), BOUND + 1e-4)  # h5dump prints 6 digits
    return f"{exe} decoded the first values within the bound"


def main(argv=None) -> int:
    checks = [("default model identity", lambda t: check_model()), ("codec round trip", lambda t: check_codec()),
              ("zarr format 2", lambda t: check_zarr(2, t)), ("zarr format 3", lambda t: check_zarr(3, t)),
              ("HDF5 plugin (h5py)", check_hdf5), ("HDF5 plugin (h5dump)", check_h5dump)]
    from . import __version__

    print(f"saecodec {__version__} self-test ({Path(__file__).parent})")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="saecodec-selftest-") as tmp:
        for name, fn in checks:
            try:
                msg = fn(Path(tmp))
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the others
                failed += 1
                print(f"FAIL  {name}: {type(e).__name__}: {e}")
                if os.environ.get("SAECODEC_SELFTEST_TRACE"):
                    traceback.print_exc()
                continue
            print(f"skip  {name}: h5dump not on PATH" if msg is None else f"ok    {name}: {msg}")
    print(f"{len(checks) - failed} of {len(checks)} checks passed" if not failed else f"{failed} check(s) FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
