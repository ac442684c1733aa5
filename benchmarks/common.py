"""What the benchmark scripts share: the codec round trip that every model is measured by, and
the best-of-N timer.

Scripts import it as ``from common import codec_eval`` (they run from this directory).
"""

from __future__ import annotations

import time

import numpy as np

from saecodec import chunk
from saecodec.metrics import frame_metrics


def codec_bytes(model, frames: np.ndarray, chunk_frames: int = 64, device=None) -> int:
    """Bytes the codec writes for ``frames`` in chunks of ``chunk_frames`` (headers included)."""
    return sum(len(chunk.encode_chunk(model, frames[i:i + chunk_frames], device=device))
               for i in range(0, len(frames), chunk_frames))


def codec_eval(model, frames: np.ndarray, chunk_frames: int = 64, device=None) -> dict:
    """Encode and decode ``frames`` through the real codec: bytes per frame, ratio, the
    errors of :func:`saecodec.metrics.frame_metrics` and the speeds."""
    model.module.eval()
    nbytes = 0
    recon = np.empty_like(frames)
    t_enc = t_dec = 0.0
    for i in range(0, len(frames), chunk_frames):
        c = frames[i:i + chunk_frames]
        t0 = time.perf_counter()
        payload = chunk.encode_chunk(model, c, device=device)
        t1 = time.perf_counter()
        recon[i:i + chunk_frames] = chunk.decode_chunk(model, payload, device=device)
        t2 = time.perf_counter()
        nbytes += len(payload)
        t_enc += t1 - t0
        t_dec += t2 - t1
    m = frame_metrics(frames, recon, model.transform)
    return {
        "bytes_per_frame": nbytes / len(frames),
        "ratio": frames.nbytes / nbytes,
        **{k: m[k] for k in ("rel_l2_t", "rel_l2_t_median_frame", "rel_l2_i")},
        "encode_MBps": frames.nbytes / 1e6 / t_enc,
        "decode_MBps": frames.nbytes / 1e6 / t_dec,
    }


def best_time(fn, repeat: int):
    """(the shortest of ``repeat`` wall-clock runs of ``fn()``, in seconds, and its last result)."""
    out, times = None, []
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out
