"""A trained network with what the codec needs to use it: one safetensors file per model.

Saving the same weights and metadata twice gives the same bytes (tensors in a fixed
order, metadata as canonical JSON), so the identity (SHA-256 of the file) is
reproducible and a codec config that records it pins the exact decoder.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import importlib
from collections.abc import Mapping

import numpy as np

from .. import tiling
from ..errors import SaecodecError
from ..modelfile import FILE_FORMAT, FILE_FORMAT_VERSION, METADATA_KEY, canonical_json, identity_of_bytes, \
    metadata_of_bytes
from .transforms import Transform


class _Families(Mapping):
    """Family name -> network class, each imported on first use: the torch families import
    torch, and a reader of payloads that run no network must not (docs/seams.md, section 1), nor
    a reader of a family without torch (section 2)."""

    def __init__(self, homes: dict[str, str]):
        self._homes = homes  # family -> "module:Class" within saecodec.models

    def __getitem__(self, family: str) -> type:
        module, cls = self._homes[family].split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), cls)

    def __iter__(self):
        return iter(self._homes)

    def __len__(self) -> int:
        return len(self._homes)


# family name in the model file -> the network class (``from_architecture``, ``latent_kind``)
FAMILIES = _Families({"l1": "l1:SparseL1Autoencoder", "rrae": "rrae:RankReductionAutoencoder",
                      "conv-hyper": "conv_hyper:ConvHyperprior", "wavelet": "wavelet:WaveletModule"})


def uses_torch(module) -> bool:
    """A torch network (the default), or a family of numpy parameters (``uses_torch = False``:
    its file is safetensors.numpy, loading it and decoding its payloads import no torch)."""
    return getattr(module, "uses_torch", True)


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
    """A network, its input transform and its latent coding parameters.

    ``frame_shape`` is the tile the network takes; ``None`` declares a network that takes
    whole frames of any size (each 2D plane of a chunk as it is, see :meth:`tile_for`).
    ``identity`` is None until the model is saved, loaded or :meth:`freeze` d.
    """

    module: torch.nn.Module  # or a family without torch (``uses_torch`` False)
    frame_shape: tuple[int, int] | None
    transform: Transform
    name: str
    coding: dict = field(default_factory=dict)
    provenance: str = ""
    metrics: dict = field(default_factory=dict)
    identity: str | None = None
    path: Path | None = None
    storage_dtype: str = "float32"  # weights in the file; "float16" halves a shipped model

    def __post_init__(self):
        if self.frame_shape is not None:
            self.frame_shape = tuple(int(v) for v in self.frame_shape)
            n = getattr(self.module, "n", int(np.prod(self.frame_shape)))
            if int(np.prod(self.frame_shape)) != n:
                raise SaecodecError(f"frame shape {self.frame_shape} does not match the network's input size {n}")
        self.coding = {**default_coding(self.module), **(self.coding or {})}

    @property
    def family(self) -> str:
        return self.module.family

    @property
    def latent_kind(self) -> str:
        return self.module.latent_kind

    def tile_for(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """The frame the network takes from a chunk of ``shape``: the model's frame shape,
        or the chunk's own 2D planes for a model that takes whole frames."""
        return self.frame_shape if self.frame_shape is not None else tiling.whole(shape)

    def metadata(self) -> dict:
        return {
            "format": FILE_FORMAT,
            "format_version": FILE_FORMAT_VERSION,
            "name": self.name,
            "family": self.module.family,
            "architecture": self.module.architecture,
            "frame_shape": None if self.frame_shape is None else list(self.frame_shape),
            "transform": self.transform.to_dict(),
            "dtype": self.storage_dtype,
            "coding": self.coding,
            "provenance": self.provenance,
            "metrics": self.metrics,
        }

    def for_log10_input(self, name: str | None = None) -> "Model":
        """The same network for arrays that hold log10 intensities: a new model whose
        transform is the identity, per-frame normalisation kept. For intensities far above
        the asinh scale s, asinh(x / s) / ln 10 = log10(x) + log10(2 / s), and the
        normalisation removes that constant, so the network sees the frames it was trained
        on. Its own file and identity: ``saecodec models derive MODEL --input log10``."""
        codes_offset = getattr(self.module, "codes_offset", False)  # the constant costs it a few bits at most
        if self.transform.kind != "asinh" or not (self.transform.per_frame or codes_offset):
            raise SaecodecError(f"model {self.name!r} does not read intensities through asinh with per-frame "
                                "normalisation; it has no log10-input variant")
        tr = Transform("linear", 1.0, self.transform.per_frame, self.transform.normalise)
        return dataclasses.replace(self, transform=tr,
                                   name=name or f"{self.name}-log10",
                                   identity=None, path=None,
                                   provenance=f"{self.provenance} | log10-input variant of {self.identity}")

    def freeze(self) -> str:
        """Round the weights to ``storage_dtype`` in place and fix the identity; returns it.

        An encoder must run exactly the network that every decoder loads from the file;
        a codec freezes the model it is given. Does nothing once the identity is known.
        """
        if self.identity is None:
            self._round_weights()
            self.identity = identity_of_bytes(self.to_bytes())
        return self.identity

    def to_bytes(self) -> bytes:
        """The model file's bytes (weights cast to ``storage_dtype``); changes nothing."""
        if not uses_torch(self.module):  # numpy parameters, stored exactly (integer tables stay integers)
            from safetensors.numpy import save as np_save

            state = {k: np.ascontiguousarray(v) for k, v in self.module.state_dict().items()}
            return np_save(state, metadata={METADATA_KEY: canonical_json(self.metadata())})
        from safetensors.torch import save as st_save

        dt = self._storage_torch_dtype()
        state = {k: v.detach().to("cpu", dt if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in self.module.state_dict().items()}  # integer tables stay integers
        return st_save(state, metadata={METADATA_KEY: canonical_json(self.metadata())})

    def save(self, path: str | os.PathLike) -> str:
        """Write the model file (rounding the weights in memory to what it holds); returns its identity."""
        self._round_weights()
        data = self.to_bytes()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self.identity = identity_of_bytes(data)
        self.path = path
        return self.identity

    def _storage_torch_dtype(self) -> torch.dtype:
        import torch

        if self.storage_dtype not in ("float32", "float16"):
            raise SaecodecError(f"storage_dtype must be 'float32' or 'float16', got {self.storage_dtype!r}")
        return getattr(torch, self.storage_dtype)

    def _round_weights(self) -> None:
        if not uses_torch(self.module):
            return  # stored as they are
        import torch

        dt = self._storage_torch_dtype()
        with torch.no_grad():
            for v in self.module.state_dict().values():
                if v.is_floating_point():
                    v.copy_(v.to(dt).to(v.dtype))


def model_from_bytes(data: bytes, path=None) -> Model:
    meta = metadata_of_bytes(data, path)
    family = meta.get("family")
    if family not in FAMILIES:
        raise SaecodecError(f"{path}: model family unknown to this saecodec (known: {sorted(FAMILIES)})")
    module = FAMILIES[family].from_architecture(_checked_architecture(meta, data, path))
    if uses_torch(module):
        from safetensors.torch import load as st_load
    else:
        from safetensors.numpy import load as st_load
    state = st_load(data)
    missing = set(module.state_dict()) ^ set(state)
    if missing:
        raise SaecodecError(f"{path}: weights do not match the architecture (differing: {sorted(missing)})")
    module.load_state_dict(state)
    if uses_torch(module):
        module.eval()
    frame_shape = meta.get("frame_shape")
    return Model(
        module=module,
        frame_shape=None if frame_shape is None else tuple(int(v) for v in frame_shape),
        transform=Transform.from_dict(meta["transform"]),
        name=meta.get("name", ""),
        coding=meta.get("coding", {}),
        provenance=meta.get("provenance", ""),
        metrics=meta.get("metrics", {}),
        identity=identity_of_bytes(data),
        path=Path(path) if path is not None else None,
        storage_dtype=meta.get("dtype", "float32"),
    )


# Modules a model may register while its architecture is checked: far more than any family
# builds (sas-conv-h: 37), far fewer than a crafted architecture of a million layers.
MAX_SUBMODULES = 4096


def _checked_architecture(meta: dict, data: bytes, path) -> dict:
    """The architecture, once a copy built on torch's meta device (no memory) has exactly the
    tensors, names and shapes the file stores: a crafted file's JSON cannot make the loader
    allocate a network its weights do not pay for (a 1.6 kB file once asked for 14 GB)."""
    arch = meta.get("architecture")
    if not isinstance(arch, dict):
        raise SaecodecError(f"{path}: the model file has no architecture")
    stored = _stored_tensors(data, path)
    state = _meta_state(FAMILIES[meta["family"]], arch, path)
    if set(state) != set(stored):
        raise SaecodecError(f"{path}: weights do not match the architecture (differing: "
                            f"{sorted(set(state) ^ set(stored))[:8]})")
    wrong = [k for k, shape in state.items() if tuple(stored[k]) != shape]
    if wrong:
        raise SaecodecError(f"{path}: weights do not match the architecture's tensor shapes ({wrong[:8]})")
    return arch


def _stored_tensors(data: bytes, path) -> dict:
    """name -> shape of each tensor in a safetensors file, from its header (no tensor read),
    each checked to fill its byte range exactly."""
    import json
    import struct

    sizes = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8, "I32": 4, "I64": 8, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
    try:
        (n,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + n])
        out = {}
        for name, t in header.items():
            if name == "__metadata__":
                continue
            shape, (a, b) = [int(d) for d in t["shape"]], t["data_offsets"]
            if min(shape, default=1) < 0 or b - a != int(np.prod(shape, dtype=np.int64)) * sizes[t["dtype"]] or \
                    not 0 <= a <= b <= len(data) - 8 - n:
                raise ValueError
            out[name] = shape
        return out
    except (ValueError, KeyError, TypeError, struct.error, OverflowError):
        raise SaecodecError(f"{path}: the weights' header is not a valid safetensors header") from None


def _meta_state(cls, arch: dict, path) -> dict:
    """name -> shape of the state dict ``cls`` builds from ``arch``, built on the meta device (a
    family without torch: built as it is, its own checks bounding the arrays, and no torch
    imported, docs/seams.md section 2)."""
    if not getattr(cls, "uses_torch", True):
        try:
            module = cls.from_architecture(arch)
        except SaecodecError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, OverflowError, AttributeError) as e:
            raise SaecodecError(f"{path}: invalid architecture ({type(e).__name__})") from None
        return {k: tuple(np.shape(v)) for k, v in module.state_dict().items()}
    import threading

    import torch

    me, count = threading.get_ident(), [0]

    def hook(module, name, submodule):
        if threading.get_ident() == me:
            count[0] += 1
            if count[0] > MAX_SUBMODULES:
                raise SaecodecError(f"{path}: the architecture builds more than {MAX_SUBMODULES} layers")

    handle = torch.nn.modules.module.register_module_module_registration_hook(hook)
    try:
        with torch.device("meta"):
            module = cls.from_architecture(arch)
    except SaecodecError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, RuntimeError) as e:
        raise SaecodecError(f"{path}: invalid architecture ({type(e).__name__})") from None
    finally:
        handle.remove()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def load_file(path: str | os.PathLike) -> Model:
    path = Path(path)
    return model_from_bytes(path.read_bytes(), path)
