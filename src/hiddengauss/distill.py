"""Linear distillation of a denoiser (paper §3): the affine map closest to D(·;σ).

For each σ, find W_σ, b_σ minimizing E_x ‖W_σ x + b_σ − D(x;σ)‖² over noisy inputs
x = y + σn. The official code trains a d×d ``Linear`` by Adam with hand-tuned per-σ learning
rates; the minimizer has a closed form (ordinary least squares),

    W_σ = C_Dx C_xx⁻¹,   b_σ = E[D] − W_σ E[x],

with C_xx = Cov(x) and C_Dx = Cov(D(x), x), accumulated in float64 over M noisy inputs. Both
are implemented: ``closed_form`` (default) and ``sgd`` (the official procedure, for comparison).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from .io import read_array
from .sampling import Denoiser

# Per-σ Adam learning rates of the official train_linear_model.py (EDM-VP on FFHQ, grid G10).
OFFICIAL_SGD_LRS = {
    80.0: 5e-5, 42.4152: 5e-5, 21.1087: 5e-5, 9.7232: 5e-5, 4.0661: 5e-5,
    1.5017: 5e-4, 0.47: 5e-4, 0.1166: 5e-3, 0.0204: 5e-2, 0.002: 5e-2,
}  # fmt: skip


def official_sgd_lr(sigma: float) -> float:
    """The official learning rate of the G10 level nearest to σ (in log σ)."""
    keys = np.array(list(OFFICIAL_SGD_LRS))
    return OFFICIAL_SGD_LRS[float(keys[np.argmin(np.abs(np.log(keys) - np.log(sigma)))])]


def noisy_inputs(y: torch.Tensor, sigma: float, n_samples: int, batch: int, seed: int) -> Iterator[torch.Tensor]:
    """Batches of x = y_{i mod n} + σ·n_i, i < n_samples (float64).

    The noise sequence depends only on ``seed`` (not on σ or the model), so every model and
    every σ is evaluated on the same noise draws.
    """
    gen = torch.Generator().manual_seed(seed)
    n = y.shape[0]
    for start in range(0, n_samples, batch):
        m = min(batch, n_samples - start)
        idx = torch.arange(start, start + m, device=y.device) % n
        noise = torch.randn(m, y.shape[1], generator=gen, dtype=torch.float64).to(y.device)
        yield y[idx].to(torch.float64) + sigma * noise


class CrossMoments:
    """Streaming float64 first and second moments of paired rows (x, t), shifted for stability."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, x: torch.Tensor, t: torch.Tensor) -> None:
        x, t = x.to(torch.float64), t.to(torch.float64)
        if self.n == 0:
            self.shift_x, self.shift_t = x.mean(0), t.mean(0)
            d, k = x.shape[1], t.shape[1]
            self.sx = torch.zeros(d, dtype=torch.float64, device=x.device)
            self.st = torch.zeros(k, dtype=torch.float64, device=x.device)
            self.sxx = torch.zeros(d, d, dtype=torch.float64, device=x.device)
            self.stx = torch.zeros(k, d, dtype=torch.float64, device=x.device)
        xs, ts = x - self.shift_x, t - self.shift_t
        self.sx += xs.sum(0)
        self.st += ts.sum(0)
        self.sxx.addmm_(xs.T, xs)
        self.stx.addmm_(ts.T, xs)
        self.n += x.shape[0]

    def moments(self):
        """(E[x], E[t], Cov(x), Cov(t, x))."""
        mx, mt = self.sx / self.n, self.st / self.n
        cxx = self.sxx / self.n - torch.outer(mx, mx)
        ctx = self.stx / self.n - torch.outer(mt, mx)
        return self.shift_x + mx, self.shift_t + mt, (cxx + cxx.T) / 2, ctx


def affine_least_squares(
    mean_x: torch.Tensor, mean_t: torch.Tensor, cov_xx: torch.Tensor, cov_tx: torch.Tensor, ridge: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimizer of E‖W x + b − t‖² (+ ridge·‖W‖²_F): W = C_tx (C_xx + ridge·I)⁻¹, b = E[t] − W E[x]."""
    a = cov_xx + ridge * torch.eye(cov_xx.shape[0], dtype=cov_xx.dtype, device=cov_xx.device)
    w = torch.linalg.solve(a, cov_tx.T).T  # C_xx symmetric
    return w, mean_t - w @ mean_x


def distill_closed_form(
    denoise: Denoiser, y: torch.Tensor, sigma: float, n_samples: int, batch: int = 512, seed: int = 0, ridge: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Closed-form linear distillation of ``denoise`` at σ on x = y + σn (``n_samples`` draws).

    Returns (W, b, fit RMSE): the RMSE (per pixel) between W x + b and D(x;σ) on the fit inputs,
    computed from the same moments: E‖Wx+b−D‖² = tr(C_DD) − 2 tr(W C_Dx ᵀ) + tr(W C_xx Wᵀ)
    + ‖W E[x] + b − E[D]‖² (the last term is 0 at the optimum).
    """
    mom = CrossMoments()
    sq_t = torch.zeros((), dtype=torch.float64, device=y.device)  # on the device: no sync per batch
    for x in noisy_inputs(y, sigma, n_samples, batch, seed):
        t = denoise(x, sigma).to(torch.float64)
        mom.update(x, t)
        sq_t += ((t - mom.shift_t) ** 2).sum()
    sq_t = float(sq_t)
    mx, mt, cxx, ctx = mom.moments()
    w, b = affine_least_squares(mx, mt, cxx, ctx, ridge)
    d = y.shape[1]
    tr_ctt = sq_t / mom.n - float(((mt - mom.shift_t) ** 2).sum())
    mse = (tr_ctt - 2 * float((w * ctx).sum()) + float((w @ cxx * w).sum())) / d
    return w, b, float(np.sqrt(max(mse, 0.0)))


def distill_sgd(
    denoise: Denoiser, y: torch.Tensor, sigma: float, epochs: int, lr: float | None = None,
    batch: int = 256, seed: int = 0, callback: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:  # fmt: skip
    """The official procedure (train_linear_model.py): a zero-initialised d×d ``Linear`` on the
    input divided by √d, Adam with the per-σ learning rate, MSE loss, ``epochs`` passes over y
    in fixed order (batch 256) with fresh noise every batch. Returns (W, b, loss per epoch).
    ``callback(epoch, W, b)`` is called after every epoch (benchmarks track convergence)."""
    torch.manual_seed(seed)
    d = y.shape[1]
    lin = torch.nn.Linear(d, d).to(y.device)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.Adam(lin.parameters(), lr=lr if lr is not None else official_sgd_lr(sigma))
    gen = torch.Generator().manual_seed(seed)
    yf = y.to(torch.float32)
    losses = []
    for _ in range(epochs):
        total = 0.0
        for start in range(0, len(yf), batch):
            yb = yf[start : start + batch]
            x = yb + sigma * torch.randn(yb.shape, generator=gen).to(yb.device)
            with torch.no_grad():
                target = denoise(x, sigma).to(torch.float32)
            loss = torch.nn.functional.mse_loss(lin(x / np.sqrt(d)), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(yb)
        losses.append(total / len(yf))
        if callback is not None:
            callback(len(losses), lin.weight.detach().to(torch.float64) / np.sqrt(d), lin.bias.detach().to(torch.float64))
    w = lin.weight.detach().to(torch.float64) / np.sqrt(d)
    return w, lin.bias.detach().to(torch.float64), losses


def relative_frobenius_error(w: torch.Tensor, w_ref: torch.Tensor) -> float:
    """‖W − W_ref‖_F / ‖W_ref‖_F."""
    return float(torch.linalg.norm(w - w_ref) / torch.linalg.norm(w_ref))


def eigenbasis_diagonal(
    w: torch.Tensor, eigenvectors: torch.Tensor, eigenvalues: torch.Tensor | None = None, rtol: float = 1e-10
) -> torch.Tensor:
    """diag(Uᵀ W U): the gain of W along each principal direction (λ/(λ+σ²) for W_G); length d.

    With ``eigenvalues``, the directions with λ_k ≤ rtol·λ_1 span the null space of Σ (N ≤ d);
    any orthonormal basis of it is as valid as another (LAPACK returns one that depends on
    round-off), so their entries become the basis-invariant mean tr(U₀ᵀ W U₀)/k₀ over it.
    A basis of r < d columns (a Gram-matrix fit) leaves the d − r complement directions out:
    they are null directions too, and tr over them is tr W − Σ_k (UᵀWU)_kk.
    """
    d, r = eigenvectors.shape
    diag = ((eigenvectors.T @ w) * eigenvectors.T).sum(1)
    if eigenvalues is None and r < d:
        raise ValueError(f"a basis of {r} < {d} directions needs its eigenvalues")
    if eigenvalues is not None:
        null = eigenvalues <= rtol * eigenvalues.max()
        k0 = int(null.sum()) + d - r
        if k0:
            outside = torch.trace(w) - diag.sum() if r < d else 0.0  # trace over the complement
            mean = (diag[null].sum() + outside) / k0
            diag = torch.cat([torch.where(null, mean, diag), mean.expand(d - r)])
    return diag


def fit_rmse(teacher: Denoiser, student: Denoiser, y, sigma, n_samples, seed, batch=512) -> float:
    """RMSE per pixel between teacher and student on the inputs x = y + σn of :func:`noisy_inputs`."""
    sq, n = torch.zeros((), dtype=torch.float64, device=y.device), 0  # summed on the device: no sync per batch
    for x in noisy_inputs(y, sigma, n_samples, batch, seed):
        sq += ((teacher(x, sigma) - student(x, sigma)) ** 2).sum()
        n += x.numel()
    return float(np.sqrt(float(sq) / n))


def linear_denoiser(w: torch.Tensor, b: torch.Tensor) -> Denoiser:
    """D_L(x;σ) = W_σ x + b_σ for one σ."""
    return lambda x, sigma: x @ w.T.to(x) + b.to(x)


def linear_family(maps: dict[float, tuple[torch.Tensor, torch.Tensor]]) -> Denoiser:
    """The distilled D_L(x;σ) = W_σ x + b_σ for the σ's it was fitted at (an error elsewhere)."""
    from .schedules import at_sigma

    def denoise(x, sigma):
        return linear_denoiser(*at_sigma(maps, sigma, "distilled map"))(x, sigma)

    return denoise


def save_linear_maps(path, maps, store: str = "float32") -> None:
    """W_σ, b_σ per σ in HDF5 (``store``: float32, float16 or none = only σ and b)."""
    from .io import atomic_h5

    with atomic_h5(path) as f:
        sig = sorted(maps)
        f["sigmas"] = np.array(sig)
        if store != "none":  # one σ at a time: a single d × d map in host memory, not the stack twice
            d = maps[sig[0]][0].shape
            ds = f.create_dataset("W", shape=(len(sig), *d), dtype=store)
            for i, s in enumerate(sig):
                ds[i] = maps[s][0].cpu().numpy().astype(store)
        f["b"] = np.stack([maps[s][1].cpu().numpy() for s in sig])
        f.attrs["store"] = store


def load_linear_maps(path, device="cpu") -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    """{σ: (W_σ, b_σ)} as float64 on ``device``, read one σ at a time (one d × d map in host
    memory, not the whole stack twice), so a sampler on a GPU never copies W per evaluation."""
    import h5py

    from .io import require_numeric

    with h5py.File(path, "r") as f:
        if "W" not in f:
            raise ValueError(f"{path} keeps no weights (analysis.distill.store: none)")
        require_numeric(f["W"], f"{path}: 'W'")
        b, sigmas = read_array(f, "b"), read_array(f, "sigmas")
        return {float(s): (torch.from_numpy(f["W"][i].astype(np.float64)).to(device), torch.from_numpy(b[i]).to(device))
                for i, s in enumerate(sigmas)}  # fmt: skip
