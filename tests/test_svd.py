import pytest
import torch

from saecodec.models.svd import stable_svd, truncate


def fd_grad(fn, a, eps):
    g = torch.zeros_like(a)
    flat = a.reshape(-1)
    for i in range(flat.numel()):
        old = flat[i].item()
        flat[i] = old + eps
        up = fn(a).item()
        flat[i] = old - eps
        down = fn(a).item()
        flat[i] = old
        g.reshape(-1)[i] = (up - down) / (2 * eps)
    return g


def low_rank(m, n, r, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    b = torch.randn(m, r, generator=gen, dtype=dtype)
    c = torch.randn(r, n, generator=gen, dtype=dtype)
    s = torch.diag(torch.tensor([3.0, 2.0, 1.2, 0.7][:r], dtype=dtype))
    qb, _ = torch.linalg.qr(b)
    qc, _ = torch.linalg.qr(c.mT)
    return qb @ s @ qc.mT


def weights(m, n, dtype):
    return torch.randn(m, n, generator=torch.Generator().manual_seed(9), dtype=dtype)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 2e-2)])
def test_full_rank_matches_finite_differences(dtype, tol):
    a = torch.randn(7, 5, generator=torch.Generator().manual_seed(1), dtype=dtype)
    w = weights(7, 5, dtype)
    loss = lambda x: (truncate(x, 3)[0] * w).sum() + stable_svd(x)[1].sum()  # noqa: E731
    x = a.clone().requires_grad_(True)
    loss(x).backward()
    fd = fd_grad(loss, a.clone(), 1e-6 if dtype == torch.float64 else 1e-2)
    torch.testing.assert_close(x.grad, fd, atol=tol, rtol=tol)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 2e-2)])
def test_rank_deficient_is_finite_and_correct(dtype, tol):
    a = low_rank(8, 6, 2, dtype)  # rank 2: four zero singular values
    w = weights(8, 6, dtype)
    loss = lambda x: (truncate(x, 2)[0] * w).sum()  # noqa: E731
    x = a.clone().requires_grad_(True)
    loss(x).backward()
    assert torch.isfinite(x.grad).all()
    fd = fd_grad(loss, a.clone(), 1e-6 if dtype == torch.float64 else 1e-2)
    torch.testing.assert_close(x.grad, fd, atol=tol, rtol=tol)


def test_torch_own_backward_gives_nan_where_ours_does_not():
    """Dead latent units (all-zero rows of the latent matrix) give exactly zero singular values."""
    gen = torch.Generator().manual_seed(4)
    a = torch.cat([torch.randn(2, 6, generator=gen, dtype=torch.float64), torch.zeros(6, 6, dtype=torch.float64)])
    w = weights(8, 6, torch.float64)
    x = a.clone().requires_grad_(True)
    u, s, vh = torch.linalg.svd(x, full_matrices=False)
    ((u[:, :2] @ torch.diag(s[:2]) @ vh[:2]) * w).sum().backward()
    assert torch.isnan(x.grad).any()
    y = a.clone().requires_grad_(True)
    (truncate(y, 2)[0] * w).sum().backward()
    assert torch.isfinite(y.grad).all()
    fd = fd_grad(lambda x: (truncate(x, 2)[0] * w).sum(), a.clone(), 1e-6)
    torch.testing.assert_close(y.grad, fd, atol=1e-6, rtol=1e-6)


def test_gradcheck_full_rank():
    a = torch.randn(6, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64, requires_grad=True)
    w = weights(6, 4, torch.float64)
    assert torch.autograd.gradcheck(lambda x: (truncate(x, 2)[0] * w).sum(), (a,))


def test_falls_back_to_lapack_when_the_svd_does_not_converge(monkeypatch):
    real = torch.linalg.svd
    calls = []

    def flaky(a, full_matrices=True):
        calls.append(a.dtype)
        if len(calls) == 1:
            raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")
        return real(a, full_matrices=full_matrices)

    monkeypatch.setattr(torch.linalg, "svd", flaky)
    a = torch.randn(5, 4, dtype=torch.float32, requires_grad=True)
    u, s, vh = stable_svd(a)
    assert calls == [torch.float32, torch.float64] and u.dtype == torch.float32
    torch.testing.assert_close(u @ torch.diag(s) @ vh, a.detach(), atol=1e-5, rtol=1e-5)
    s.sum().backward()
    assert torch.isfinite(a.grad).all()
