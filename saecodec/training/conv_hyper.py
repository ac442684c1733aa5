"""Training the conv-hyper family: rate-distortion loss over continuous rate levels, on crops.

Loss per frame: estimated bits + lambda(level) * SSE (in the transformed domain's units:
log10 for intensities, the numerator of the project's error metric), averaged per pixel;
each frame of a batch draws its level uniformly in [0, L - 1], so one network serves
every rate. Crops of the training frames (a convolutional network sees every position
alike), mean-free per crop as the codec's transform makes each frame, with the eight
flips/transposes. Adam, warm-up then cosine decay; checkpoint/resume with the random
state, so a resumed run continues the same run. After the last step the entropy tables
are frozen into integers (``ConvHyperprior.freeze_tables``), without which no codec can
use the model. The recipe goes into the model's provenance.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import SaecodecError
from ..models.conv_hyper import ConvHyperprior, lambda_of
from ..models.densities import gaussian_likelihood
from ..models.model import Model
from ..models.runtime import resolve_device
from ..models.transforms import Transform
from .loop import load_checkpoint


@dataclass
class ConvHyperConfig:
    steps: int = 20000
    batch: int = 16
    crop: int = 64
    lr: float = 1e-3
    lr_end: float = 2e-5
    warmup: int = 200
    seed: int = 0
    device: str | None = None
    checkpoint: str | None = None
    resume: bool = False
    checkpoint_every: int = 500
    augment: bool = True
    val_fraction: float = 0.05
    progress: bool = True


LOG10_FLOOR = 1e-6


def prepare_frames(frames: np.ndarray, transform: Transform, log10: np.ndarray | None = None,
                   block: int = 4096) -> np.ndarray:
    """Intensities (N, H, W) -> the transformed domain u, float32, a block of frames at a time
    (tens of thousands of frames fit in memory); non-finite pixels get the frame's median (the
    codec masks them and fills likewise). Frames flagged in ``log10`` enter as
    log10(max(I, 1e-6)), the domain the research recipe trained its simulated sets in (the
    asinh domain less a constant where I >> scale; the per-crop mean drops the constant)."""
    flag = np.zeros(len(frames), bool) if log10 is None else np.asarray(log10, bool)
    out = np.empty(frames.shape, np.float32)
    for s in range(0, len(frames), block):
        x = np.asarray(frames[s:s + block], np.float64)
        u = transform.to_u(x)
        f = flag[s:s + block]
        if f.any():
            u[f] = np.log10(np.maximum(x[f], LOG10_FLOOR))
        bad = ~np.isfinite(u)
        for i in np.flatnonzero(bad.any(axis=(1, 2))):
            ok = u[i][~bad[i]]
            u[i][bad[i]] = np.median(ok) if ok.size else 0.0
        out[s:s + block] = u
    return out


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    return x


def _batch(u: np.ndarray, rng: np.random.Generator, cfg: ConvHyperConfig) -> torch.Tensor:
    idx = rng.integers(0, len(u), cfg.batch)
    ch, cw = min(cfg.crop, u.shape[1]), min(cfg.crop, u.shape[2])
    oy, ox = rng.integers(0, u.shape[1] - ch + 1), rng.integers(0, u.shape[2] - cw + 1)
    xb = u[idx, oy:oy + ch, ox:ox + cw].astype(np.float64)
    xb = xb - xb.reshape(len(xb), -1).mean(axis=1).astype(np.float32)[:, None, None]
    x = torch.from_numpy(xb.astype(np.float32))[:, None]
    return _dihedral(x, int(rng.integers(8))) if cfg.augment else x


def _lr(step: int, cfg: ConvHyperConfig) -> float:
    lr = cfg.lr if step >= cfg.warmup else cfg.lr * (step + 1) / max(cfg.warmup, 1)
    return cfg.lr_end + (lr - cfg.lr_end) * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1)))


@torch.no_grad()
def evaluate(module: ConvHyperprior, u: np.ndarray, levels, batch: int = 64) -> list[dict]:
    """Per level: estimated bytes per frame (the trained likelihoods at rounded latents) and
    the relative L2 of the mean-free frames (aggregated over the set, and the median)."""
    module.eval()
    out = []
    x = torch.from_numpy(u - u.reshape(len(u), -1).mean(axis=1)[:, None, None])[:, None].float()
    H, W = x.shape[-2:]
    for lv in levels:
        e2, d2, bits = [], [], []
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            g = module.gain(torch.full((len(xb),), float(lv)))[:, :, None, None]
            y = module.encode(xb) * g
            z_hat = torch.round(module.hyper_analysis(y))
            mu, sigma = module.hyper_synthesis(z_hat, y.shape[-2:])
            y_hat = torch.round(y - mu) + mu
            b = -torch.log2(gaussian_likelihood(y_hat, mu, sigma)).sum((1, 2, 3)) \
                - torch.log2(module.z_density.likelihood(z_hat)).sum((1, 2, 3))
            xh = module.decode(y_hat / g)[..., :H, :W]
            e2.append(((xh - xb) ** 2).sum((1, 2, 3)))
            d2.append(((xb - xb.mean((2, 3), keepdim=True)) ** 2).sum((1, 2, 3)).clamp_min(1e-30))
            bits.append(b)
        e2, d2, bits = torch.cat(e2), torch.cat(d2), torch.cat(bits)
        out.append({"level": float(lv), "bytes_per_frame": float(bits.mean() / 8),
                    "rel_l2": float((e2.sum() / d2.sum()).sqrt()), "median_rel_l2": float((e2 / d2).sqrt().median())})
    return out


def train_conv_hyper(frames: np.ndarray, *, arch: dict, transform: Transform, cfg: ConvHyperConfig, name: str,
                     provenance: dict | None = None, log10: np.ndarray | None = None) -> tuple[Model, dict]:
    """Train a conv-hyper model on intensities ``frames`` (N, H, W); returns the frozen Model
    (whole frames, ``transform`` with mean-only normalisation) and the run's record. ``log10``:
    per frame, train on log10(I) instead of the transform (``prepare_frames``)."""
    if frames.ndim != 3 or len(frames) < 2:
        raise SaecodecError(f"training needs a stack of at least 2 frames (N, H, W), got shape {frames.shape}")
    if transform.normalise != "mean":
        raise SaecodecError("conv-hyper models are trained on mean-free frames: Transform(normalise='mean')")
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    module = ConvHyperprior(**arch)
    if log10 is not None and np.shape(log10) != (len(frames),):
        raise SaecodecError(f"log10 flags one value per frame: {np.shape(log10)} for {len(frames)} frames")
    u = prepare_frames(frames, transform, log10)
    perm = np.random.default_rng(cfg.seed).permutation(len(u))
    n_val = min(max(1, int(round(len(u) * cfg.val_fraction))), len(u) - 1)
    u_val, u_tr = u[perm[:n_val]], u[perm[n_val:]]
    opt = torch.optim.Adam(module.parameters(), lr=cfg.lr)
    state = {"step": 0, "cpu_s": 0.0, "wall_s": 0.0, "rng": np.random.default_rng([cfg.seed, 1]).bit_generator.state}
    ckpt = Path(cfg.checkpoint) if cfg.checkpoint else None
    if ckpt and cfg.resume and ckpt.exists():
        saved = load_checkpoint(ckpt)
        if saved.get("arch") != module.architecture:
            raise SaecodecError(f"checkpoint {ckpt} is of another architecture ({saved.get('arch')})")
        module.load_state_dict(saved["module"])
        opt.load_state_dict(saved["opt"])
        state = saved["state"]
        torch.set_rng_state(saved["torch_rng"])
    rng = np.random.default_rng()
    rng.bit_generator.state = state["rng"]
    module.to(device).train()
    for group_state in opt.state.values():
        for k, v in group_state.items():
            if torch.is_tensor(v):
                group_state[k] = v.to(device)
    L = module.levels
    t_wall, t_cpu, w0, c0 = time.time(), time.process_time(), state["wall_s"], state["cpu_s"]
    bar = tqdm(total=cfg.steps, initial=state["step"], desc=f"train {name}", disable=not cfg.progress, unit="step")
    run = []
    while state["step"] < cfg.steps:
        for gp in opt.param_groups:
            gp["lr"] = _lr(state["step"], cfg)
        x = _batch(u_tr, rng, cfg)
        level = rng.uniform(0, L - 1, len(x))
        xp = module.pad(x).to(device)
        xh, bits = module(xp, torch.from_numpy(level).float().to(device))
        H, W = x.shape[-2:]
        err = ((xh[..., :H, :W] - x.to(device)) ** 2).sum((1, 2, 3))
        lam = torch.from_numpy(lambda_of(module.lambdas, level)).float().to(device)
        loss = (bits + lam * err).sum() / (len(x) * H * W)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training diverged (loss {float(loss)}) at step {state['step']}; "
                                     "lower the learning rate")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 5.0)
        opt.step()
        state["step"] += 1
        state["wall_s"], state["cpu_s"] = w0 + time.time() - t_wall, c0 + time.process_time() - t_cpu
        run.append((float(bits.detach().mean()) / 8, float(err.detach().mean()) / (H * W)))
        bar.update(1)
        if state["step"] % 20 == 0 or state["step"] == cfg.steps:
            b, e = np.mean(run, axis=0)
            bar.set_postfix({"bytes/frame": f"{b:.1f}", "mse": f"{e:.3g}"})
            run = []
        if ckpt and (state["step"] % cfg.checkpoint_every == 0 or state["step"] == cfg.steps):
            state["rng"] = rng.bit_generator.state
            _save_checkpoint(ckpt, module, opt, state, cfg)
    bar.close()
    module.to("cpu").eval()
    module.freeze_tables()
    val = evaluate(module, u_val, [0, (L - 1) / 2, L - 1])
    record = {"family": "conv-hyper", "arch": {k: v for k, v in module.architecture.items() if k != "tables"},
              "transform": transform.to_dict(), "config": {k: v for k, v in asdict(cfg).items()
                                                           if k not in ("checkpoint", "resume", "progress")},
              "frames": int(len(u)), "log10_frames": int(np.count_nonzero(log10)) if log10 is not None else 0,
              "frame_shape": list(u.shape[1:]), "steps": state["step"],
              "cpu_s": round(state["cpu_s"], 1), "wall_s": round(state["wall_s"], 1),
              "loss": "bits + lambda(level) * SSE per pixel, levels uniform in [0, L-1]", **(provenance or {})}
    model = Model(module, None, transform, name, provenance=json.dumps(record, sort_keys=True),
                  metrics={"val_estimated": val}, storage_dtype="float16")
    return model, {"record": record, "val": val}


def _save_checkpoint(path: Path, module, opt, state: dict, cfg: ConvHyperConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"module": {k: v.cpu() for k, v in module.state_dict().items()}, "opt": opt.state_dict(),
                "state": dict(state), "arch": module.architecture, "config": asdict(cfg),
                "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)
