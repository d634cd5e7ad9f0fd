"""Per-checkpoint analysis (paper §3–4): distillation, linearity and distances, as tidy rows.

The row builders of the per-checkpoint tables. Each measure uses inputs x = y + σn built from
the held-out images y and its own seeded noise draws n (distillation, linearity and distances
draw independent noise from seeds derived from ``analysis.noise_seed``: metrics.measure_seed),
independent of σ and of the model, so curves of different models are directly comparable. The
distilled map is fitted and scored on independent noise.
"""

from __future__ import annotations

import json
import logging

import h5py
import numpy as np
import pandas as pd
import torch

from .distill import (
    distill_closed_form,
    distill_sgd,
    eigenbasis_diagonal,
    fit_rmse,
    linear_denoiser,
    relative_frobenius_error,
)
from .gaussian import GaussianModel, wiener_matrix, wiener_shrinkage
from .io import atomic_h5, read_array
from .metrics import (
    denoiser_distance,
    denoiser_distance_per_sample,
    fixed_noise,
    linearity_per_pair,
    measure_seed,
    mixing_weights,
)
from .sampling import Denoiser
from .schedules import at_sigma

log = logging.getLogger("hiddengauss")


def distill_rows(
    denoise: Denoiser, y: torch.Tensor, sigmas, gauss: GaussianModel, method: str = "closed_form",
    samples_per_dim: int = 8, ridge: float = 0.0, seed: int = 0, sgd_epochs: int = 100, sgd_batch: int = 256,
    batch: int = 512,
) -> tuple[list[dict], dict[float, tuple[torch.Tensor, torch.Tensor]], pd.DataFrame]:  # fmt: skip
    """Distil ``denoise`` at every σ: rows for distillation.csv, {σ: (W, b)}, and the eigen-diagonal
    table (σ, k, λ_k, the Wiener shrinkage λ_k/(λ_k+σ²) and the distilled (UᵀW_σU)_kk)."""
    d = y.shape[1]
    n_samples = max(samples_per_dim * d, len(y))
    seed = measure_seed(seed, "distill")
    rows, maps, diags = [], {}, []
    g = gauss.to(dtype=torch.float64)
    for sigma in map(float, sigmas):
        if method == "closed_form":
            w, b, fit = distill_closed_form(denoise, y, sigma, n_samples, batch=batch, seed=seed, ridge=ridge)
        elif method == "sgd":
            w, b, _ = distill_sgd(denoise, y, sigma, sgd_epochs, batch=sgd_batch, seed=seed)
            fit = fit_rmse(denoise, linear_denoiser(w, b), y, sigma, n_samples, seed)
        else:
            raise ValueError(f"unknown distillation method {method!r}: use closed_form or sgd")
        w_g = wiener_matrix(g.eigenvalues, g.eigenvectors, sigma)
        shrink = wiener_shrinkage(g.spectrum(), sigma)
        diag = eigenbasis_diagonal(w, g.eigenvectors, g.eigenvalues)
        rows.append({
            "sigma": sigma, "method": method, "fit_rmse": fit, "n_samples": n_samples,
            "weight_rel_error": relative_frobenius_error(w, w_g),
            "eigen_diagonal_mae": float((diag - shrink).abs().mean()),
        })  # fmt: skip
        maps[sigma] = (w.cpu(), b.cpu())  # one d × d map per σ: host memory, not the GPU's
        diags.append(pd.DataFrame({"sigma": sigma, "k": np.arange(1, len(shrink) + 1),
                                   "eigenvalue": g.spectrum().cpu().numpy(), "shrinkage": shrink.cpu().numpy(),
                                   "diagonal": diag.cpu().numpy()}))  # fmt: skip
        log.info("distilled σ=%.4g: fit RMSE %.3g, ‖W−W_G‖/‖W_G‖ %.3g", sigma, fit, rows[-1]["weight_rel_error"])
    return rows, maps, pd.concat(diags, ignore_index=True)


def linearity_rows(
    denoise: Denoiser, y: torch.Tensor, sigmas, alphas, n_pairs: int, seed: int = 0
) -> tuple[list[dict], pd.DataFrame]:
    """Linearity of the denoiser and of its score, on noisy held-out pairs and on pure noise.

    Noisy pairs: y₁ = the first ``n_pairs`` held-out images, y₂ = the next ``n_pairs``;
    n₁, n₂ drawn once (the linearity seed derived from ``seed``) and reused for every σ. Pure
    noise: x_j = σ n_j with noise drawn per σ index, the same for every model. Returns the
    linearity.csv rows and the per-pair items of the denoiser on noisy pairs (linearity_items:
    sigma, a, item, cosine, nmse).
    """
    if len(y) < 2 * n_pairs:
        raise ValueError(f"linearity needs 2 x {n_pairs} held-out images, only {len(y)} available")
    d = y.shape[1]
    seed = measure_seed(seed, "linearity")
    y1, y2 = y[:n_pairs], y[n_pairs : 2 * n_pairs]
    n1, n2 = fixed_noise(n_pairs, d, seed).to(y), fixed_noise(n_pairs, d, seed + 1).to(y)
    rows, items = [], []
    for k, sigma in enumerate(map(float, sigmas)):
        p1, p2 = fixed_noise(n_pairs, d, seed + 1000 + 2 * k).to(y), fixed_noise(n_pairs, d, seed + 1001 + 2 * k).to(y)
        for inputs, x1, x2 in (("noisy", y1 + sigma * n1, y2 + sigma * n2), ("pure_noise", sigma * p1, sigma * p2)):
            mixes = [mixing_weights(a)[0] * x1 + mixing_weights(a)[1] * x2 for a in alphas]
            out = denoise(torch.cat([x1, x2, *mixes]), sigma).split(n_pairs)  # one batch: every a, both targets
            d1, d2 = out[0], out[1]
            for a, xm, dm in zip(alphas, mixes, out[2:]):
                for target in ("denoiser", "score"):
                    cos, nmse = linearity_per_pair(x1, x2, xm, d1, d2, dm, sigma, a, target)
                    rows.append({"sigma": sigma, "target": target, "inputs": inputs, "a": a,
                                 "alpha": mixing_weights(a)[0], "cosine": float(cos.mean()),
                                 "nmse": float(nmse.mean())})  # fmt: skip
                    if target == "denoiser" and inputs == "noisy":
                        items.append(pd.DataFrame({"sigma": sigma, "a": a, "item": np.arange(n_pairs),
                                                   "cosine": cos.cpu().numpy(), "nmse": nmse.cpu().numpy()}))  # fmt: skip
    return rows, pd.concat(items, ignore_index=True)


def distance_inputs(y: torch.Tensor, n_inputs: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images y and the noise n of the distance inputs x = y + σn: the first ``n_inputs``
    held-out images and one draw of the distances seed (metrics.measure_seed), reused at every σ."""
    y = y[:n_inputs]
    return y, fixed_noise(len(y), y.shape[1], measure_seed(seed, "distances")).to(y)


def calibration_inputs(y: torch.Tensor, m: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The images and noise of the ELS calibration inputs: the last ``m`` held-out images (apart
    from the first ones the distances use, when there are enough) under independent noise."""
    m = min(m, len(y))
    return y[-m:], fixed_noise(m, y.shape[1], measure_seed(seed, "els_calibration")).to(y)


def distance_rows(
    denoisers: dict[str, Denoiser], y: torch.Tensor, sigmas, n_inputs: int, seed: int = 0,
    limits: dict[str, int] | None = None,
) -> tuple[list[dict], pd.DataFrame]:
    """RMSE, mean per-sample RMS, nMSE and r² between pairs of denoisers on x = y + σn.

    ``denoisers`` maps 'network', 'linear' (the distilled family D_L(x;σ), or absent),
    'gaussian' and 'empirical' to denoisers, and any other name to a closed-form model
    (:func:`.closed_forms.baseline_denoisers`); pairs are network–gaussian, linear–gaussian,
    network–linear, network–empirical and network–⟨model⟩, whichever are available. Returns
    the denoiser_distances.csv rows and the per-input items (distance_items: sigma, pair, item,
    rms, nmse, r2). ``limits`` runs a costly model on the first m inputs only (the same
    inputs, compared with the same outputs of its partner).
    """
    limits = limits or {}
    y, noise = distance_inputs(y, n_inputs, seed)
    pairs = [("network", "gaussian"), ("linear", "gaussian"), ("network", "linear"), ("network", "empirical")]
    pairs += [("network", name) for name in denoisers if name not in {"network", "linear", "gaussian", "empirical"}]
    rows, items = [], []
    for sigma in map(float, sigmas):
        x = y + sigma * noise
        out = {name: fn(x[: limits.get(name, len(x))], sigma) for name, fn in denoisers.items()}
        for a, b in pairs:
            if a in out and b in out:
                m = min(len(out[a]), len(out[b]))
                rows.append({"sigma": sigma, "pair": f"{a}-{b}", **denoiser_distance(out[a][:m], out[b][:m])})
                per = denoiser_distance_per_sample(out[a][:m], out[b][:m])
                items.append(pd.DataFrame({"sigma": sigma, "pair": f"{a}-{b}", "item": np.arange(m),
                                           **{k: v.cpu().numpy() for k, v in per.items()}}))  # fmt: skip
    return rows, pd.concat(items, ignore_index=True)


CALIBRATION = ["sigma", "patch", "r2", "chosen"]


def closed_form_outputs(settings: dict, gauss: GaussianModel, train: torch.Tensor, image_shape, y: torch.Tensor,
                        sigmas, n_inputs: int, seed: int = 0) -> dict[str, dict[float, torch.Tensor]]:  # fmt: skip
    """Every enabled closed-form model's outputs on the distance inputs of :func:`distance_rows`,
    {name: {σ: output}}. They depend on the training subset, not on a network, so they are
    computed once per subset (rule closed_form_outputs) and compared with every checkpoint of
    it by :func:`closed_form_denoisers`.

    The ELS machine, whose patch size is chosen per σ against each network, has one output per
    candidate size k of ``els_patch_sizes``: ``els/k<k>`` on the first ``els_inputs`` distance
    inputs and ``els_calibration/k<k>`` on the calibration inputs (:func:`calibration_inputs`)."""
    from .closed_forms import baseline_denoisers, els_denoiser

    y0, noise = distance_inputs(y, n_inputs, seed)
    models = baseline_denoisers(settings, gauss, train, image_shape)
    out: dict[str, dict[float, torch.Tensor]] = {name: {} for name in models}
    if "els" in settings.get("models", []):
        m = min(settings.get("els_inputs", 32), len(y0))
        yc, nc = calibration_inputs(y, m, seed)
        pad = settings.get("els_padding", "zeros")
        for k in settings.get("els_patch_sizes", [3, 5]):
            for name, (yy, nn) in ((f"els/k{k}", (y0[:m], noise[:m])), (f"els_calibration/k{k}", (yc, nc))):
                out[name] = {float(s): els_denoiser(yy + s * nn, float(s), train, image_shape, k, pad) for s in sigmas}
    for sigma in map(float, sigmas):
        for name, fn in models.items():
            out[name][sigma] = fn(y0 + sigma * noise, sigma)
        log.info("closed-form outputs at σ=%.4g", sigma)
    return out


def closed_form_denoisers(outputs: dict[str, dict[float, torch.Tensor]], network: Denoiser, y: torch.Tensor,
                          seed: int = 0) -> tuple[dict[str, Denoiser], dict[str, int], list[dict]]:  # fmt: skip
    """The closed-form models for :func:`distance_rows` from their stored outputs
    (:func:`closed_form_outputs`): (denoisers by name, input limits, ELS calibration rows).

    Each denoiser returns its stored output at σ (x must be the distance inputs those outputs
    were computed on). The ELS machine's patch size at each σ is the candidate whose output on the
    calibration inputs explains the network best (:func:`.closed_forms.els_patch_choice`, table
    els_calibration); it runs on the first ``els_inputs`` distance inputs."""
    from .closed_forms import els_patch_choice

    def stored(table: dict[float, torch.Tensor], name: str) -> Denoiser:
        def denoise(x, sigma):
            out = at_sigma(table, sigma, f"stored {name} output")
            if len(out) != len(x):
                raise ValueError(f"stored {name} outputs cover {len(out)} inputs, asked for {len(x)}")
            return out.to(x)

        return denoise

    models = {n: stored(t, n) for n, t in outputs.items() if "/" not in n}
    limits, cal = {}, []
    sizes = sorted(int(n.split("/k")[1]) for n in outputs if n.startswith("els/"))
    if sizes:
        m = len(next(iter(outputs[f"els/k{sizes[0]}"].values())))
        yc, nc = calibration_inputs(y, m, seed)
        chosen: dict[float, int] = {}
        for sigma in outputs[f"els/k{sizes[0]}"]:
            target = network(yc + sigma * nc, sigma)
            cands = {k: at_sigma(outputs[f"els_calibration/k{k}"], sigma, "stored ELS output").to(target) for k in sizes}
            chosen[sigma], rows = els_patch_choice(target, cands, sigma)
            cal += rows
        by_size = {k: stored(outputs[f"els/k{k}"], "els") for k in sizes}
        models["els"] = lambda x, sigma: by_size[at_sigma(chosen, sigma, "ELS calibration")](x, sigma)
        limits["els"] = m
    return models, limits, cal


def save_closed_form_outputs(path, outputs: dict[str, dict[float, torch.Tensor]], attrs: dict) -> None:
    """HDF5: one dataset ``<name>/sigma<i>`` (float32, attribute sigma) per model and σ; ``attrs``
    (the inputs' settings) on the root, checked by :func:`load_closed_form_outputs`."""
    with atomic_h5(path) as f:
        for name, table in outputs.items():
            for i, (sigma, out) in enumerate(table.items()):  # in σ order of the grid
                ds = f.create_dataset(f"{name}/sigma{i}", data=out.cpu().numpy().astype(np.float32))
                ds.attrs["sigma"] = sigma
        f.attrs["models"] = json.dumps(list(outputs))  # the models' order: the rows' order
        f.attrs["settings"] = json.dumps(attrs, sort_keys=True)


def load_closed_form_outputs(path, expected: dict, device="cpu") -> dict[str, dict[float, torch.Tensor]]:
    """The outputs :func:`save_closed_form_outputs` stored, as float64 on ``device``; raises
    ValueError naming the file if they were computed with other inputs than ``expected``."""
    with h5py.File(path, "r") as f:
        got = json.loads(f.attrs["settings"])
        if got != json.loads(json.dumps(expected, sort_keys=True)):
            raise ValueError(f"{path}: closed-form outputs made with {got}, this measure needs {expected}: rerun closed_form_outputs")
        out = {}
        for name in json.loads(f.attrs["models"]):
            g = f[name]
            keys = sorted(g, key=lambda k: int(k.removeprefix("sigma")))
            out[name] = {float(g[k].attrs["sigma"]): torch.from_numpy(read_array(f, f"{name}/{k}").astype(np.float64)).to(device)
                         for k in keys}  # fmt: skip
        return out
