"""saecodec: learned lossy compression of 2D detector frames for Zarr and HDF5."""

__version__ = "0.1.0"

from .errors import ModelMismatchError, ModelNotFoundError, PayloadError, SaecodecError  # noqa: E402


def _register_hdf5_plugin():
    """Let h5py find the HDF5 filter plugin; silently skipped if it was not built.

    Skipped inside a C HDF5 host (h5dump): importing h5py there would load a second
    libhdf5 into the process.
    """
    import sys

    if getattr(sys, "_saecodec_c_host", False):
        return
    try:
        from .hdf5 import register

        register()
    except Exception:  # noqa: BLE001 - importing saecodec must never fail because of HDF5
        pass


_register_hdf5_plugin()


def __getattr__(name):
    # numcodecs and zarr take a while to import, and a C HDF5 host imports this package
    # for the filter alone: load the codecs only when asked for.
    if name == "SAECodec":
        from .codec import SAECodec

        return SAECodec
    if name == "SAEZarrCodec":
        from .zarr3 import SAEZarrCodec

        return SAEZarrCodec
    raise AttributeError(name)


__all__ = ["SAECodec", "SAEZarrCodec", "SaecodecError", "PayloadError", "ModelNotFoundError",
           "ModelMismatchError", "__version__"]
