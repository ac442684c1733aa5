"""saecodec: learned lossy compression of 2D detector frames for Zarr and HDF5."""

__version__ = "0.1.0"

from .errors import ModelMismatchError, ModelNotFoundError, PayloadError, SaecodecError  # noqa: E402


def __getattr__(name):
    # Importing torch takes a second or two: load the codec only when asked for.
    if name == "SAECodec":
        from .codec import SAECodec

        return SAECodec
    if name == "SAEZarrCodec":
        from .zarr3 import SAEZarrCodec

        return SAEZarrCodec
    raise AttributeError(name)


__all__ = ["SAECodec", "SAEZarrCodec", "SaecodecError", "PayloadError", "ModelNotFoundError",
           "ModelMismatchError", "__version__"]
