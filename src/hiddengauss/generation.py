"""Same-noise sample sets of every denoiser, stored in HDF5, and the tables computed from them."""

from __future__ import annotations

import logging
from dataclasses import replace

import h5py
import numpy as np
import torch

import pandas as pd

from .io import atomic_h5, read_array
from .memorization import (
    generalization_summary,
    max_cosine_mean_removed,
    paired_centred_cosine,
    paired_cosine,
    paired_rmse,
    unrelated_pairs_cosine,
)
from .sampling import (
    PRESETS,
    Denoiser,
    SamplerConfig,
    nfe,
    sample,
    seeded_latents,
    teleport,
)

log = logging.getLogger("hiddengauss")


def latent_seeds(n: int, offset: int = 0) -> list[int]:
    """Sample i is drawn from seed offset + i, for every model: the same latents everywhere."""
    return list(range(offset, offset + n))


def sampler_config(name: str, options: dict | None = None) -> SamplerConfig:
    """A preset (euler10, heun18) with the config's churn options applied."""
    o = options or {}
    return replace(PRESETS[name], **{k: o[k] for k in ("s_churn", "s_min", "s_max", "s_noise") if k in o})


def sample_sets(
    denoisers: dict[str, Denoiser], samplers: list[str], seeds: list[int], dim: int,
    batch: int = 256, trajectories: int = 0, device="cpu", options: dict | None = None,
) -> dict[str, dict[str, np.ndarray]]:  # fmt: skip
    """{'<denoiser>/<sampler>': {'samples': (n, d), 'denoised': (steps, k, d)}} from the same latents.

    ``denoisers`` maps a name to a denoiser, or to None for a sampler it cannot run (the distilled
    linear model exists only at the σ's it was fitted at)."""
    out = {}
    for name, fn in denoisers.items():
        for s in samplers:
            if fn is None:
                continue
            cfg = sampler_config(s, options)
            dtype = getattr(torch, (options or {}).get("dtype", "float64"))
            x, den = sample(fn, seeds, dim, cfg, batch_size=batch, dtype=dtype, device=device, return_denoised=True,
                            keep_denoised=trajectories)  # fmt: skip
            out[f"{name}/{s}"] = {"samples": x.cpu().numpy().astype(np.float32),
                                  "denoised": den[:, :trajectories].cpu().numpy().astype(np.float32)}  # fmt: skip
            log.info("sampled %d with %s/%s", len(seeds), name, s)
    return out


def save_samples(path, sets: dict, seeds: list[int], image_shape, extra: dict | None = None) -> None:
    with atomic_h5(path) as f:
        for key, arrays in sets.items():
            for k, v in arrays.items():
                f.create_dataset(f"{key}/{k}", data=v)
        for key, arr in (extra or {}).items():
            f.create_dataset(key, data=arr)
        f["seeds"] = np.asarray(seeds)
        f.attrs["image_shape"] = list(image_shape)


def load_samples(path, key: str) -> torch.Tensor:
    with h5py.File(path, "r") as f:
        return torch.from_numpy(read_array(f, key).astype(np.float64))


def sampler_names(path, denoiser: str = "network") -> list[str]:
    with h5py.File(path, "r") as f:
        return sorted(f[denoiser]) if denoiser in f else []


def denoiser_names(path) -> list[str]:
    """The denoisers a samples file holds (its groups; ``seeds`` is a dataset), sorted."""
    with h5py.File(path, "r") as f:
        return sorted(m for m in f if isinstance(f[m], h5py.Group))


def generalization_rows(samples_h5, gaussian_samples_h5, train: torch.Tensor) -> tuple[list[dict], pd.DataFrame]:
    """generalization.csv rows (one per sampler) of a checkpoint's network samples, and the
    per-sample items (generalization_items: sampler, item, nn_ratio, memorized)."""
    rows, items = [], []
    for s in sampler_names(samples_h5):
        x = load_samples(samples_h5, f"network/{s}/samples")
        xg = load_samples(gaussian_samples_h5, f"gaussian/{s}/samples")
        summary, per = generalization_summary(x, train, xg, items=True)
        rows.append({"sampler": s, **summary})
        items.append(pd.DataFrame({"sampler": s, "item": np.arange(len(x)), **per}))
    return rows, pd.concat(items, ignore_index=True)


def closed_form_sample_sets(models: dict[str, Denoiser], counts: dict[str, int], samplers: list[str], seed_offset: int,
                            dim: int, batch: int = 256, device="cpu", options: dict | None = None) -> tuple[dict, list[int]]:  # fmt: skip
    """Same-latent samples of each closed-form model: model m runs every sampler from the first
    ``counts[m]`` of the network's latents (seeds seed_offset, seed_offset + 1, …). Returns
    ({'<model>/<sampler>': {'samples', 'denoised'}}, the seeds of the longest set)."""
    sets = {}
    for name, fn in models.items():
        sets.update(sample_sets({name: fn}, samplers, latent_seeds(counts[name], seed_offset), dim, batch, 0, device,
                                options))  # fmt: skip
    return sets, latent_seeds(max(counts.values(), default=0), seed_offset)


def closed_form_generalization_rows(closed_h5, samples_h5, gaussian_samples_h5, train: torch.Tensor,
                                    n_reference: int) -> list[dict]:  # fmt: skip
    """closed_form_generalization rows (model, sampler, generalization measures): every
    closed-form model's samples in ``closed_h5``, and for reference the network's, the Gaussian
    model's and the empirical denoiser's samples of the same first ``n_reference`` latents; the
    Gaussian samples of the same latents are the reference of ``gaussian_rmse`` for each."""
    train = train.cpu()
    sources = [(samples_h5, "network"), (gaussian_samples_h5, "gaussian"), (gaussian_samples_h5, "empirical")]
    sources += [(closed_h5, m) for m in denoiser_names(closed_h5)]
    samplers = sampler_names(samples_h5)  # the network's: not gaussian/closed_form
    rows = []
    for path, model in sources:
        for s in [s for s in sampler_names(path, model) if s in samplers]:
            x = load_samples(path, f"{model}/{s}/samples")
            x = x[:n_reference] if path != closed_h5 else x
            xg = load_samples(gaussian_samples_h5, f"gaussian/{s}/samples")[: len(x)]
            rows.append({"model": model, "sampler": s, **generalization_summary(x, train, xg)})
    return rows


def strong_generalization_row(s1_h5, s2_h5, g1_h5, g2_h5, train1, train2, sampler: str,
                              heldout: torch.Tensor) -> tuple[dict, pd.DataFrame]:  # fmt: skip
    """Agreement of two models trained on disjoint halves, from the same latents, and its
    per-latent items (strong_generalization_items). Agreement is also measured after removing
    each image's mean (``*_centred_cosine``), against the floor of unrelated held-out pairs."""
    x1 = load_samples(s1_h5, f"network/{sampler}/samples")
    x2 = load_samples(s2_h5, f"network/{sampler}/samples")
    g1 = load_samples(g1_h5, f"gaussian/{sampler}/samples")
    g2 = load_samples(g2_h5, f"gaussian/{sampler}/samples")
    agree, gauss = paired_centred_cosine(x1, x2), paired_centred_cosine(g1, g2)
    floor = unrelated_pairs_cosine(heldout.to(torch.float64), len(x1))
    row = {
        "sampler": sampler, "n_samples": int(x1.shape[0]),
        "s1_s2_cosine": float(paired_cosine(x1, x2).mean()), "s1_s2_rmse": float(paired_rmse(x1, x2).mean()),
        "s1_nn_cosine": float(max_cosine_mean_removed(x1, train1).mean()),
        "s2_nn_cosine": float(max_cosine_mean_removed(x2, train2).mean()),
        "gaussian_s1_s2_cosine": float(paired_cosine(g1, g2).mean()),
        "network_gaussian_cosine": float((paired_cosine(x1, g1).mean() + paired_cosine(x2, g2).mean()) / 2),
        "s1_s2_centred_cosine": float(agree.mean()), "gaussian_s1_s2_centred_cosine": float(gauss.mean()),
        "floor_cosine": float(floor.mean()),
    }  # fmt: skip
    items = pd.DataFrame({"sampler": sampler, "item": np.arange(len(x1)), "s1_s2_cosine": agree.numpy(),
                          "gaussian_s1_s2_cosine": gauss.numpy(),
                          "floor_cosine": floor.numpy()})  # fmt: skip
    return row, items


def distribution_sets(s1_h5, s2_h5, g1_h5, g2_h5, train1: torch.Tensor, train2: torch.Tensor,
                      heldout: torch.Tensor, sampler: str) -> dict[str, torch.Tensor]:  # fmt: skip
    """The seven image sets the distributions table compares, all of one size n = min(samples/2,
    N, held-out): model and Gaussian samples of S1 from the latents [0, n) and of S2 from [n, 2n)
    (disjoint latents, so two models that copy the same latent's image do not agree by
    construction), the first n training images of S1 and of S2, and the first n held-out images."""
    x1 = load_samples(s1_h5, f"network/{sampler}/samples")
    x2 = load_samples(s2_h5, f"network/{sampler}/samples")
    g1 = load_samples(g1_h5, f"gaussian/{sampler}/samples")
    g2 = load_samples(g2_h5, f"gaussian/{sampler}/samples")
    n = min(len(x1) // 2, len(x2) // 2, len(train1), len(train2), len(heldout))
    sets = {"model_s1": x1[:n], "model_s2": x2[n : 2 * n], "gaussian_s1": g1[:n], "gaussian_s2": g2[n : 2 * n],
            "train_s1": train1[:n], "train_s2": train2[:n], "heldout": heldout[:n]}  # fmt: skip
    return {name: v.reshape(n, -1).to(torch.float64) for name, v in sets.items()}


def memorization_curve_rows(denoise: Denoiser, train: torch.Tensor, heldout: torch.Tensor, sampler: str, seeds: list[int],
                            dim: int, settings: dict, device="cpu", options: dict | None = None) -> tuple[list[dict], pd.DataFrame]:  # fmt: skip
    """memorization_curve.csv row and memorization_items of one checkpoint: ``sampler``'s samples
    from ``seeds`` (the same at every checkpoint and size) scored by
    :func:`.memorization_time.checkpoint_memorization` (``settings``: experiments.memorization_time)."""
    from .memorization_time import checkpoint_memorization

    o = options or {}
    sets = sample_sets({"network": denoise}, [sampler], seeds, dim, o.get("batch_size", 256), 0, device, options=o)
    x = torch.from_numpy(sets[f"network/{sampler}"]["samples"]).to(torch.float64)
    row, items = checkpoint_memorization(x, train, heldout.reshape(len(heldout), -1), settings["kid_bootstrap"], settings["seed"])
    items.insert(0, "sampler", sampler)
    return [{"sampler": sampler, **row}], items


def teleportation_samples(denoise: Denoiser, gauss, seeds, dim: int, sampler: str, skips: list[int],
                          device="cpu", batch: int = 256) -> dict[int, torch.Tensor]:  # fmt: skip
    """{k: samples} for skip 0 (the full sampler) and every skip k < steps, from the same
    latents, made on ``device`` (where the denoiser and the Gaussian model are) in batches."""
    cfg = PRESETS[sampler]
    ks = [0] + [k for k in skips if 0 < k < cfg.steps]
    out: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    seeds = list(seeds)
    for start in range(0, len(seeds), batch):
        z = seeded_latents(seeds[start : start + batch], dim, device=device)
        for k in ks:
            out[k].append(teleport(denoise, gauss.pf_ode, z, cfg, k))
    return {k: torch.cat(v) for k, v in out.items()}


def teleportation_rows(denoise: Denoiser, gauss, seeds, dim: int, sampler: str, skips: list[int], train,
                       batch: int = 256) -> list[dict]:  # fmt: skip
    """Distance to the full sampler's sample, and generalization, for every skip k (on the
    device of the training images ``train``)."""
    cfg = PRESETS[sampler]
    xs = teleportation_samples(denoise, gauss, seeds, dim, sampler, skips, train.device, batch)
    full = xs[0]
    rows = []
    for k in skips:
        if k >= cfg.steps:
            continue
        x = xs[k]
        summary = generalization_summary(x, train)
        rows.append({
            "sampler": sampler, "total_steps": cfg.steps, "skip_steps": k, "nfe": nfe(cfg, k),
            "nfe_saved": nfe(cfg, 0) - nfe(cfg, k), "rmse_to_full": float(paired_rmse(x, full).mean()),
            "cosine_to_full": float(paired_cosine(x, full).mean()),
            "gl_score": summary["gl_score"], "memorized_fraction": summary["memorized_fraction"],
        })  # fmt: skip
    return rows
