"""The real measured frames the project checks itself against, found in one place.

Two sets, neither shipped with the package (tests skip without them, benchmarks say so):

* ``real-sas/*.npz``: reduced 2D SAS frames (``I``, ``dI``, ``qx``, ``qy``, ``mask``) with odd
  sizes, negatives, sentinels and NaN holes;
* ``raw-counts/*.npz``: raw Pilatus count frames (``counts``, gaps -1, dead pixels -2).

Their directory is ``SAECODEC_DATA`` when set, else the first ``shared/data`` found in the
three directories above the source tree (a checkout's ``../shared/data``, a worktree's
``../../shared/data``): never a machine's absolute path.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

REAL_SAS, RAW_COUNTS = "real-sas", "raw-counts"
_TREE = Path(__file__).resolve().parents[2]  # the source tree (or site-packages) holding saecodec/


def data_dir() -> Path | None:
    """The directory holding the sets, or None where this machine has none."""
    env = os.environ.get("SAECODEC_DATA", "").strip()
    if env:
        return Path(env)
    for up in list(_TREE.parents)[:3]:
        d = up / "shared" / "data"
        if d.is_dir():
            return d
    return None


def files(kind: str, directory: str | os.PathLike | None = None) -> list[Path]:
    """The ``*.npz`` files of a set (``REAL_SAS``, ``RAW_COUNTS``), sorted; ``directory``: the
    set's own directory instead of the shared one. Empty where absent."""
    if directory is None:
        root = data_dir()
        directory = None if root is None else root / kind
    d = None if directory is None else Path(directory)
    return sorted(d.glob("*.npz")) if d is not None and d.is_dir() else []


def real_sas(directory=None) -> list[tuple[str, dict]]:
    """(name, arrays) per reduced real frame."""
    return [(p.stem, dict(np.load(p))) for p in files(REAL_SAS, directory)]


def raw_counts(directory=None) -> list[tuple[str, np.ndarray]]:
    """(name, counts) per raw Pilatus frame."""
    return [(p.stem, np.load(p)["counts"]) for p in files(RAW_COUNTS, directory)]
