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
# On the CPU, a frame larger than 1/32 of its chunk's pixels (at least 2^16, at most
# BATCH_PIXELS) goes through such a network in row bands of that many pixels
# (``ConvHyperprior``'s ``band_pixels``): the activations (~430 B per band pixel in
# sas-conv-h's reference kernels) then take one band, ~13 B per pixel of a 4096x4096 frame
# instead of 360-400, and the encoder's outputs keep their bits (payloads their bytes).
BAND_FRACTION, BAND_MIN = 32, 1 << 16
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


def release() -> None:
    """Hand memory freed by a network pass back to the system. glibc serves allocations
    below its adaptive mmap threshold (up to 32 MB) from the heap and keeps what is freed
    there: pass after pass (band after band), a 1024x1024 encode's resident memory grew to
    twice what was alive."""
    if _TRIM is not None:
        _TRIM(0)


def _libc_trim():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


_TRIM = _libc_trim()


def batched(fn, x: np.ndarray, device: torch.device, rows: int = BATCH):
    """``fn`` over the rows of ``x`` (at least one row), one pass per ``rows`` rows, as float32
    (a tuple of arrays where ``fn`` returns a tuple), each pass written into the output; one
    pass's output is returned as it is (no copy: a large frame's latents are 8 B a pixel).

    TF32 stays off for convolutions too (cuDNN allows it by default): the error-bounded
    mode reserves room for float32 rounding differences between devices, not for TF32's
    10-bit mantissa.
    """
    import torch

    outs = None
    release()
    with torch.inference_mode(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        if len(x) <= rows:
            ys = fn(torch.from_numpy(np.ascontiguousarray(x)).to(device))
            ys = tuple(t.float().cpu().numpy() for t in (ys if isinstance(ys, tuple) else (ys,)))
            release()
            return ys[0] if len(ys) == 1 else ys
        for i in range(0, len(x), rows):
            xb = torch.from_numpy(np.ascontiguousarray(x[i:i + rows])).to(device)
            ys = fn(xb)
            ys = [t.float().cpu().numpy() for t in (ys if isinstance(ys, tuple) else (ys,))]
            if outs is None:
                outs = [np.empty((len(x),) + y.shape[1:], np.float32) for y in ys]
            for o, y in zip(outs, ys):
                o[i:i + len(y)] = y
            del xb, ys
    release()
    return outs[0] if len(outs) == 1 else tuple(outs)


def band_pixels(total: int) -> int:
    """Frame pixels a whole-frame network takes at once for a chunk of ``total`` pixels."""
    return min(BATCH_PIXELS, max(BAND_MIN, int(total) // BAND_FRACTION))


def _plan(tile: tuple[int, int], frames: int, device: torch.device, module) -> tuple[int, int | None]:
    """A whole-frame model's (frames per pass, band pixels or None): the passes are what they
    always were (oneDNN's float results depend on the batch; decoded values should not change
    with this saecodec), and only frames larger than a band go through in bands, on the CPU
    (where bands are verified to give the same bits; a GPU keeps whole frames), in a network
    that takes bands (``takes_bands``: its calls take ``band_pixels``; others take frames)."""
    px = tile[0] * tile[1]
    per_pass = max(1, BATCH_PIXELS // max(1, px))
    band = band_pixels(frames * px)
    if px <= band or device.type != "cpu" or not getattr(module, "takes_bands", False):
        return per_pass, None
    return per_pass, band


def _whole_frames(fn, px: int | None):
    """``fn`` of a whole-frame network, given ``px`` band pixels only when it bands."""
    return fn if px is None else (lambda x: fn(x, px))


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
    module = module_on(model.module, dev)
    if model.frame_shape is not None:
        return batched(module.encode, z, dev)
    rows, px = _plan(tile, len(z), dev, module)
    return batched(_whole_frames(module.encode, px), z.reshape(len(z), 1, *tile), dev, rows)


def decode(model, latents: np.ndarray, tile: tuple[int, int], device=None) -> np.ndarray:
    """Latents (B, ...) -> network outputs (B, th*tw) float32; a whole-frame model's output
    image is cropped to the frame (pass by pass)."""
    n = tile[0] * tile[1]
    if not getattr(model.module, "uses_torch", True):  # numpy family: its own call, no torch
        return model.module.decode(latents, tile).reshape(len(latents), n)
    if not len(latents):
        return np.zeros((0, n), np.float32)
    dev = resolve_device(device)
    module = module_on(model.module, dev)
    if model.frame_shape is not None:
        return batched(module.decode, latents, dev)
    rows, px = _plan(tile, len(latents), dev, module)
    net = _whole_frames(module.decode, px)

    def decode(yb):
        return net(yb)[:, 0, :tile[0], :tile[1]]

    return batched(decode, latents, dev, rows).reshape(len(latents), n)


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
        rows, px = self._passes(yg, tile)
        return batched(lambda y: self.module.hyper_analysis(y, px), yg, self.device, rows)

    def synthesis(self, z_hat: np.ndarray, tile) -> tuple[np.ndarray, np.ndarray]:
        """z_hat (B, Nh, hz, wz) -> mu, sigma (B, M, h, w) float32 each."""
        hw = self.latent_shapes(tile)[0][1:]
        rows, px = self._passes(z_hat, tile)
        return batched(lambda z: self.module.hyper_synthesis(z, hw, px), z_hat, self.device, rows)

    def _passes(self, x: np.ndarray, tile) -> tuple[int, int | None]:
        return _plan(tile, len(x), self.device, self.module)
