"""Where and how the networks run: the device, device copies of a network, batched passes.

Used by the codec's pipeline and by training alike. torch is imported by the functions that
run a network, not by this module: the pipeline imports it, and a reader of payloads that
run no network must not import torch (docs/seams.md, section 1). The CPU runs a model's own module;
another device gets a copy, kept in a small least-recently-used cache so that a process
switching between many models does not keep them all on the GPU.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from ..errors import SaecodecError

# Frames per forward pass: bounds memory for huge chunks while keeping batches large.
BATCH = 8192
# Whole-frame (convolutional) models: pixels per pass instead (64x64 frames: 256 per pass).
BATCH_PIXELS = 1 << 20
# Device copies kept at once (least recently used dropped first).
MAX_COPIES = 4

_copies: OrderedDict[tuple[int, str], tuple[torch.nn.Module, torch.nn.Module]] = OrderedDict()
_copies_lock = threading.Lock()
_mode = threading.local()


@contextmanager
def reproducible():
    """Within it (this thread only), networks that support it run convolutions whose float
    results do not depend on the torch thread count: oneDNN's do (measured: 1024x1024
    frames, 1 vs 2 threads, every layer differs in the last bits), and an encoder's
    rounding decisions must not, so that the same chunk gives the same bytes. About 2x the
    CPU time of oneDNN; decoders need no such care (the coders' guards absorb ulps)."""
    prev = getattr(_mode, "reproducible", False)
    _mode.reproducible = True
    try:
        yield
    finally:
        _mode.reproducible = prev


def is_reproducible() -> bool:
    return getattr(_mode, "reproducible", False)


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as given, else CUDA when available, else the CPU."""
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_device(device: str | torch.device | None) -> None:
    """Refuse, when a codec is made, a device this machine cannot run (not at its first chunk)."""
    if device is None:
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise SaecodecError(f"device {device!r} is not a torch device ({e})") from None
    if dev.type == "cpu":
        return
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
            raise SaecodecError(f"device {device!r}: CUDA is not available ({why}); use device='cpu', or leave "
                                "device unset to use CUDA only where it is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise SaecodecError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        return
    try:
        torch.empty(1, device=dev)
    except Exception as e:  # noqa: BLE001 - torch raises various types for missing backends
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise SaecodecError(f"device {device!r} is not available on this machine ({first})") from None


def module_on(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` itself on the CPU, else its cached copy on ``device`` (in eval mode)."""
    if device.type == "cpu":
        return module
    key = (id(module), str(device))
    with _copies_lock:
        hit = _copies.get(key)
        if hit is not None and hit[0] is module:  # the source is held, so its id is not reused
            _copies.move_to_end(key)
            return hit[1]
        on_device = copy.deepcopy(module).to(device).eval()
        _copies[key] = (module, on_device)
        while len(_copies) > MAX_COPIES:
            _copies.popitem(last=False)
        return on_device


def batched(fn, x: np.ndarray, device: torch.device, rows: int = BATCH) -> np.ndarray:
    """``fn`` over the rows of ``x`` (at least one row), one pass per BATCH rows, as float32.

    TF32 stays off for convolutions too (cuDNN allows it by default): the error-bounded
    mode reserves room for float32 rounding differences between devices, not for TF32's
    10-bit mantissa.
    """
    import torch

    outs = []
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        for i in range(0, len(x), rows):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + rows])).to(device)
            outs.append(fn(xb).float().cpu().numpy())
    return np.concatenate(outs)


def encode(model, z: np.ndarray, tile: tuple[int, int], device=None) -> np.ndarray:
    """Network inputs (B, th*tw) -> latents (B, ...) float32.

    A model with a frame shape takes flat vectors; one that takes whole frames
    (``frame_shape`` None) takes images (B, 1, th, tw).
    """
    if not getattr(model.module, "uses_torch", True):  # numpy family: its own call, no torch
        return model.module.encode(z, tile)
    if not len(z):
        return np.zeros((0, getattr(model.module, "latent_size", 0)), np.float32)
    dev = resolve_device(device)
    x = z if model.frame_shape is not None else z.reshape(len(z), 1, *tile)
    return batched(module_on(model.module, dev).encode, x, dev, *_rows(model, tile))


def decode(model, latents: np.ndarray, tile: tuple[int, int], device=None) -> np.ndarray:
    """Latents (B, ...) -> network outputs (B, th*tw) float32; a whole-frame model's output
    image is cropped to the frame."""
    n = tile[0] * tile[1]
    if not getattr(model.module, "uses_torch", True):  # numpy family: its own call, no torch
        return model.module.decode(latents, tile).reshape(len(latents), n)
    if not len(latents):
        return np.zeros((0, n), np.float32)
    dev = resolve_device(device)
    out = batched(module_on(model.module, dev).decode, latents, dev, *_rows(model, tile))
    if model.frame_shape is None:
        out = np.ascontiguousarray(out.reshape(len(out), *out.shape[-2:])[:, :tile[0], :tile[1]])
    return out.reshape(len(out), n)


def _rows(model, tile: tuple[int, int]) -> tuple[int, ...]:
    """Frames per pass for a whole-frame model: as many as BATCH_PIXELS hold (else BATCH)."""
    if model.frame_shape is not None:
        return ()
    return (max(1, BATCH_PIXELS // max(1, tile[0] * tile[1])),)


class HyperNet:
    """The networks a hyperprior latent coder runs between its symbols, as numpy calls on
    one device: the pipeline hands it to the coder (coding/ does not import models/)."""

    def __init__(self, model, device=None):
        self.device = resolve_device(device)
        self.module = module_on(model.module, self.device)
        self.levels = self.module.levels
        self._tables = None

    def tables(self) -> dict:
        if self._tables is None:
            self._tables = self.module.entropy_tables()
        return self._tables

    def latent_shapes(self, tile):
        return self.module.latent_shapes(tile)

    def gain(self, level: float) -> np.ndarray:
        """The level's gain per latent channel (M,) float32."""
        import torch

        with torch.inference_mode():
            return self.module.gain(torch.tensor([float(level)])).float().cpu().numpy()[0]

    def analysis(self, yg: np.ndarray, tile) -> np.ndarray:
        """Gained y (B, M, h, w) -> z (B, Nh, hz, wz) float32."""
        return batched(self.module.hyper_analysis, yg, self.device, self._rows(tile))

    def synthesis(self, z_hat: np.ndarray, tile) -> tuple[np.ndarray, np.ndarray]:
        """z_hat (B, Nh, hz, wz) -> mu, sigma (B, M, h, w) float32 each."""
        import torch

        hw = self.latent_shapes(tile)[0][1:]
        out = batched(lambda z: torch.cat(self.module.hyper_synthesis(z, hw), 1), z_hat, self.device,
                      self._rows(tile))
        return out[:, :self.module.M], out[:, self.module.M:]

    def _rows(self, tile) -> int:
        return max(1, BATCH_PIXELS // max(1, tile[0] * tile[1]))
