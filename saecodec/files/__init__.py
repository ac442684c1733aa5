"""Files in, files out: ``compress``, ``decompress`` and ``verify`` whole HDF5/NeXus files,
Zarr stores and stacks of detector images (TIFF, CBF, EDF), chunks in parallel (threads
or a dask.distributed cluster), memory bounded by a few chunks per worker."""

from .compress import compress
from .decompress import decompress
from .verify import fallback_frames, verify

__all__ = ["compress", "decompress", "verify", "fallback_frames"]
