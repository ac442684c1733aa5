"""HDF5 support: the h5py helper ``SAE``, the plugin's location and its registration.

The Python side of the filter itself is :mod:`saecodec.h5filter` (it must not import h5py).

``SAE(model=...)`` is a mapping of h5py ``create_dataset`` keyword arguments, like
hdf5plugin's filter classes::

    f.create_dataset("frames", data=x, chunks=(16, 64, 64), **saecodec.hdf5.SAE(model="sas64-l1"))

Any HDF5 reader with :func:`plugin_dir` on ``HDF5_PLUGIN_PATH`` (h5py, h5dump, ...) then
decompresses transparently; ``import saecodec`` adds it to h5py's plugin search path.
A chunk's bytes are exactly the payload that :class:`saecodec.SAECodec` writes for the
same array.
"""

from __future__ import annotations

from pathlib import Path

from h5py._hl.filters import FilterRefBase  # what hdf5plugin's filter classes subclass

from .coding import quant
from .h5filter import (CD_VERSION, DEFAULT_FILTER_ID, cd_values, filter_call, filter_id, identity_words, parse_cd,
                       words_identity)

__all__ = ["CD_VERSION", "DEFAULT_FILTER_ID", "FILTER_ID", "SAE", "cd_values", "filter_call", "filter_id",
           "identity_words", "parse_cd", "plugin_dir", "plugin_file", "register", "words_identity"]

FILTER_ID = filter_id()


def plugin_dir() -> Path:
    return Path(__file__).parent / "plugin"


def plugin_file() -> Path:
    return plugin_dir() / "libh5saecodec.so"


def register() -> bool:
    """Make h5py's HDF5 find the plugin (idempotent). Returns whether it is available."""
    import h5py

    if not plugin_file().exists():
        return False
    d = str(plugin_dir())
    paths = [h5py.h5pl.get(i).decode() for i in range(h5py.h5pl.size())]
    if d not in paths:
        h5py.h5pl.append(d.encode())
    return bool(h5py.h5z.filter_avail(FILTER_ID))


class SAE(FilterRefBase):
    """h5py ``create_dataset`` keyword arguments for the saecodec filter.

    Parameters are those of :class:`saecodec.SAECodec`. The element type and chunk shape
    are filled in by the plugin's ``set_local`` when the dataset is created.
    """

    def __init__(self, model, weight_dtype: str = "float16", error_bound: float | None = None,
                 bound_mode: str = "abs", mask_value=None):
        from .codec import SAECodec  # torch: only when a dataset is configured, not at `import saecodec`

        codec = SAECodec(model, weight_dtype=weight_dtype, error_bound=error_bound, bound_mode=bound_mode,
                         mask_value=mask_value)
        self.codec = codec
        self.model = codec.model
        self.weight_dtype = codec.weight_dtype
        self.filter_id = FILTER_ID
        self.filter_options = cd_values(codec.model, quant.weight_code(codec.weight_dtype), codec.error_bound,
                                        codec.bound_mode, codec.mask_value)
        register()

    def __repr__(self):
        return repr(self.codec).replace("SAECodec(", "SAE(", 1)
