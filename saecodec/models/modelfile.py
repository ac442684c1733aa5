"""One file per trained model: safetensors weights plus canonical JSON metadata.

The identity of a model is the SHA-256 of its file. Saving the same weights and
metadata twice gives the same bytes (tensors are written in a fixed order and the
metadata is one canonical JSON string), so the identity is reproducible and a codec
config that records it pins the exact decoder.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..errors import SaecodecError
from .l1 import SparseL1Autoencoder
from .rrae import RankReductionAutoencoder
from .transforms import Transform

FILE_FORMAT = "saecodec-model"
FILE_FORMAT_VERSION = 1
METADATA_KEY = "saecodec"
SUFFIX = ".safetensors"
# A safetensors header larger than this is not one of ours (guards reading random files).
_MAX_HEADER = 16 * 1024 * 1024

FAMILIES: dict[str, type] = {"l1": SparseL1Autoencoder, "rrae": RankReductionAutoencoder}


def register_family(cls: type) -> type:
    """Make a model family loadable by its ``family`` name (used by the RRAE family)."""
    FAMILIES[cls.family] = cls
    return cls


def default_coding(module) -> dict:
    """Entropy-model parameters of the latent, recorded in the model file.

    For sparse latents this is the L1 paper's gap model: a discretised Gaussian with
    mu = 0 and sigma = l / 3 plus a uniform floor c0.
    """
    if module.latent_kind == "sparse":
        return {"gap_sigma": module.latent_size / 3.0, "gap_floor": 1e-6}
    return {}


@dataclass
class Model:
    """A trained network together with everything needed to use it as a codec."""

    module: torch.nn.Module
    frame_shape: tuple[int, int]
    transform: Transform
    name: str
    coding: dict = field(default_factory=dict)
    provenance: str = ""
    metrics: dict = field(default_factory=dict)
    identity: str | None = None
    path: Path | None = None
    storage_dtype: str = "float32"  # weights in the file; "float16" halves a shipped model

    def __post_init__(self):
        self.frame_shape = tuple(int(v) for v in self.frame_shape)
        if int(np.prod(self.frame_shape)) != getattr(self.module, "n", int(np.prod(self.frame_shape))):
            raise SaecodecError(f"frame shape {self.frame_shape} does not match the network's input size {self.module.n}")
        self.coding = {**default_coding(self.module), **(self.coding or {})}

    @property
    def family(self) -> str:
        return self.module.family

    @property
    def latent_kind(self) -> str:
        return self.module.latent_kind

    def metadata(self) -> dict:
        return {
            "format": FILE_FORMAT,
            "format_version": FILE_FORMAT_VERSION,
            "name": self.name,
            "family": self.module.family,
            "architecture": self.module.architecture,
            "frame_shape": list(self.frame_shape),
            "transform": self.transform.to_dict(),
            "dtype": self.storage_dtype,
            "coding": self.coding,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }

    def ensure_identity(self) -> str:
        """The identity of the model as it would be saved (computed once for unsaved models)."""
        if self.identity is None:
            self.identity = identity_of_bytes(self.to_bytes())
        return self.identity

    def to_bytes(self) -> bytes:
        if self.storage_dtype not in ("float32", "float16"):
            raise SaecodecError(f"storage_dtype must be 'float32' or 'float16', got {self.storage_dtype!r}")
        dt = getattr(torch, self.storage_dtype)
        with torch.no_grad():  # the in-memory model must be exactly the one its identity names
            for v in self.module.state_dict().values():
                v.copy_(v.to(dt).to(v.dtype))
        state = {k: v.detach().to("cpu", dt).contiguous() for k, v in self.module.state_dict().items()}
        meta = json.dumps(self.metadata(), sort_keys=True, separators=(",", ":"), allow_nan=False)
        return st_save(state, metadata={METADATA_KEY: meta})

    def save(self, path: str | os.PathLike) -> str:
        """Write the model file; returns its identity (hex SHA-256)."""
        data = self.to_bytes()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.identity = hashlib.sha256(data).hexdigest()
        self.path = path
        return self.identity


def identity_of_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def identity_of_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_metadata(path: str | os.PathLike) -> dict:
    """The model's JSON metadata, reading only the file's header."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise SaecodecError(f"{path}: not a saecodec model file (too short)")
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER:
            raise SaecodecError(f"{path}: not a saecodec model file (header of {n} bytes)")
        raw = f.read(n)
    return _parse_header(raw, path)


def _parse_header(raw: bytes, path) -> dict:
    try:
        header = json.loads(raw)
        meta = json.loads(header["__metadata__"][METADATA_KEY])
    except (ValueError, KeyError, TypeError) as e:
        raise SaecodecError(f"{path}: not a saecodec model file ({e})") from None
    if meta.get("format") != FILE_FORMAT:
        raise SaecodecError(f"{path}: not a saecodec model file")
    if meta.get("format_version", 0) > FILE_FORMAT_VERSION:
        raise SaecodecError(
            f"{path}: model file format version {meta['format_version']} is newer than this "
            f"saecodec supports ({FILE_FORMAT_VERSION}); upgrade saecodec"
        )
    return meta


def model_from_bytes(data: bytes, path=None) -> Model:
    if len(data) < 8:
        raise SaecodecError(f"{path}: not a saecodec model file (too short)")
    (n,) = struct.unpack("<Q", data[:8])
    meta = _parse_header(data[8:8 + n], path)
    family = meta["family"]
    if family not in FAMILIES:
        raise SaecodecError(
            f"{path}: model family {family!r} is unknown to this saecodec (known: {sorted(FAMILIES)})"
        )
    module = FAMILIES[family].from_architecture(meta["architecture"])
    state = st_load(data)
    missing = set(module.state_dict()) ^ set(state)
    if missing:
        raise SaecodecError(f"{path}: weights do not match the architecture (differing: {sorted(missing)})")
    module.load_state_dict(state)
    module.eval()
    return Model(
        module=module,
        frame_shape=tuple(int(v) for v in meta["frame_shape"]),
        transform=Transform.from_dict(meta["transform"]),
        name=meta.get("name", ""),
        coding=meta.get("coding", {}),
        provenance=meta.get("provenance", ""),
        metrics=meta.get("metrics", {}),
        identity=identity_of_bytes(data),
        path=Path(path) if path is not None else None,
        storage_dtype=meta.get("dtype", "float32"),
    )


def load_file(path: str | os.PathLike) -> Model:
    path = Path(path)
    return model_from_bytes(path.read_bytes(), path)
