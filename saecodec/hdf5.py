"""HDF5 for writers: the h5py helper ``SAE``, the plugin's location and its registration.

``SAE(model=...)`` is a mapping of h5py ``create_dataset`` keyword arguments, like
hdf5plugin's filter classes::

    f.create_dataset("frames", data=x, chunks=(16, 64, 64), **saecodec.hdf5.SAE(model="sas-wavelet"))
    f.create_dataset("counts", data=n, chunks=(1, 619, 487), **saecodec.hdf5.SAE(error_bound=0))  # lossless

Any HDF5 reader with :func:`plugin_dir` on ``HDF5_PLUGIN_PATH`` (h5py, h5dump, ...) then
decompresses transparently; ``import saecodec`` adds it to h5py's plugin search path.
A chunk's bytes are exactly the payload that :class:`saecodec.SAECodec` writes for the
same array. The filter's own Python side, run inside any HDF5 host, is
:mod:`saecodec.plugin.filter`.
"""

from __future__ import annotations

from pathlib import Path

from h5py._hl.filters import FilterRefBase  # what hdf5plugin's filter classes subclass

from .errors import SaecodecError
from .options import new as new_options
from .options import signature
from .plugin.filter import filter_id

__all__ = ["FILTER_ID", "SAE", "plugin_dir", "plugin_file", "register"]

FILTER_ID = filter_id()
MAX_OPTION_WORDS = 200  # c_filter/h5saecodec.c: SAE_MAX_OPTS


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

    Parameters: those of :class:`saecodec.SAECodec` (one signature, ``help()`` lists them)
    but the run-time ``device``; packing them loads no network. ``model=None``: the
    model-free codec (bounded and lossless modes), whose datasets any reader with the plugin
    decodes without torch or a model file. The element type and chunk shape are filled in
    by the plugin's ``set_local`` when the dataset is created.
    """

    def __init__(self, model=None, **options):
        self.options = new_options(model, options)
        self.filter_id = FILTER_ID
        self.filter_options = self.options.cd_values()
        if self.filter_options[10] > MAX_OPTION_WORDS:
            raise SaecodecError(f"these options take {self.filter_options[10]} cd_values words, more than the "
                                f"HDF5 plugin's {MAX_OPTION_WORDS}: the mask is too irregular to travel in cd_values; "
                                "give its pixels a sentinel value (mask_values) or a threshold (mask_below)")
        register()

    __init__.__signature__ = signature()

    def __repr__(self):
        return f"SAE({self.options.repr_args()})"
