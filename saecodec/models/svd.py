"""SVD with a backward pass that stays finite on rank-deficient matrices.

torch's SVD backward divides by s_j^2 - s_i^2 and by s_i: a latent matrix of lower rank
than its size has repeated zero singular values, and the gradient becomes NaN even when
the loss only depends on the leading, well-separated ones (the rank reduction
autoencoder truncates to exactly those). Following the Rank Reduction Autoencoders
paper's appendix, singular values below ``REL_TOL`` times the largest (or below the
numerical rank threshold eps * max(m, n), which matters in float32) are treated as zero
and their 1/s terms are masked out. Nearly equal singular values are guarded by
broadening 1/d (d = s_j^2 - s_i^2) to d / (d^2 + eps^2) with eps = ``GAP_TOL * s_max^2``:
unchanged where the gap is large, zero where it vanishes, bounded by 1/(2 eps) in between
(an unbounded 1/d made float32 training diverge to NaN in the adaptive rank search).
"""

from __future__ import annotations

import torch

REL_TOL = 1e-9
GAP_TOL = 1e-6


class StableSVD(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: torch.Tensor):
        try:
            u, s, vh = torch.linalg.svd(a, full_matrices=False)
        except torch.linalg.LinAlgError:
            # cuSOLVER's iterative SVD can fail to converge on ill-conditioned latents
            # (seen on an H100 during the adaptive rank search); LAPACK in float64 does not.
            u, s, vh = (t.to(a.device, a.dtype) for t in torch.linalg.svd(a.detach().cpu().double(),
                                                                          full_matrices=False))
        ctx.save_for_backward(u, s, vh)
        return u, s, vh

    @staticmethod
    def backward(ctx, gu, gs, gvh):
        u, s, vh = ctx.saved_tensors
        v = vh.mT
        smax = s.max().clamp_min(torch.finfo(s.dtype).tiny)
        # numerical rank, as numpy.linalg.matrix_rank: below it, 1/s amplifies round-off only
        rel = max(REL_TOL, torch.finfo(s.dtype).eps * max(u.shape[-2], vh.shape[-1]))
        live = s > rel * smax
        s_inv = torch.where(live, 1.0 / torch.where(live, s, torch.ones_like(s)), torch.zeros_like(s))
        s2 = s * s
        diff = s2.unsqueeze(-2) - s2.unsqueeze(-1)  # diff[i, j] = s_j^2 - s_i^2
        eps = GAP_TOL * smax * smax
        f = diff / (diff * diff + eps * eps)
        eye = torch.eye(s.shape[-1], dtype=s.dtype, device=s.device)
        s_mat = torch.diag_embed(s)
        inner = torch.zeros_like(f)
        if gu is not None:
            utgu = u.mT @ gu
            inner = inner + (f * (utgu - utgu.mT)) @ s_mat
        if gvh is not None:
            gv = gvh.mT
            vtgv = v.mT @ gv
            inner = inner + s_mat @ (f * (vtgv - vtgv.mT))
        if gs is not None:
            inner = inner + eye * gs.unsqueeze(-2)
        ga = u @ inner @ vh
        if gu is not None:  # component of dU outside span(U)
            ga = ga + (gu - u @ (u.mT @ gu)) @ torch.diag_embed(s_inv) @ vh
        if gvh is not None:
            gv = gvh.mT
            ga = ga + u @ torch.diag_embed(s_inv) @ (gv - v @ (v.mT @ gv)).mT
        return ga


def stable_svd(a: torch.Tensor):
    """(U, S, Vh) of the thin SVD of ``a``, with the stable backward."""
    return StableSVD.apply(a)


def truncate(a: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank-k truncation of ``a`` and its leading left singular vectors U_k."""
    u, s, vh = stable_svd(a)
    uk = u[..., :, :k]
    return uk @ torch.diag_embed(s[..., :k]) @ vh[..., :k, :], uk
