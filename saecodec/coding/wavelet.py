"""Wavelet latents (the wavelet family): the engine codes the frames themselves.

The family's network is the identity on the transformed frames, so its "latents" are the
frames z (B, H, W). This coder runs the lifting transform, the quantiser and the context
coding in C (``wavelet_engine``, c_wavelet/) and returns the frames z_hat that every
decoder reconstructs bit for bit (float64, fixed operation order), so the quality gate and
the bounded modes measure exactly what a reader gets, on any machine and thread count.

Rate: the codec's ``level`` picks a step from the model's rate levels (log-linear between
them, one step for the chunk); ``target_error`` picks per frame the largest step whose
offset-free relative L2 in the model's domain is at most the target (bisection in C).
Section layout: docs/wavelet.md. The engine's parameters come from ``model.module``
(``engine_params()``, ``step_of_level``, ``rate_levels``); this module imports no model code.
"""

from __future__ import annotations

import numpy as np

from ..errors import PayloadError, SaecodecError
from . import radial as rp
from . import wavelet_engine as we
from .payload import Reader

LATENT_WAVELET = 3  # payload header flag bits 0-1 (docs/format.md)


class WaveletCoder:
    """Latent section: the side info the model's transform needs, then the engine's stream
    (each frame's message carries its step index)."""

    kind, kind_code = "wavelet", LATENT_WAVELET
    value_code = 0  # no stored value type: symbols are integers
    rate_control = True  # takes ``level`` and ``target_error``
    # the bounded modes' prediction: steps tried per chunk, in units of the bound's typical reach
    # in the model's domain (chunk._bound_steps); the smallest payload is kept
    BOUND_STEP_FACTORS = (2.0, 3.5, 6.0)

    def __init__(self, model, value_code: int = 0, *, level=None, target_error=None):
        self.module = model.module
        tr = model.transform
        # what Transform.forward's side info holds: per-frame offsets (and scales), or nothing
        self.offsets = bool(tr.per_frame)
        self.scales = bool(tr.per_frame) and tr.normalise == "std"
        self.engine = we.engine_for(model.identity or id(model), self.module.engine_params)
        levels = int(self.module.rate_levels)
        if level is not None and not 0 <= float(level) <= levels - 1:
            raise SaecodecError(f"level {level} is outside model {model.name!r}'s rate levels 0 .. {levels - 1}")
        self.level = (levels - 1) / 2 if level is None else float(level)
        self.target_error = None if target_error is None else float(target_error)
        self.frame_steps = None  # per-frame steps (the bounded modes), overriding level and target_error
        self.step_index = None  # per-frame step indices (refine), overriding everything
        self.used = None  # the step indices of the last write
        # the radial prediction block (coding/radial.py): written where the model asks for it and
        # no target_error search is on (its error is the frame's, not the residual's); read where
        # the payload header says (the pipeline sets it, EXT_RADIAL)
        self.radial = getattr(self.module, "radial", None) if self.target_error is None else None
        self.radial_block = self.radial is not None
        self._centres: dict = {}  # frame -> beam centre (encoder: the chunk's codings share them)
        self._choice: dict = {}  # (frame, step) -> its radial record, or None: plain
        self._kstep = None

    # -- encoder ----------------------------------------------------------------------------
    def write(self, latents: np.ndarray, side: np.ndarray) -> tuple[bytes, np.ndarray, np.ndarray]:
        """Frames z (B, H, W) -> (section, z_hat (B, H, W) float64 as every decoder reads it, side)."""
        z = np.asarray(latents, np.float64)
        if z.ndim != 3:
            raise SaecodecError(f"the wavelet coder takes frames (B, H, W), got shape {z.shape}")
        b = len(z)
        side = np.asarray(side, np.float32).reshape(b, 2).copy()
        if not self.offsets:
            side[:, 0] = 0.0
        if not self.scales:
            side[:, 1] = 1.0
        out = bytearray()
        if self.offsets:
            out += side[:, 0].astype("<f4").tobytes()
        if self.scales:
            out += side[:, 1].astype("<f4").tobytes()
        if not b:
            if self.radial_block:
                rp.write_block(out, [], 1, 0)
            return bytes(out), z.copy(), side
        if self.step_index is not None:
            steps = self.step_index
        elif self.frame_steps is not None:
            steps = np.array([we.step_index(d) for d in np.broadcast_to(self.frame_steps, (b,))], np.int32)
        elif self.target_error is None:
            steps = np.full(b, we.step_index(self.module.step_of_level(self.level)), np.int32)
        else:
            steps = self.engine.search(z, self.target_error, 0, we.STEP_MAX)
        radial = None
        if self.radial_block:
            z, radial = self._radial(z, np.asarray(steps, np.int64), out)
        data, z_hat, self.used = self.engine.encode(z, steps)
        if radial is not None:
            rp.add(z_hat, *radial)  # what the decoder adds
        return bytes(out + data), z_hat, side

    def _radial(self, z: np.ndarray, steps: np.ndarray, out: bytearray) -> tuple[np.ndarray, tuple]:
        """Per frame, the plain frame or its residual after the radial prediction, whichever codes
        with the smaller rate-distortion cost (each coded alone at its step); writes the block.
        Returns (what the engine codes, (records, h16, knot step))."""
        h16, cfac = self.radial["h16"], self.radial["cfac"]
        if self._kstep is None:  # the chunk's knot step, from its first coding: later codings of some
            self._kstep = max(int(steps.min()) - 256 * cfac, 0)  # frames (refine, the gate) keep each frame's choice
        sp = float(we.step(self._kstep))
        keys = [(hash(f.tobytes()), int(k)) for f, k in zip(z, steps)]
        todo = [j for j, k in enumerate(keys) if k[0] not in self._centres]
        if todo:
            for j, c in zip(todo, rp.centres(z[todo], h16 / rp.SUB)):
                self._centres[keys[j][0]] = (int(c[0]), int(c[1]))
        need = [j for j, k in enumerate(keys) if k not in self._choice]
        if need:
            fits, predicted = rp.fit(z[need], np.array([self._centres[keys[j][0]] for j in need], np.int64), h16, sp)
            for j, rec, pred in zip(need, fits, predicted):
                f, s, res = z[j], float(we.step(keys[j][1])), z[j] - pred
                d0, zh0, _ = self.engine.encode(f[None], steps[j:j + 1])
                d1, zh1, _ = self.engine.encode(res[None], steps[j:j + 1])
                j0 = ((zh0[0] - f) ** 2).sum() / s ** 2 + rp.LAM_BITS * 8 * len(d0)
                j1 = ((zh1[0] - res) ** 2).sum() / s ** 2 + rp.LAM_BITS * 8 * (len(d1) + rp.record_bytes(rec))
                self._choice[keys[j]] = rec if j1 < j0 else None
        records = [self._choice[k] for k in keys]
        coded = z
        if any(r is not None for r in records):
            coded = z.copy()
            flagged = [j for j, r in enumerate(records) if r is not None]
            coded[flagged] -= rp.predict(z.shape[1:], [records[j] for j in flagged], h16, sp)
        rp.write_block(out, records, h16, self._kstep)
        return coded, (records, h16, sp)

    def _radial_block(self, reader: Reader, frames: int, tile) -> tuple | None:
        """The payload's radial predictions (records, h16, knot step), or None where it has none."""
        if not self.radial_block:
            return None
        records, h16, kstep = rp.read_block(reader, frames, tile)
        if not any(r is not None for r in records):
            return None
        return records, h16, float(we.step(kstep))

    def refine(self, frames: np.ndarray, attempt: int) -> bool:
        """Finer steps for the frames (B,) bool of the last write that missed the pure mode's target:
        half an octave finer the first time, then an octave per attempt (the decoder reads each
        frame's step, the format does not change); False when no frame can go finer."""
        k = np.array(self.used, np.int64)
        finer = np.maximum(k - (128 if attempt == 0 else 256), 0)
        if not (finer[frames] < k[frames]).any():
            return False
        self.step_index = np.where(frames, finer, k).astype(np.int32)
        return True

    def recode(self, latents: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """z_hat of only the frames (B,) bool at the steps ``refine`` set, without the chunk's
        message: a frame's z_hat and step depend on that frame and its step alone (quantiser,
        RDO and profile choice are per frame), so the pure mode's refinement codes the missed
        frames alone and the chunk once at the end (``write``: the same bytes as coding the whole
        chunk at every attempt, which cost 5-7 whole-chunk codings on 64-frame stacks)."""
        sub, radial = np.asarray(latents, np.float64)[frames], None
        if self.radial_block:  # each frame's own choice at its new step (the chunk's knot step is kept)
            sub, radial = self._radial(sub, self.step_index[frames].astype(np.int64), bytearray())
        _, z_hat, used = self.engine.encode(sub, self.step_index[frames])
        if radial is not None:
            rp.add(z_hat, *radial)
        k = np.array(self.used, np.int32)
        k[frames] = used
        self.used = self.step_index = k
        return z_hat

    def select(self, frames: np.ndarray) -> None:
        """The next write codes only these frames (B,) bool of the last one (the quality gate's
        kept frames), each at the step it was coded with, so their z_hat stays the same."""
        self.step_index = np.asarray(self.used, np.int32)[frames]

    # -- decoder ----------------------------------------------------------------------------
    def read_final(self, reader: Reader, frames: int, tile: tuple[int, int], dtype: np.dtype, transform):
        """The frames (B, h, w) as the chunk's element type, decoded straight through the model's
        inverse transform and the cast (one C pass per frame) where that is the same as
        ``read`` + ``Transform.inverse`` + ``bound.cast``: float32 chunks and a linear transform;
        else None (nothing read)."""
        if dtype != np.float32 or transform.kind != "linear" or not frames:
            return None
        start = reader.pos
        if self.offsets or self.scales:
            side = self._side(reader, frames)
            fs, fo = side[:, 1], side[:, 0]
        else:
            fs = fo = None
        if self.radial_block:
            if any(reader.buf[reader.pos:reader.pos + (frames + 7) // 8]):  # predictions to add: the generic path
                reader.pos = start
                return None
            rp.read_block(reader, frames, tile)  # the empty block
        out, used = self.engine.decode_f32(reader.buf[reader.pos:], (frames, *tile), fs, fo, transform.scale)
        reader.take(used)
        return out

    def _side(self, reader: Reader, frames: int) -> np.ndarray:
        side = np.zeros((frames, 2), np.float32)
        side[:, 1] = 1.0
        if self.offsets:
            side[:, 0] = reader.array("<f4", frames)
        if self.scales:
            side[:, 1] = reader.array("<f4", frames)
        if not np.isfinite(side).all():
            raise PayloadError("corrupted payload: non-finite frame normalisation")
        return side

    def read(self, reader: Reader, frames: int, tile: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        side = self._side(reader, frames)
        preds = self._radial_block(reader, frames, tile)
        h, w = tile
        if frames == 0:
            return np.zeros((0, h, w)), side
        z_hat, _, used = self.engine.decode(reader.buf[reader.pos:], (frames, h, w))
        reader.take(used)
        if preds is not None:
            rp.add(z_hat, *preds)
        return z_hat, side
