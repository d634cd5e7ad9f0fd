"""Per-checkpoint analysis (paper §3–4): distillation, linearity and distances, as tidy rows.

Every measure uses inputs x = y + σn built from the same held-out images y and the same noise
draws n (seeded, independent of σ and of the model), so curves of different models are
directly comparable.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from .distill import (
    Denoiser,
    distill_closed_form,
    distill_sgd,
    eigenbasis_diagonal,
    relative_frobenius_error,
    wiener_matrix,
)
from .gaussian import GaussianModel
from .io import read_array
from .metrics import denoiser_distance, fixed_noise, linearity_from_outputs, mixing_weights

log = logging.getLogger("hiddengauss")


def linear_denoiser(w: torch.Tensor, b: torch.Tensor) -> Denoiser:
    """D_L(x;σ) = W_σ x + b_σ for one σ."""
    return lambda x, sigma: x @ w.T.to(x) + b.to(x)


def distill_rows(
    denoise: Denoiser, y: torch.Tensor, sigmas, gauss: GaussianModel, method: str = "closed_form",
    samples_per_dim: int = 8, ridge: float = 0.0, seed: int = 0, sgd_epochs: int = 100, sgd_batch: int = 256,
    batch: int = 512,
) -> tuple[list[dict], dict[float, tuple[torch.Tensor, torch.Tensor]], pd.DataFrame]:  # fmt: skip
    """Distil ``denoise`` at every σ: rows for distillation.csv, {σ: (W, b)}, and the eigen-diagonal
    table (σ, k, λ_k, the Wiener shrinkage λ_k/(λ_k+σ²) and the distilled (UᵀW_σU)_kk)."""
    d = y.shape[1]
    n_samples = max(samples_per_dim * d, len(y))
    rows, maps, diags = [], {}, []
    g = gauss.to(dtype=torch.float64)
    for sigma in map(float, sigmas):
        if method == "closed_form":
            w, b, fit = distill_closed_form(denoise, y, sigma, n_samples, batch=batch, seed=seed, ridge=ridge)
        elif method == "sgd":
            w, b, _ = distill_sgd(denoise, y, sigma, sgd_epochs, batch=sgd_batch, seed=seed)
            fit = _fit_rmse(denoise, linear_denoiser(w, b), y, sigma, n_samples, seed)
        else:
            raise ValueError(f"unknown distillation method {method!r}: use closed_form or sgd")
        w_g = wiener_matrix(g.eigenvalues, g.eigenvectors, sigma)
        shrink = g.eigenvalues / (g.eigenvalues + sigma**2)
        diag = eigenbasis_diagonal(w, g.eigenvectors, g.eigenvalues)
        rows.append({
            "sigma": sigma, "method": method, "fit_rmse": fit, "n_samples": n_samples,
            "weight_rel_error": relative_frobenius_error(w, w_g),
            "eigen_diagonal_mae": float((diag - shrink).abs().mean()),
        })  # fmt: skip
        maps[sigma] = (w, b)
        diags.append(pd.DataFrame({"sigma": sigma, "k": np.arange(1, len(shrink) + 1),
                                   "eigenvalue": g.eigenvalues.cpu().numpy(), "shrinkage": shrink.cpu().numpy(),
                                   "diagonal": diag.cpu().numpy()}))  # fmt: skip
        log.info("distilled σ=%.4g: fit RMSE %.3g, ‖W−W_G‖/‖W_G‖ %.3g", sigma, fit, rows[-1]["weight_rel_error"])
    return rows, maps, pd.concat(diags, ignore_index=True)


def _fit_rmse(teacher: Denoiser, student: Denoiser, y, sigma, n_samples, seed, batch=512) -> float:
    from .distill import noisy_inputs

    sq, n = 0.0, 0
    for x in noisy_inputs(y, sigma, n_samples, batch, seed):
        sq += float(((teacher(x, sigma) - student(x, sigma)) ** 2).sum())
        n += x.numel()
    return float(np.sqrt(sq / n))


def linearity_rows(denoise: Denoiser, y: torch.Tensor, sigmas, alphas, n_pairs: int, seed: int = 0) -> list[dict]:
    """Linearity of the denoiser and of its score, on noisy held-out pairs and on pure noise.

    Noisy pairs: y₁ = the first ``n_pairs`` held-out images, y₂ = the next ``n_pairs``;
    n₁, n₂ drawn once (``seed``) and reused for every σ. Pure noise: x_j = σ n_j with noise
    drawn per σ index from ``seed``, the same for every model.
    """
    if len(y) < 2 * n_pairs:
        raise ValueError(f"linearity needs 2 x {n_pairs} held-out images, only {len(y)} available")
    d = y.shape[1]
    y1, y2 = y[:n_pairs], y[n_pairs : 2 * n_pairs]
    n1, n2 = fixed_noise(n_pairs, d, seed).to(y), fixed_noise(n_pairs, d, seed + 1).to(y)
    rows = []
    for k, sigma in enumerate(map(float, sigmas)):
        p1, p2 = fixed_noise(n_pairs, d, seed + 1000 + 2 * k).to(y), fixed_noise(n_pairs, d, seed + 1001 + 2 * k).to(y)
        for inputs, x1, x2 in (("noisy", y1 + sigma * n1, y2 + sigma * n2), ("pure_noise", sigma * p1, sigma * p2)):
            mixes = [mixing_weights(a)[0] * x1 + mixing_weights(a)[1] * x2 for a in alphas]
            out = denoise(torch.cat([x1, x2, *mixes]), sigma).split(n_pairs)  # one batch: every a, both targets
            d1, d2 = out[0], out[1]
            for a, xm, dm in zip(alphas, mixes, out[2:]):
                for target in ("denoiser", "score"):
                    cos, nmse = linearity_from_outputs(x1, x2, xm, d1, d2, dm, sigma, a, target)
                    rows.append({"sigma": sigma, "target": target, "inputs": inputs, "a": a,
                                 "alpha": mixing_weights(a)[0], "cosine": cos, "nmse": nmse})  # fmt: skip
    return rows


def distance_rows(denoisers: dict[str, Denoiser], y: torch.Tensor, sigmas, n_inputs: int, seed: int = 0) -> list[dict]:
    """RMSE, mean per-sample RMS and nMSE between pairs of denoisers on x = y + σn.

    ``denoisers`` maps 'network', 'linear' (a function of σ returning a denoiser, or absent),
    'gaussian' and 'empirical' to denoisers; pairs are network–gaussian, linear–gaussian,
    network–linear and network–empirical, whichever are available.
    """
    y = y[:n_inputs]
    noise = fixed_noise(len(y), y.shape[1], seed + 7).to(y)
    pairs = [("network", "gaussian"), ("linear", "gaussian"), ("network", "linear"), ("network", "empirical")]
    rows = []
    for sigma in map(float, sigmas):
        x = y + sigma * noise
        out = {name: fn(x, sigma) for name, fn in denoisers.items()}
        for a, b in pairs:
            if a in out and b in out:
                rows.append({"sigma": sigma, "pair": f"{a}-{b}", **denoiser_distance(out[a], out[b])})
    return rows


def linear_family(maps: dict[float, tuple[torch.Tensor, torch.Tensor]]) -> Denoiser:
    """The distilled D_L(x;σ) = W_σ x + b_σ for the σ's it was fitted at (an error elsewhere)."""
    keys = np.array(sorted(maps))

    def denoise(x, sigma):
        k = float(keys[np.argmin(np.abs(keys - sigma))])
        if abs(k - sigma) > 1e-9 * max(sigma, 1e-12):
            raise KeyError(f"no distilled map at σ={sigma} (fitted at {keys.tolist()})")
        w, b = maps[k]
        return x @ w.T.to(x) + b.to(x)

    return denoise


def save_linear_maps(path, maps, store: str = "float32") -> None:
    """W_σ, b_σ per σ in HDF5 (``store``: float32, float16 or none = only σ and b)."""
    from .io import atomic_h5

    with atomic_h5(path) as f:
        sig = sorted(maps)
        f["sigmas"] = np.array(sig)
        if store != "none":
            f.create_dataset("W", data=np.stack([maps[s][0].cpu().numpy() for s in sig]).astype(store))
        f["b"] = np.stack([maps[s][1].cpu().numpy() for s in sig])
        f.attrs["store"] = store


def load_linear_maps(path) -> dict[float, tuple[torch.Tensor, torch.Tensor]]:
    import h5py

    with h5py.File(path, "r") as f:
        if "W" not in f:
            raise ValueError(f"{path} keeps no weights (analysis.distill.store: none)")
        w, b = read_array(f, "W").astype(np.float64), read_array(f, "b")
        return {float(s): (torch.from_numpy(w[i]), torch.from_numpy(b[i])) for i, s in enumerate(read_array(f, "sigmas"))}


def load_split_images(split_h5, data_h5, device="cpu") -> tuple[torch.Tensor, tuple[int, int, int]]:
    """Images of a split as float64 rows in [-1, 1] (split order), and their (C, H, W) shape."""
    from .data import read_images, to_float
    from .splits import load_split

    u8 = read_images(data_h5, load_split(split_h5))
    return torch.from_numpy(to_float(u8)).to(device=device, dtype=torch.float64), tuple(u8.shape[1:])


def checkpoint_denoiser(checkpoints_dir, epoch: int, device="cpu"):
    """The EMA network of a run's checkpoint as a denoiser of flattened batches, and the checkpoint."""
    from pathlib import Path

    from .sampling import network_denoiser
    from .training import checkpoint_name, load_ema_denoiser

    net, ckpt = load_ema_denoiser(Path(checkpoints_dir) / checkpoint_name(int(epoch)), device=device)
    shape = (ckpt["spec"]["img_channels"], ckpt["spec"]["img_resolution"], ckpt["spec"]["img_resolution"])
    return network_denoiser(net, shape), ckpt
