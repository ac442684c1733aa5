"""The package's cffi extensions, or stand-ins that fail at first use.

Why: a machine whose C build failed still imports saecodec; only the modes that need the
missing extension say so, with what to do about it.
"""

from __future__ import annotations

import importlib

from ..errors import SaecodecError


class _Missing:
    def __init__(self, message: str):
        self._message = message

    def __getattr__(self, name):
        raise SaecodecError(self._message)


def extension(name: str, what: str) -> tuple:
    """(ffi, lib) of ``saecodec.coding.<name>``, or stand-ins raising a clear error."""
    try:
        mod = importlib.import_module(f"{__package__}.{name}")
        return mod.ffi, mod.lib
    except ImportError as e:
        missing = _Missing(f"saecodec's {what} (saecodec.coding.{name}) is not built ({e}); reinstall with "
                           "`pip install -e .` on a machine with a C compiler")
        return missing, missing
