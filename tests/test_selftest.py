"""``python -m saecodec.test``: passes on this install, fails when the HDF5 plugin is missing."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import saecodec


def run_selftest(env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "saecodec.test"], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def test_selftest_passes(tmp_path):
    proc = run_selftest(cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for check in ("default model identity", "codec round trip", "zarr format 2", "zarr format 3",
                  "HDF5 plugin (h5py)"):
        assert any(line.startswith("ok    " + check) for line in lines), proc.stdout
    if shutil.which("h5dump"):
        assert any(line.startswith("ok    HDF5 plugin (h5dump)") for line in lines), proc.stdout
    assert "FAIL" not in proc.stdout


def test_selftest_fails_without_the_plugin(tmp_path):
    """A copy of the installed package whose plugin was not built (a failed C build), first on
    the path: the HDF5 checks fail, the others still pass, the exit code says so."""
    pkg = Path(saecodec.__file__).parent
    shutil.copytree(pkg, tmp_path / "saecodec",  # the plugin's two libraries (the bounded coder is built apart)
                    ignore=shutil.ignore_patterns("libh5saecodec.so", "_saecodec_h5embed*.so", "__pycache__"))
    assert not list((tmp_path / "saecodec" / "plugin").glob("*.so"))
    proc = run_selftest({"PYTHONPATH": str(tmp_path)}, cwd=tmp_path)
    assert str(tmp_path / "saecodec") in proc.stdout.splitlines()[0]  # the copy ran, not the install
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL  HDF5 plugin (h5py): AssertionError: the HDF5 plugin is not built" in proc.stdout
    assert "ok    codec round trip" in proc.stdout and "ok    zarr format 3" in proc.stdout
    assert "check(s) FAILED" in proc.stdout
