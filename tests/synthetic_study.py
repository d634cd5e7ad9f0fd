"""Synthetic tables and sample files shaped like a finished run, with a controllable trend.

Every checkpoint gets a memorization level m = clip(0.2 log2(scale/4) + 0.2 log2(64/N) + 0.05, 0, 1)
× (epoch/final)²: bigger models, smaller training sets and longer training memorize more, as the
paper claims. Every measured quantity is a monotone function of m (distance to the Gaussian
denoiser, linearity, linear–Gaussian mismatch, S1–S2 disagreement). ``flip=True`` uses 1 − m
instead, which contradicts every claim.

The per-item tables the claims read (distance_items, linearity_items, generalization_items,
strong_generalization_items) hold, for every item (held-out input, linearity pair, latent), the
checkpoint's value plus ``noise`` times an item effect shared by every checkpoint and an
independent draw (3 ``noise`` for the per-latent cosines of strong generalization, which vary
most between latents); ``noise=0`` gives exact values, a large ``noise`` intervals that straddle
the thresholds.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from hiddengauss.config import validate_config
from hiddengauss.study import Run, Study, baseline_keys
from hiddengauss.schedules import karras_sigmas
from hiddengauss.splits import parse_subset_id

CONFIG = {
    "dataset": {"name": "synth", "source": "digits"},
    "evaluation": {"size": 256},
    "training": {"epochs": 40, "checkpoints": 5, "first_checkpoint_epoch": 10, "seeds": [0]},
    "experiments": {
        "dataset_size": {"sizes": [16, 64, 256, 1024], "model_scale": 8},
        "model_scale": {"dataset_size": 64, "scales": [4, 8, 16, 32]},
        "training_epochs": {"dataset_size": 64, "model_scale": 32},
        "strong_generalization": {"sizes": [16, 512], "model_scale": 32, "early_stop_epoch": 10, "small_scale": 4},
        "architecture": {"dataset_size": 1024, "model_scale": 16, "archs": ["ncsnpp", "ddpmpp"]},
        # runs of their own (scale 2): every checkpoint saw 50k-200k images, so the sizes are close
        "memorization_time": {"sizes": [16, 24, 32], "model_scale": 2, "bootstrap": 200},
        "sampler_dynamics": {"sizes": [16, 64, 256, 1024], "model_scale": 8},  # the dataset_size runs
    },
}
SHAPE = (1, 8, 8)
D = 64
SIGMAS = karras_sigmas(10)
LIN_SIGMAS = karras_sigmas(12)


def study() -> Study:
    return Study(validate_config(CONFIG))


def memorization(run: Run, epoch: int, final: int, flip: bool) -> float:
    m = np.clip(0.2 * np.log2(run.model_scale / 4) + 0.2 * np.log2(64 / run.size) + 0.05, 0, 1) * (epoch / final) ** 2
    return float(1 - m if flip else m)


N_ITEMS = {"inputs": 32, "pairs": 16, "samples": 40}
WARMUP_IMAGES = 1000


def _items(rng, n: int, value: float, noise: float, shared: np.ndarray) -> np.ndarray:
    return value + noise * (shared[:n] + rng.standard_normal(n))


def memorization_time_tables(st: Study, runs: pd.DataFrame, flip: bool) -> dict[str, pd.DataFrame]:
    """memorization_curve, memorization_items and memorization_time: sample i of size N is a copy
    from τ_i = τ_N e^{z_i} images on (z_i ~ N(0, 0.3²)), τ_N = 4000 N (τ_mem ∝ N) or, flipped,
    10⁵ (N/16)^¼ (nearly independent of N); KID to held-out falls over training."""
    from hiddengauss.memorization_time import curve_frame, memorization_time_table

    seen = runs.set_index(["run_id", "epoch"])["images_seen"].groupby(level=[0, 1]).first()
    curves, items = [], []
    for run, e in st.experiment_evaluations("memorization_time"):
        k, t = run.keys(e), float(seen[run.id, e])
        z = np.random.default_rng(run.size).normal(0, 0.3, N_ITEMS["samples"])
        tau = 1e5 * (run.size / 16) ** 0.25 if flip else 4000.0 * run.size
        copies = (t >= tau * np.exp(z)).astype(float)
        kid = 0.05 * 50_000 / t
        curves.append({**k, "sampler": "heun18", "n_samples": len(copies), "memorized_fraction": copies.mean(),
                       "kid_heldout": kid, "kid_ci_low": 0.9 * kid, "kid_ci_high": 1.1 * kid})  # fmt: skip
        items.append(pd.DataFrame({**k, "sampler": "heun18", "item": np.arange(len(copies)), "nn_ratio": 1 - 0.9 * copies,
                                   "memorized": copies}))  # fmt: skip
    curves, items = pd.DataFrame(curves), pd.concat(items, ignore_index=True)
    e = st.config["experiments"]["memorization_time"]
    table = memorization_time_table(curve_frame(curves, runs), items, e["level"], e["bootstrap"], e["seed"])
    return {"memorization_curve": curves, "memorization_items": items, "memorization_time": table}


def dynamics_tables(st: Study) -> dict[str, pd.DataFrame]:
    """step_count (errors falling as 1/NFE for Euler, 1/NFE² for Heun) and posterior (exp(H)
    rising from 1 to N with σ) of the sampler_dynamics checkpoints and their subsets."""
    steps, rows, post = [1, 2, 4, 8], [], []
    units = [Run.parse(r).keys(e) for r, e in ((run.id, e) for run, e in st.experiment_evaluations("sampler_dynamics"))]
    units += [baseline_keys(s) for s in sorted({k["subset"] for k in units})]
    for k in units:
        kinds = ([("network", "fine_heun")] if k["epoch"] >= 0 else
                 [("gaussian", "exact_limit"), ("gaussian", "exact_map"), ("empirical", "fine_heun")])  # fmt: skip
        for name, ref in kinds:
            for solver in ("euler", "heun"):
                for n in steps:
                    nfe = n if solver == "euler" else 2 * n - 1
                    rows.append({**k, "denoiser": name, "solver": solver, "steps": n, "nfe": nfe, "n_samples": 8, "reference": ref,
                                 "rmse": 0.5 / nfe ** (1 if solver == "euler" else 2), "gl_score": 0.5, "memorized_fraction": 0.1})  # fmt: skip
        if k["epoch"] < 0:
            continue
        for s in SIGMAS:
            n_eff = 1 + (k["dataset_size"] - 1) * s**2 / (1 + s**2)
            post.append({**k, "sigma": s, "n_inputs": 8, "n_images": k["dataset_size"], "n_eff": n_eff, "n_eff_q10": 0.8 * n_eff,
                         "n_eff_q50": n_eff, "n_eff_q90": 1.2 * n_eff, "proxy_fraction": 0.3, "proxy_fraction_q10": 0.1,
                         "proxy_fraction_q50": 0.3, "proxy_fraction_q90": 0.5, "network_to_nearest": 0.1 * s / (1 + s),
                         "network_to_gaussian": 0.1, "network_to_empirical": 0.05, "gaussian_to_nearest": 0.2})  # fmt: skip
    dims, modes, pert = [], [], []
    for k in units:
        name = "network" if k["epoch"] >= 0 else "gaussian"
        dims += [{**k, "denoiser": name, "components": c, "variance_fraction": 1 - 0.5**c, "q10": 1 - 0.6**c, "q90": 1 - 0.4**c}
                 for c in (1, 2, 3)]  # fmt: skip
        modes += [{**k, "denoiser": name, "k": i, "eigenvalue": 0.5**i, "sqrt_eigenvalue": 0.5 ** (i / 2),
                   "settle_q25": 0.4 * 0.5 ** (i / 2), "settle_sigma": 0.48 * 0.5 ** (i / 2), "settle_q75": 0.6 * 0.5 ** (i / 2)}
                  for i in (1, 2, 3, 4)]  # fmt: skip
        pert += [{**k, "denoiser": name, "step": t, "sigma": s, "eta": 0.1, "n_samples": 8, "rmse_change": 0.1 * s / (1 + s),
                  "nn_changed": min(1.0, 0.1 * s)} for t, s in enumerate(SIGMAS[:-1])]  # fmt: skip
    return {"step_count": pd.DataFrame(rows), "posterior": pd.DataFrame(post), "trajectory_dimension": pd.DataFrame(dims),
            "trajectory_modes": pd.DataFrame(modes), "perturbation": pd.DataFrame(pert)}


def build_tables(flip: bool = False, noise: float = 0.0) -> dict[str, pd.DataFrame]:
    st = study()
    runs = pd.DataFrame(st.experiment_rows())
    finals = {rid: st.final_epoch(Run.parse(rid)) for rid in runs["run_id"].unique()}
    runs = runs.assign(images_seen=[200_000 * e // finals[r] for r, e in zip(runs["run_id"], runs["epoch"])],
                       n_params=1234, final_loss=0.1, warmup_images=WARMUP_IMAGES, p_mean=-1.2, p_std=1.2)  # fmt: skip
    rng = np.random.default_rng(1)
    spread_rng = np.random.default_rng(2)  # its own stream: the other tables' draws stay as they were
    shared = {k: rng.standard_normal(n) for k, n in N_ITEMS.items()}
    uniform = rng.uniform(size=N_ITEMS["samples"])  # a sample is a copy when its u < m, at every checkpoint
    lin_items, dist_items, gen_items, strong_items = [], [], [], []
    m_of = {}
    for rid, e in st.evaluations():
        run = Run.parse(rid)
        m_of[rid, e] = memorization(run, e, st.final_epoch(run), flip)
    bump = lambda s: np.exp(-(np.log(s / 2.0)) ** 2)  # noqa: E731  (the intermediate-σ dip)
    lin, dist, distil, diag, gen, tel, cf = [], [], [], [], [], [], []
    lam = 0.5 ** np.arange(1, D + 1)
    for (rid, e), m in m_of.items():
        run, k = Run.parse(rid), Run.parse(rid).keys(e)
        for s in LIN_SIGMAS:
            for target in ("denoiser", "score"):
                for inputs in ("noisy", "pure_noise"):
                    for a in (0.5, 0.99):
                        lin.append({**k, "sigma": s, "target": target, "inputs": inputs, "a": a, "alpha": np.sqrt(a),
                                    "cosine": 1 - 0.2 * m * bump(s), "nmse": 0.3 + 0.3 * m * bump(s)})  # fmt: skip
            n = N_ITEMS["pairs"]
            lin_items.append(pd.DataFrame({**k, "sigma": s, "a": 0.5, "item": np.arange(n),
                                           "cosine": _items(rng, n, 1 - 0.2 * m * bump(s) - 0.005 * np.log2(1024 / run.size)
                                                            * bump(s), noise, shared["pairs"]),
                                           "nmse": 0.3 + 0.3 * m * bump(s)}))  # fmt: skip
        for s in SIGMAS:
            lg = 0.02 + 0.5 * (1 - m if flip else m)  # contradicted: the linear model matches D_G only when memorizing
            gap = 0.05 + 0.2 * m + 0.01 * np.log2(1024 / run.size)  # the gap also falls with N among generalizing runs
            for pair, v in (("network-gaussian", gap), ("linear-gaussian", lg),
                            ("network-linear", 0.05), ("network-empirical", 0.3 - 0.2 * m),
                            ("network-local", (1.6 if flip else 0.6) * gap), ("network-mixture8", 0.8 * gap)):  # fmt: skip
                dist.append({**k, "sigma": s, "pair": pair, "rmse": v * bump(s) + 0.01, "rms_mean": v, "nmse": v * bump(s) + 0.01,
                             "r2": 1 - 2 * (v * bump(s) + 0.01)})  # fmt: skip
                n, item_value = N_ITEMS["inputs"], v * bump(s) + 0.01
                rms = _items(rng, n, item_value, noise, shared["inputs"])
                dist_items.append(pd.DataFrame({**k, "sigma": s, "pair": pair, "item": np.arange(n), "rms": rms,
                                                "nmse": _items(rng, n, item_value, noise, shared["inputs"]),
                                                "r2": 1 - 2 * rms,
                                                # contradicted: the network's output barely varies; noisy: r2 scattered about 0.9
                                                "spread": (0.01 if flip else 0.5) + 0 * rms if noise == 0 else
                                                10 * rms**2 * spread_rng.uniform(0.5, 1.5, n)}))  # fmt: skip
            distil.append({**k, "sigma": s, "method": "closed_form", "fit_rmse": 0.01, "weight_rel_error": 0.1 + m})
            shrink = lam / (lam + s**2)
            diag.append(pd.DataFrame({**k, "sigma": s, "k": np.arange(1, D + 1), "eigenvalue": lam, "shrinkage": shrink,
                                      "diagonal": shrink * (1 - 0.3 * m)}))  # fmt: skip
        for sampler in ("euler10", "heun18"):
            gen.append({**k, "sampler": sampler, "n_samples": 8, "gl_score": 0.5 - 0.4 * m, "memorized_fraction": m,
                        "mean_nn_distance": 1 - m, "mean_max_cosine": 0.5 + 0.5 * m, "gaussian_rmse": 0.2 + 0.3 * m})  # fmt: skip
            copies = (uniform < m).astype(float)
            gen_items.append(pd.DataFrame({**k, "sampler": sampler, "item": np.arange(len(copies)),
                                           "nn_ratio": 1 - 0.9 * copies, "memorized": copies}))  # fmt: skip
        if e == st.final_epoch(run) and any(mem.run.id == rid for mem in st.experiments["dataset_size"]):
            for model in ("network", "gaussian", "empirical", "mixture8", "local", "patch", "els"):
                for sampler in ("euler10", "heun18"):
                    cf.append({**k, "model": model, "sampler": sampler, "n_samples": 8, "gl_score": 0.5,
                               "memorized_fraction": m if model in ("network", "empirical") else 0.0,
                               "mean_nn_distance": 1 - m, "mean_max_cosine": 0.5, "gaussian_rmse": 0.2})  # fmt: skip
        if e == st.final_epoch(run):
            for skip in (0, 2, 4, 6):
                tel.append({**k, "sampler": "heun18", "total_steps": 18, "skip_steps": skip, "nfe": 35 - 2 * skip,
                            "nfe_saved": 2 * skip, "rmse_to_full": 0.01 * skip, "cosine_to_full": 1 - 0.001 * skip,
                            "gl_score": 0.5, "memorized_fraction": m})  # fmt: skip
    spectrum = pd.concat([pd.DataFrame({"subset": s, "dataset_size": parse_subset_id(s)[0], "k": np.arange(1, D + 1),
                                        "eigenvalue": lam * (1 + 0.1 * i)}) for i, s in enumerate(st.training_subsets)])  # fmt: skip
    for s in st.training_subsets:  # the Gaussian denoiser's own linearity rows
        for sigma in LIN_SIGMAS:
            for target in ("denoiser", "score"):
                for inputs in ("noisy", "pure_noise"):
                    for a in (0.5, 0.99):
                        lin.append(dict(**baseline_keys(s), sigma=sigma,
                                        target=target, inputs=inputs, a=a, alpha=np.sqrt(a), cosine=1.0,
                                        nmse=(np.sqrt(a) + np.sqrt(1 - a) - 1) / (np.sqrt(a) + np.sqrt(1 - a))))  # fmt: skip
    strong = []
    for p in st.pairs():
        m = m_of[p["s1"], p["epoch"]]
        for sampler in ("euler10", "heun18"):
            strong.append({**p, "sampler": sampler, "n_samples": 8, "s1_s2_cosine": 0.9 - 0.6 * m, "s1_s2_rmse": 0.1 + m,
                           "s1_nn_cosine": 0.5 + 0.5 * m, "s2_nn_cosine": 0.5 + 0.5 * m, "gaussian_s1_s2_cosine": 0.8,
                           "network_gaussian_cosine": 0.9 - 0.5 * m, "s1_s2_centred_cosine": 0.9 - 0.6 * m,
                           "gaussian_s1_s2_centred_cosine": 0.8, "floor_cosine": 0.5})  # fmt: skip
            n = N_ITEMS["samples"]
            strong_items.append(pd.DataFrame({**p, "sampler": sampler, "item": np.arange(n),
                                              "s1_s2_cosine": _items(rng, n, 0.9 - 0.6 * m, 3 * noise, shared["samples"]),
                                              "floor_cosine": _items(rng, n, 0.5, 3 * noise, -shared["samples"]),
                                              "gaussian_s1_s2_cosine": np.full(n, 0.8)}))  # fmt: skip
    contrasts = [{**p, "sampler": "heun18", "n": 8, "metric": metric, "value": v, "ci_low": v - 0.01 - 0.1 * noise,
                  "ci_high": v + 0.01 + 0.1 * noise}
                 for p in st.pairs() for metric in ("frechet", "kid") for v in [0.1 * (m_of[p["s1"], p["epoch"]] - 0.5)]]  # fmt: skip
    sets = ("model_s1", "model_s2", "gaussian_s1", "gaussian_s2", "train_s1", "train_s2", "heldout")
    dists = [{**p, "sampler": "heun18", "n": 8, "set_a": a, "set_b": b, "metric": metric, "value": v, "ci_low": v - 0.01,
              "ci_high": v + 0.01} for p in st.pairs() for i, a in enumerate(sets) for b in sets[i + 1 :]
             for metric in ("frechet", "kid") for v in [0.02 * (i + 1) + 0.05 * m_of[p["s1"], p["epoch"]]]]  # fmt: skip
    return {"distribution_contrasts": pd.DataFrame(contrasts), "distributions": pd.DataFrame(dists),
            "runs": runs, "linearity": pd.DataFrame(lin), "denoiser_distances": pd.DataFrame(dist),
            "distillation": pd.DataFrame(distil), "eigen_diagonal": pd.concat(diag, ignore_index=True),
            "generalization": pd.DataFrame(gen), "teleportation": pd.DataFrame(tel), "spectrum": spectrum,
            "closed_form_generalization": pd.DataFrame(cf),
            "strong_generalization": pd.DataFrame(strong), "linearity_items": pd.concat(lin_items, ignore_index=True),
            "distance_items": pd.concat(dist_items, ignore_index=True),
            "generalization_items": pd.concat(gen_items, ignore_index=True),
            "strong_generalization_items": pd.concat(strong_items, ignore_index=True),
            **memorization_time_tables(st, runs, flip), **dynamics_tables(st)}  # fmt: skip


def write_samples(root: Path) -> None:
    """Sample files of every evaluated checkpoint and Gaussian samples of every subset under ``root``."""
    st = study()
    rng = np.random.default_rng(0)

    def write(path: Path, groups: list[str]):
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            for g in groups:
                f[f"{g}/samples"] = rng.uniform(-1, 1, (8, D)).astype("float32")
                if not g.endswith("closed_form"):
                    steps = 10 if g.endswith("euler10") else 18
                    f[f"{g}/denoised"] = rng.uniform(-1, 1, (steps, 2, D)).astype("float32")
            f.attrs["image_shape"] = list(SHAPE)

    for rid, e in st.evaluations():
        write(root / "samples" / rid / f"epoch{e}.h5", ["network/euler10", "network/heun18", "linear/euler10"])
    for s in st.training_subsets:
        write(root / "samples" / "gaussian" / f"{s}.h5",
              ["gaussian/euler10", "gaussian/heun18", "gaussian/closed_form", "empirical/euler10", "empirical/heun18"])  # fmt: skip
    for run, e in st.figure_samples("closed_forms"):
        write(root / "samples" / run.id / f"epoch{e}_closed_forms.h5",
              [f"{m}/{s}" for m in ("mixture8", "local", "patch", "els") for s in ("euler10", "heun18")])


def training_images(subset: str) -> np.ndarray:
    n = parse_subset_id(subset)[0]
    return np.random.default_rng(n).uniform(-1, 1, (n, D))
