"""The drawing functions of the figures (registered in :data:`hiddengauss.study.FIGURES`), drawn
only from the tidy tables and the stored samples.

Conventions (the reviewers' requests): σ on a log axis; one continuous colormap with a colorbar
when one parameter is swept; normalized errors next to raw RMSE; images shown on a fixed scale,
clamped to [-1, 1] (never stretched per image); mean ± std bands when several seeds exist;
95% intervals over the held-out inputs / samples where the per-item tables are drawn; noise
levels outside the trained window of the plotted checkpoints (those the claims leave out,
:func:`hiddengauss.edm.trained_sigmas`) shaded grey.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import h5py  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import LogNorm, Normalize  # noqa: E402

from .edm import trained_sigmas  # noqa: E402
from .gaussian import effective_rank, wiener_shrinkage  # noqa: E402
from .generation import denoiser_names  # noqa: E402
from .io import read_array  # noqa: E402
from .memorization import nearest_neighbours  # noqa: E402
from .schedules import karras_sigmas  # noqa: E402
from .splits import parse_subset_id  # noqa: E402
from .study import FIGURES, Figure, Run, baseline_keys  # noqa: E402
from .tables import last_checkpoints, require_finite  # noqa: E402

PAIRS = {  # denoiser pair -> line style
    "network-gaussian": dict(color="tab:blue", ls="-"),
    "linear-gaussian": dict(color="tab:green", ls="--"),
    "network-linear": dict(color="tab:orange", ls="-."),
    "network-empirical": dict(color="tab:red", ls=":"),
}
CLOSED_FORMS = {  # closed-form model (pair network-<model>) -> line style; mixtures share one
    "gaussian": dict(color="tab:blue", ls="-"),
    "mixture": dict(color="tab:purple", ls="--"),
    "local": dict(color="tab:green", ls="-"),
    "patch": dict(color="tab:orange", ls="-."),
    "els": dict(color="tab:brown", ls="-", marker="."),
    "empirical": dict(color="tab:red", ls=":"),
}
R2_FLOOR = -0.5  # r² axis bottom: below it a model explains less than nothing (the curve leaves the axes)
SWEEPS = {"dataset_size": ("dataset_size", "training images N"), "model_scale": ("model_scale", "model scale (channels)"),
          "training_epochs": ("epoch", "training epoch")}  # fmt: skip


@dataclass
class FigureData:
    """What drawing functions read: tables by name (``runs`` included), stored samples, and the
    drawing options of the figure ``figure`` (its registry record): ``Study.figure_options``, the
    validated ``figures`` config section (defaults from the schema) with the figure's
    ``experiment`` (and, for Fig 3, the ``showcase`` run)."""

    tables: dict[str, pd.DataFrame]
    samples_path: Callable[[str, int], Path] | None = None  # (run id, epoch) -> samples HDF5
    gaussian_samples_path: Callable[[str], Path] | None = None  # subset -> Gaussian/empirical samples
    closed_form_samples_path: Callable[[str, int], Path] | None = None  # (run id, epoch) -> closed-form samples
    training_images: Callable[[str], np.ndarray] | None = None  # subset -> (N, d) in [-1, 1]
    options: dict = field(default_factory=dict)
    figure: Figure | None = None

    def __post_init__(self):
        require_finite(self.tables)  # no NaN reaches a figure

    def table(self, name: str) -> pd.DataFrame:
        if name not in self.tables:
            raise KeyError(f"figure needs table {name!r}, have {sorted(self.tables)}")
        return self.tables[name]

    def experiment(self, name: str) -> pd.DataFrame:
        """runs.csv rows of an experiment (run_id, epoch, arch, model_scale, dataset_size, subset, seed)."""
        runs = self.table("runs")
        rows = runs[runs["experiment"] == name]
        if rows.empty:
            raise ValueError(f"no runs of experiment {name!r} in runs.csv (experiments: {sorted(set(runs['experiment']))})")
        return rows

    def load(self, path, key: str) -> np.ndarray:
        with h5py.File(path, "r") as f:
            return read_array(f, key), tuple(int(v) for v in f.attrs["image_shape"])

    def sampler(self, path, preferred: str, denoiser: str = "network") -> str:
        with h5py.File(path, "r") as f:
            have = sorted(f[denoiser]) if denoiser in f else []
        if not have:
            raise KeyError(f"{path} holds no {denoiser} samples")
        return preferred if preferred in have else have[0]


# --------------------------------------------------------------------------- helpers


def image_grid(rows: list[np.ndarray], shape: tuple[int, int, int], pad: int = 1) -> np.ndarray:
    """Rows of flattened images (each (n, d) in [-1, 1]) as one array for imshow, clamped to [-1, 1]
    and mapped to [0, 1] with the same scale for every image; white padding."""
    c, h, w = shape
    n = max(len(r) for r in rows)
    out = np.ones(((h + pad) * len(rows) + pad, (w + pad) * n + pad, c), dtype=np.float32)
    for i, r in enumerate(rows):
        for j, x in enumerate(r):
            img = (np.clip(np.asarray(x, dtype=np.float32).reshape(c, h, w), -1, 1) + 1) / 2
            y0, x0 = pad + i * (h + pad), pad + j * (w + pad)
            out[y0 : y0 + h, x0 : x0 + w] = img.transpose(1, 2, 0)
    return out[..., 0] if c == 1 else out


def show_grid(ax, rows, shape, labels: list[str], title: str = "") -> None:
    grid = image_grid(rows, shape)
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    h = shape[1] + 1
    ax.set_yticks([1 + h * i + shape[1] / 2 for i in range(len(rows))], labels, fontsize=8)
    ax.set_xticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)


def sweep_colors(values, cmap: str, log: bool = True):
    """A continuous colormap over the swept values: (value -> colour, ScalarMappable)."""
    values = np.asarray(sorted(set(values)), dtype=float)
    lo, hi = values.min(), values.max()
    if hi == lo:
        hi = lo * 1.1 + 1e-9
    norm = LogNorm(lo, hi) if log and lo > 0 else Normalize(lo, hi)
    sm = ScalarMappable(norm=norm, cmap=plt.get_cmap(cmap))
    sm.swept = values  # colorbar ticks at the swept values
    return (lambda v: sm.to_rgba(float(v))), sm


def colorbar(fig, sm, ax, label: str):
    """A colorbar for a swept parameter, ticked at the values that were swept (at most 12)."""
    cb = fig.colorbar(sm, ax=ax, label=label)
    values = sm.swept if len(sm.swept) <= 12 else sm.swept[:: int(np.ceil(len(sm.swept) / 12))]
    cb.set_ticks(values, labels=[f"{v:.4g}" for v in values])
    cb.minorticks_off()
    return cb


def band(ax, frame: pd.DataFrame, x: str, y: str, **style) -> None:
    """Mean over seeds as a line, with a ±1 std band when there are several seeds."""
    g = frame.groupby(x)[y]
    m, s, n = g.mean(), g.std(), g.count()
    ax.plot(m.index, m.values, **style)
    if (n > 1).any():
        ax.fill_between(m.index, (m - s).values, (m + s).values, color=style.get("color"), alpha=0.2, lw=0)


def item_band(ax, items: pd.DataFrame, x: str, y: str, **style) -> None:
    """Mean over items as a line, with its 95% interval (mean ± 1.96 standard errors over the
    items: held-out inputs or samples) as a band."""
    g = items.groupby(x)[y]
    m, se = g.mean(), g.std() / np.sqrt(g.count())
    ax.plot(m.index, m.values, **style)
    ax.fill_between(m.index, (m - 1.96 * se).values, (m + 1.96 * se).values, color=style.get("color"), alpha=0.2, lw=0)


def trained_window(runs: pd.DataFrame) -> tuple[float, float] | None:
    """(smallest, largest) σ that every checkpoint of ``runs`` was trained at, or None when the
    runs table lacks the images seen or σ distribution."""
    if not {"images_seen", "p_mean", "p_std"} <= set(runs.columns) or runs.empty:
        return None
    grid = np.geomspace(1e-4, 1e3, 2000)
    keep = np.ones_like(grid, dtype=bool)
    for r in runs.drop_duplicates(["run_id", "epoch"]).itertuples():
        keep &= trained_sigmas(grid, r.images_seen, r.p_mean, r.p_std)
    return (float(grid[keep].min()), float(grid[keep].max())) if keep.any() else (np.nan, np.nan)


def shade_untrained(ax, window: tuple[float, float] | None) -> None:
    """Shade the σ outside the trained window grey (the claims leave them out)."""
    if window is None:
        return
    lo, hi = ax.get_xlim()
    wlo, whi = window
    style = dict(color="0.85", alpha=0.6, lw=0, zorder=0)
    if not np.isfinite(wlo):
        ax.axvspan(lo, hi, **style)
    else:
        if wlo > lo:
            ax.axvspan(lo, wlo, **style, label="outside the trained σ window")
        if whi < hi:
            ax.axvspan(whi, hi, **style)
    ax.set_xlim(lo, hi)


def sigma_axis(ax, ylabel: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("noise level σ")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both", lw=0.5)


def merge_runs(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``table`` that belong to the (run_id, epoch)s of ``runs``, with the runs' columns."""
    keys = runs[["run_id", "epoch"]].drop_duplicates()
    return table.merge(keys, on=["run_id", "epoch"])


def save(fig, out_png: str | Path, out_pdf: str | Path | None = None, dpi: int = 150) -> None:
    fig.savefig(out_png, dpi=dpi, format="png")
    if out_pdf:
        fig.savefig(out_pdf, format="pdf")
    plt.close(fig)


def _showcase(data: FigureData) -> pd.Series:
    """The run of Fig 3, as chosen by ``Study.showcase`` and passed in ``options["showcase"]``
    (run id, epoch): its row of the runs table."""
    if "showcase" not in data.options:
        raise KeyError("the same-noise figure needs options['showcase'] = (run id, epoch), see Study.showcase")
    run_id, epoch = data.options["showcase"]
    rows = data.table("runs").query("run_id == @run_id and epoch == @epoch")
    if rows.empty:
        raise KeyError(f"showcase run {run_id} epoch {epoch} is not in the runs table")
    return rows.iloc[0]


# --------------------------------------------------------------------------- figures


def linearity_figure(data: FigureData):
    """Fig 1: linearity (cosine, nMSE) vs σ per dataset size, the Gaussian baseline dashed;
    noisy and pure-noise inputs, the score variant, and the α sweep of the largest data set."""
    o = data.options
    lin = data.table("linearity")
    runs = last_checkpoints(data.experiment("dataset_size"))
    net = merge_runs(lin, runs)
    gauss = lin[lin["run_id"].isin([baseline_keys(s)["run_id"] for s in runs["subset"]])]
    color, sm = sweep_colors(runs["dataset_size"], o["cmap"])
    variants = [("denoiser", "noisy"), ("denoiser", "pure_noise"), ("score", "noisy")]
    fig, axes = plt.subplots(2, 4, figsize=(17, 7), constrained_layout=True)
    for j, (target, inputs) in enumerate(variants):
        for frame, ls in ((net, "-"), (gauss, "--")):
            sel = frame[(frame["target"] == target) & (frame["inputs"] == inputs) & np.isclose(frame["a"], o["a"])]
            for n, rows in sel.groupby("dataset_size"):
                for i, m in enumerate(("cosine", "nmse")):
                    band(axes[i, j], rows, "sigma", m, color=color(n), ls=ls, lw=1.4)
        for i, m in enumerate(("cosine", "normalized difference (nMSE)")):
            sigma_axis(axes[i, j], m)
        axes[0, j].set_title(f"{target}, {inputs.replace('_', ' ')} inputs, a = {o['a']}", fontsize=10)
        if target == "score":
            axes[1, j].set_yscale("log")  # the Gaussian score's offset term grows as 1/σ²
    colorbar(fig, sm, axes[:, 2], "training images N (solid: network, dashed: Gaussian D_G)")
    largest = runs.sort_values("dataset_size").iloc[-1]
    sweep = merge_runs(lin, runs[runs["run_id"] == largest["run_id"]])
    sweep = sweep[(sweep["target"] == "denoiser") & (sweep["inputs"] == "noisy")]
    acolor, asm = sweep_colors(sweep["a"], o["cmap"], log=False)
    for a, rows in sweep.groupby("a"):
        for i, m in enumerate(("cosine", "nmse")):
            band(axes[i, 3], rows, "sigma", m, color=acolor(a), lw=1.4)
    for i, m in enumerate(("cosine", "normalized difference (nMSE)")):
        sigma_axis(axes[i, 3], m)
    window = trained_window(runs)
    for ax in axes.ravel():
        shade_untrained(ax, window)
    axes[0, 3].set_title(f"a sweep, N = {int(largest['dataset_size'])} (noisy inputs)", fontsize=10)
    colorbar(fig, asm, axes[:, 3], "mixing a (α = √a, β = √(1−a))")
    fig.suptitle("Linearity of trained denoisers: D(αx₁+βx₂) vs αD(x₁)+βD(x₂)")
    return fig


def linear_vs_gaussian_figure(data: FigureData):
    """Fig 2: distances between network, distilled linear, Gaussian and empirical-optimal denoisers
    vs σ, one column per architecture (RMSE on top, nMSE below)."""
    dist = data.table("denoiser_distances")
    exp = data.options["experiment"]
    runs = last_checkpoints(data.experiment(exp))
    if exp == "dataset_size":
        runs = runs[runs["dataset_size"] == runs["dataset_size"].max()]
    archs = list(dict.fromkeys(runs["arch"]))
    fig, axes = plt.subplots(2, len(archs), figsize=(4.5 * len(archs) + 1, 7), squeeze=False, constrained_layout=True)
    for j, arch in enumerate(archs):
        rows = merge_runs(dist, runs[runs["arch"] == arch])
        for pair, style in PAIRS.items():
            sel = rows[rows["pair"] == pair]
            for i, m in enumerate(("rmse", "nmse")):
                if not sel.empty:
                    band(axes[i, j], sel, "sigma", m, label=pair, lw=1.6, **style)
        r = runs[runs["arch"] == arch].iloc[0]
        axes[0, j].set_title(f"{arch}, scale {int(r['model_scale'])}, N = {int(r['dataset_size'])}", fontsize=10)
        sigma_axis(axes[0, j], "RMSE per pixel")
        sigma_axis(axes[1, j], "nMSE  ‖D₁−D₂‖/‖D₁‖")
        axes[0, j].set_yscale("log")
        for i in range(2):
            shade_untrained(axes[i, j], trained_window(runs[runs["arch"] == arch]))
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Distilled linear denoiser vs Gaussian (Wiener) denoiser vs network, held-out inputs")
    return fig


def same_noise_samples_figure(data: FigureData):
    """Fig 3: samples from the same latents by the network, its distilled linear model, the Gaussian
    model (ODE with D_G, and the exact closed form) and the empirical-optimal denoiser, plus the
    denoised estimates along one trajectory."""
    o, run = data.options, _showcase(data)
    path, gpath = data.samples_path(run["run_id"], int(run["epoch"])), data.gaussian_samples_path(run["subset"])
    s = data.sampler(path, o["same_noise_sampler"])
    rows, labels, traj, tlabels = [], [], [], []
    sources = [(path, "network", s), (path, "linear", s), (gpath, "gaussian", s), (gpath, "gaussian", "closed_form"),
               (gpath, "empirical", s)]  # fmt: skip
    for p, den, smp in sources:
        try:
            x, shape = data.load(p, f"{den}/{smp}/samples")
        except KeyError:
            continue
        rows.append(x[: o["n_show"]])
        labels.append(f"{den} ({smp})" if smp == "closed_form" else den)
        if smp != "closed_form":
            d, _ = data.load(p, f"{den}/{smp}/denoised")
            if d.shape[1]:
                traj.append(d[:, 0])
                tlabels.append(den)
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5), gridspec_kw=dict(width_ratios=[1, 1.2]), constrained_layout=True)
    show_grid(axes[0], rows, shape, labels, f"final samples, same latents ({s})")
    if traj:
        steps = min(len(t) for t in traj)
        show_grid(axes[1], [t[:steps] for t in traj], shape, tlabels, f"denoised estimate D(x_t; σ_t) of sample 0, steps 1…{steps} (σ from 80 down)")
    else:
        axes[1].set_axis_off()
        axes[1].text(0.5, 0.5, "no trajectories stored (sampling.trajectories = 0)", ha="center")
    fig.suptitle(f"Same initial noise: {run['arch']}, scale {int(run['model_scale'])}, N = {int(run['dataset_size'])}, "
                 f"epoch {int(run['epoch'])} (images clamped to [-1, 1])")  # fmt: skip
    return fig


def gaussian_structure_figure(data: FigureData):
    """Figs 4–5: eigen-spectrum, shrinkage λ/(λ+σ²), effective rank vs σ, and distilled vs Wiener weights."""
    o = data.options
    spec = data.table("spectrum")
    spec = spec[[not parse_subset_id(s)[1] for s in spec["subset"]]]  # nested subsets only, no S2 halves
    color, sm = sweep_colors(spec["dataset_size"], o["cmap"])
    fig, axes = plt.subplots(2, 3, figsize=(18, 9), constrained_layout=True)
    ax = axes[0, 0]
    for n, rows in spec.groupby("dataset_size"):
        ax.plot(rows["k"], rows["eigenvalue"].clip(lower=1e-12), color=color(n), lw=1.4)
    ax.set(yscale="log", xlabel="index k", ylabel="eigenvalue λ_k", title="(a) covariance spectrum (clipped at 1e-12)")
    colorbar(fig, sm, ax, "training images N")
    largest = spec[spec["dataset_size"] == spec["dataset_size"].max()]
    lam = largest["eigenvalue"].to_numpy()
    sigmas = karras_sigmas(10)
    scolor, ssm = sweep_colors(sigmas, o["cmap"])
    ax = axes[0, 1]
    for sig in sigmas:
        ax.plot(largest["k"], wiener_shrinkage(lam, sig), color=scolor(sig), lw=1.2)
    ax.set(xscale="log", xlabel="index k", ylabel="λ_k / (λ_k + σ²)",
           title=f"(b) Wiener shrinkage, N = {int(largest['dataset_size'].iloc[0])}")  # fmt: skip
    colorbar(fig, ssm, ax, "σ (G10)")
    ax = axes[0, 2]
    grid = karras_sigmas(40)
    for n, rows in spec.groupby("dataset_size"):
        ax.plot(grid, [effective_rank(rows["eigenvalue"].to_numpy(), s) for s in grid], color=color(n), lw=1.4)
    sigma_axis(ax, "Σ_k λ_k/(λ_k+σ²)")
    ax.set(yscale="log", title="(c) effective rank of D_G (coarse to fine)")
    dist = data.table("distillation")
    runs = last_checkpoints(data.experiment("dataset_size"))
    rows = merge_runs(dist, runs).merge(runs[["run_id", "dataset_size"]].drop_duplicates(), on="run_id", suffixes=("", "_r"))
    rcolor, rsm = sweep_colors(runs["dataset_size"], o["cmap"])
    ax = axes[1, 0]
    for n, r in rows.groupby("dataset_size"):
        band(ax, r, "sigma", "weight_rel_error", color=rcolor(n), lw=1.4)
    sigma_axis(ax, "‖W_σ − W_G‖_F / ‖W_G‖_F")
    ax.set_title("(d) distilled vs Wiener weights")
    colorbar(fig, rsm, ax, "training images N")
    diag = data.table("eigen_diagonal")
    ordered = runs.sort_values("dataset_size")
    for ax, run, tag in zip(axes[1, 1:], (ordered.iloc[-1], ordered.iloc[0]), "ef"):
        d = merge_runs(diag, pd.DataFrame([run]))
        for sig, r in d.groupby("sigma"):
            ax.scatter(r["shrinkage"], r["diagonal"], s=5, color=scolor(sig), alpha=0.7)
        ax.plot([0, 1], [0, 1], color="k", lw=0.8, ls="--")
        ax.set(xlabel="Wiener shrinkage λ_k/(λ_k+σ²)", ylabel="distilled (UᵀW_σU)_kk",
               title=f"({tag}) eigenbasis diagonal, N = {int(run['dataset_size'])}")  # fmt: skip
        ax.grid(alpha=0.3, lw=0.5)
    colorbar(fig, ssm, axes[1, 2], "σ (G10)")
    fig.suptitle("Gaussian structure: spectrum of the training covariance and what the denoisers keep of it")
    return fig


def sweep_figure(data: FigureData):
    """Figs 6–8: distance to the Gaussian denoiser vs σ per swept value, memorization metrics, and
    samples from the same latents with their nearest training images."""
    o, experiment = data.options, data.options["experiment"]
    column, label = SWEEPS[experiment]
    runs = data.experiment(experiment)
    if experiment != "training_epochs":
        runs = last_checkpoints(runs)
    dist = merge_runs(data.table("distance_items"), runs)
    dist = dist[dist["pair"] == "network-gaussian"]
    color, sm = sweep_colors(runs[column], o["cmap"])
    fig = plt.figure(figsize=(16, 5 + 0.55 * 2 * runs[column].nunique()), constrained_layout=True)
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.2, 0.55 * 2 * runs[column].nunique() + 0.8])
    axes = top.subplots(1, 3)
    for v, rows in dist.groupby(column):
        item_band(axes[0], rows, "sigma", "rms", color=color(v), lw=1.4)
        item_band(axes[1], rows, "sigma", "nmse", color=color(v), lw=1.4)
    sigma_axis(axes[0], "E_x RMS(network − Gaussian) per pixel (Eq. 8)")
    sigma_axis(axes[1], "nMSE(network, Gaussian)")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    for ax in axes[:2]:
        shade_untrained(ax, trained_window(runs))
    axes[1].legend(fontsize=8, loc="lower left")
    top.get_layout_engine().set(wspace=0.12)
    axes[0].set_title("distance to the Gaussian denoiser of the same training set", fontsize=10)
    colorbar(top, sm, axes[:2], label)
    gen = merge_runs(data.table("generalization"), runs)
    gen = gen[gen["sampler"] == (o["sampler"] if (gen["sampler"] == o["sampler"]).any() else gen["sampler"].iloc[0])]
    ax = axes[2]
    items = merge_runs(data.table("generalization_items"), runs)
    items = items[items["sampler"] == gen["sampler"].iloc[0]]
    item_band(ax, items, column, "memorized", color="tab:red", marker="o", label="memorized fraction (95% interval)")
    band(ax, gen, column, "gl_score", color="tab:blue", marker="s", label="GL score (NN distance / norm)")
    ax.set(xscale="log", xlabel=label, ylabel="fraction / score", ylim=(-0.03, max(1.03, 1.05 * gen["gl_score"].max())))
    ax.set_title(f"memorization of {int(gen['n_samples'].iloc[0])} samples ({gen['sampler'].iloc[0]})", fontsize=10)
    swept = sorted(set(gen[column]))
    ax.set_xticks(swept, [f"{v:g}" for v in swept], fontsize=8, rotation=45 if len(swept) > 6 else 0)
    ax.minorticks_off()
    ax.grid(alpha=0.3, lw=0.5)
    ax.legend(fontsize=8)
    img_rows, labels, shape = [], [], None
    first_seed = runs.sort_values("seed").groupby(column).head(1).sort_values(column)
    for _, r in first_seed.iterrows():
        path = data.samples_path(r["run_id"], int(r["epoch"]))
        x, shape = data.load(path, f"network/{data.sampler(path, o['sampler'])}/samples")
        x = x[: o["n_show"]]
        train = data.training_images(r["subset"])
        _, idx = nearest_neighbours(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(train), k=1)
        img_rows += [x, train[idx[:, 0].numpy()]]
        labels += [f"{label.split(' (')[0]} {int(r[column])}", "nearest training image"]
    show_grid(bottom.subplots(), img_rows, shape, labels, "samples from the same latents (odd rows) and their nearest training images (even rows)")
    fig.suptitle({"dataset_size": "Fig 6 - dataset size", "model_scale": "Fig 7 - model scale",
                  "training_epochs": "Fig 8 - training epochs"}[experiment] +  # fmt: skip
                 f": {runs['arch'].iloc[0]}" + ("" if experiment == "model_scale" else f", scale {int(runs['model_scale'].iloc[0])}")
                 + ("" if experiment == "dataset_size" else f", N = {int(runs['dataset_size'].iloc[0])}"))  # fmt: skip
    return fig


def strong_generalization_figure(data: FigureData):
    """Fig 9: NN in S1 / Gaussian(S1) / model(S1) / model(S2) / Gaussian(S2) / NN in S2 from the
    same latents for every pair, and the S1–S2 agreement of every pair."""
    o = data.options
    table = data.table("strong_generalization")
    s = o["sampler"] if (table["sampler"] == o["sampler"]).any() else table["sampler"].iloc[0]
    table = table[table["sampler"] == s].reset_index(drop=True)
    n = len(table)
    ncols = min(n, 4)
    nrows = int(np.ceil(n / ncols))
    fig = plt.figure(figsize=(4.2 * ncols + 1, 3.6 * nrows + 4.5), constrained_layout=True)
    top, bottom = fig.subfigures(2, 1, height_ratios=[3.6 * nrows, 4.5])
    grid_axes = np.atleast_1d(top.subplots(nrows, ncols)).ravel()
    for ax in grid_axes[n:]:
        ax.set_axis_off()
    for ax, (_, p) in zip(grid_axes, table.iterrows()):
        rows, shape = [], None
        for run in (p["s1"], p["s2"]):
            sub = Run.parse(run).subset
            x, shape = data.load(data.samples_path(run, int(p["epoch"])), f"network/{s}/samples")
            g, _ = data.load(data.gaussian_samples_path(sub), f"gaussian/{s}/samples")
            train = data.training_images(sub)
            x, g = x[: o["n_show"]], g[: o["n_show"]]
            _, idx = nearest_neighbours(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(train), k=1)
            rows.append((train[idx[:, 0].numpy()], g, x))
        (nn1, g1, x1), (nn2, g2, x2) = rows
        show_grid(ax, [nn1, g1, x1, x2, g2, nn2], shape, ["NN in S1", "Gaussian(S1)", "model(S1)", "model(S2)", "Gaussian(S2)", "NN in S2"],
                  f"{p['kind']}: N = {int(p['dataset_size'])} per split, scale {int(p['model_scale'])}\n"
                  f"epoch {int(p['epoch'])}, S1-S2 mean-removed cosine {p['s1_s2_centred_cosine']:.2f}")  # fmt: skip
    ax = bottom.subplots()
    labels = [f"{k}\nN={int(n_)}, c{int(c)}, e{int(e)}" for k, n_, c, e in
              zip(table["kind"], table["dataset_size"], table["model_scale"], table["epoch"])]  # fmt: skip
    pos = np.arange(n)
    items = data.table("strong_generalization_items")
    items = items[items["sampler"] == s]
    for i, (col, name) in enumerate((("s1_s2_cosine", "model(S1) vs model(S2)"),
                                     ("gaussian_s1_s2_cosine", "Gaussian(S1) vs Gaussian(S2)"))):  # fmt: skip
        g = items.groupby("pair_id")[col]
        m, half = g.mean().loc[table["pair_id"]], 1.96 * (g.std() / np.sqrt(g.count())).loc[table["pair_id"]]
        ax.bar(pos + (i - 0.5) * 0.35, m.values, yerr=half.values, capsize=3, width=0.35, label=name)
    floor = items.groupby("pair_id")["floor_cosine"].mean().mean()
    ax.axhline(floor, color="0.3", ls="--", lw=1, label=f"unrelated held-out pairs (floor {floor:.2f})")
    ax.set_xticks(pos, labels, fontsize=8)
    ax.set(ylabel=f"mean-removed cosine, same latents ({s}), 95% interval",
           ylim=(min(0, floor - 0.05, float(items["s1_s2_cosine"].groupby(items["pair_id"]).mean().min()) - 0.05), 1.05))
    ax.legend(fontsize=8, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0))
    ax.grid(alpha=0.3, axis="y", lw=0.5)
    fig.suptitle("Fig 9 - strong generalization: models trained on disjoint halves S1, S2")
    return fig


def architectures_figure(data: FigureData):
    """Appendix: Figs 2 and 3 for each architecture (distances vs σ; same-latent samples)."""
    o = data.options
    runs = last_checkpoints(data.experiment("architecture"))
    dist = merge_runs(data.table("denoiser_distances"), runs)
    archs = list(dict.fromkeys(runs["arch"]))
    fig, axes = plt.subplots(2, len(archs), figsize=(5.2 * len(archs), 8.5), squeeze=False, constrained_layout=True)
    for j, arch in enumerate(archs):
        r = runs[runs["arch"] == arch].sort_values("seed").iloc[0]
        for pair, style in PAIRS.items():
            sel = dist[(dist["run_id"].isin(runs[runs["arch"] == arch]["run_id"])) & (dist["pair"] == pair)]
            if not sel.empty:
                band(axes[0, j], sel, "sigma", "rmse", label=pair, lw=1.6, **style)
        sigma_axis(axes[0, j], "RMSE per pixel")
        axes[0, j].set_yscale("log")
        axes[0, j].set_title(f"{arch}, scale {int(r['model_scale'])}, N = {int(r['dataset_size'])}", fontsize=10)
        path, gpath = data.samples_path(r["run_id"], int(r["epoch"])), data.gaussian_samples_path(r["subset"])
        s = data.sampler(path, o["same_noise_sampler"])
        rows, labels, shape = [], [], None
        for p, den in ((path, "network"), (path, "linear"), (gpath, "gaussian")):
            try:
                x, shape = data.load(p, f"{den}/{s}/samples")
            except KeyError:
                continue
            rows.append(x[: o["n_show"]])
            labels.append(den)
        show_grid(axes[1, j], rows, shape, labels, f"same latents ({s})")
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("Architectures: distances between denoisers (top) and same-noise samples (bottom)")
    return fig


def _closed_form_pairs(items: pd.DataFrame) -> list[tuple[str, str]]:
    """(pair, model kind) of every network-<closed form> pair in ``items``, in CLOSED_FORMS order."""
    names = sorted(p for p in items["pair"].unique() if p.startswith("network-") and p != "network-linear")
    kind = lambda p: next((k for k in CLOSED_FORMS if p[len("network-"):].startswith(k)), None)  # noqa: E731
    return sorted(((p, kind(p)) for p in names if kind(p)), key=lambda t: (list(CLOSED_FORMS).index(t[1]), t[0]))


def median_band(ax, items: pd.DataFrame, x: str, y: str, **style) -> None:
    """Median over items as a line, the interquartile range as a band (r² has heavy tails)."""
    g = items.groupby(x)[y]
    m, lo, hi = g.median(), g.quantile(0.25), g.quantile(0.75)
    ax.plot(m.index, m.values, **style)
    ax.fill_between(m.index, lo.values, hi.values, color=style.get("color"), alpha=0.15, lw=0)


def closed_forms_figure(data: FigureData):
    """Which closed form explains the network: r² of each closed-form model as a model of the
    network's output, against σ, per training-set size (final checkpoints of the dataset_size
    experiment), and against training epoch at three trained σ (training_epochs experiment);
    bottom row: samples from the same latents by the network and by each model (rule
    sample_closed_forms), labelled with the fraction of that model's samples that copy a training
    image (closed_form_generalization)."""
    o, items = data.options, data.table("distance_items")
    exps, panels = set(data.table("runs")["experiment"]), []
    if "dataset_size" in exps:
        panels = [("size", n, r) for n, r in last_checkpoints(data.experiment("dataset_size")).groupby("dataset_size")]
    epochs = data.experiment("training_epochs") if "training_epochs" in exps else None
    show = data.closed_form_samples_path is not None and bool(panels) and "closed_form_generalization" in data.tables
    nrows, ncols = 1 + (epochs is not None) + show, max(len(panels), 3)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.2 * nrows), squeeze=False, constrained_layout=True)
    pairs = _closed_form_pairs(items)
    for j, (_, n, r) in enumerate(panels):
        sel = merge_runs(items, r)
        ax = axes[0, j]
        for pair, kind in pairs:
            rows = sel[sel["pair"] == pair]
            if not rows.empty:
                median_band(ax, rows, "sigma", "r2", label=pair[len("network-"):], lw=1.5, **CLOSED_FORMS[kind])
        sigma_axis(ax, "r² of the model's output to the network's")
        ax.set_ylim(R2_FLOOR, 1.02)
        shade_untrained(ax, trained_window(r))
        ax.set_title(f"N = {int(n)} (final checkpoint)", fontsize=10)
    for i in range(nrows):
        for j in range(len(panels) if i != 1 or epochs is None else 3, ncols):
            axes[i, j].axis("off")
    if panels:
        axes[0, 0].legend(fontsize=8, loc="lower left")
    if epochs is not None:
        window = trained_window(epochs[epochs["epoch"] == epochs["epoch"].max()])
        sig = np.sort(items["sigma"].unique())
        inside = sig[(sig >= (window[0] if window else sig.min())) & (sig <= (window[1] if window else sig.max()))]
        picks = inside[np.linspace(0, len(inside) - 1, 3).round().astype(int)] if len(inside) else sig[:3]
        sel = merge_runs(items, epochs)
        for j, s in enumerate(picks[:ncols]):
            ax = axes[1, j]
            at = sel[np.isclose(sel["sigma"], s)]
            for pair, kind in pairs:
                rows = at[at["pair"] == pair]
                if not rows.empty:
                    median_band(ax, rows, "epoch", "r2", label=pair[len("network-"):], lw=1.5, **CLOSED_FORMS[kind])
            ax.set(xscale="log", xlabel="training epoch", ylabel="r²", ylim=(R2_FLOOR, 1.02))
            ax.grid(alpha=0.3, lw=0.5)
            ax.set_title(f"σ = {s:.3g}, N = {int(epochs['dataset_size'].iloc[0])}, over training", fontsize=10)
    if show:
        gen = data.table("closed_form_generalization")
        for j, (_, n, r) in enumerate(panels):
            _closed_form_samples(axes[-1, j], data, r.iloc[0], gen, o.get("same_noise_sampler", "heun18"), o.get("n_show", 8))
    fig.suptitle("Which closed form explains the network: median r² over held-out noisy inputs (bands: quartiles)")
    return fig


def _closed_form_samples(ax, data: FigureData, run: pd.Series, gen: pd.DataFrame, preferred: str, n_show: int) -> None:
    """One checkpoint's same-latent samples: the network, the Gaussian model, the empirical
    denoiser and every closed-form model, each row labelled with its copied fraction."""
    rid, epoch = run["run_id"], int(run["epoch"])
    cpath = data.closed_form_samples_path(rid, epoch)
    sources = [(data.samples_path(rid, epoch), "network"), (data.gaussian_samples_path(run["subset"]), "gaussian"),
               (data.gaussian_samples_path(run["subset"]), "empirical")]  # fmt: skip
    order = lambda m: next((i for i, k in enumerate(CLOSED_FORMS) if m.startswith(k)), len(CLOSED_FORMS))  # noqa: E731
    sources += [(cpath, m) for m in sorted(denoiser_names(cpath), key=lambda m: (order(m), m))]
    sampler = data.sampler(data.samples_path(rid, epoch), preferred)
    mine = gen[(gen["run_id"] == rid) & (gen["epoch"] == epoch) & (gen["sampler"] == sampler)]
    rows, labels, shape = [], [], None
    for path, model in sources:
        try:
            x, shape = data.load(path, f"{model}/{sampler}/samples")
        except KeyError:
            continue
        rows.append(x[:n_show])
        m = mine.loc[mine["model"] == model, "memorized_fraction"]
        labels.append(f"{model} ({m.iloc[0]:.0%} copies)" if len(m) else model)
    width = max(len(x) for x in rows)
    rows = [np.pad(x, ((0, width - len(x)), (0, 0)), constant_values=-1) for x in rows]  # fewer ELS samples: black
    show_grid(ax, rows, shape, labels, f"N = {int(run['dataset_size'])}: same latents ({sampler})")


def distributions_figure(data: FigureData):
    """Distributions, not samples: the KID among model(S1), model(S2), Gaussian(S1), Gaussian(S2),
    the S1 and S2 training images and the held-out images (disjoint latents, all sets of one size),
    one matrix per fully trained strong-generalization pair; right: the distance between the two
    models against N next to each model's distance to held-out data and that of the training
    images themselves, with 95% bootstrap intervals (table distributions)."""
    t = data.table("distributions")
    t = t[(t["metric"] == "kid") & (t["kind"] == "full")]
    sizes = sorted(t["dataset_size"].unique())
    fig, axes = plt.subplots(1, len(sizes) + 1, figsize=(4.6 * len(sizes) + 5.5, 4.8), constrained_layout=True, squeeze=False)
    names = list(dict.fromkeys([*t["set_a"], *t["set_b"]]))
    short = {n: n.replace("model_", "model ").replace("gaussian_", "Gauss. ").replace("train_", "train ") for n in names}
    for ax, n in zip(axes[0], sizes):
        r = t[t["dataset_size"] == n]
        m = np.zeros((len(names), len(names)))
        for row in r.itertuples():
            i, j = names.index(row.set_a), names.index(row.set_b)
            m[i, j] = m[j, i] = row.value
        im = ax.imshow(m, cmap=data.options["cmap"])
        ax.set_xticks(range(len(names)), [short[x] for x in names], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), [short[x] for x in names], fontsize=8)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6, color="w" if v < m.max() / 2 else "k")
        ax.set_title(f"KID, N = {int(n)} per split (n = {int(r['n'].iloc[0])} images per set)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    ax = axes[0, -1]
    curves = {"model(S1) vs model(S2)": [("model_s1", "model_s2")],
              "model vs held-out (mean of S1, S2)": [("model_s1", "heldout"), ("model_s2", "heldout")],
              "training images vs held-out": [("train_s1", "heldout"), ("train_s2", "heldout")]}  # fmt: skip
    for label, pairs in curves.items():
        sel = t[[(a, b) in pairs for a, b in zip(t["set_a"], t["set_b"])]]
        g = sel.groupby("dataset_size")[["value", "ci_low", "ci_high"]].mean()
        ax.errorbar(g.index, g["value"], yerr=[g["value"] - g["ci_low"], g["ci_high"] - g["value"]], marker="o", capsize=3, label=label)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set(xscale="log", xlabel="training images N per split", ylabel="KID (unbiased; 0 = one distribution)")
    ax.set_xticks(sizes, [str(int(n)) for n in sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle("Do two models on disjoint data agree more with each other than with the data?")
    return fig


def memorization_time_figure(data: FigureData):
    """When memorization sets in: left, the memorized fraction of the samples (nearest training
    image closer than a third of the second nearest) against the images seen in training, one
    curve per training-set size N, the level and each size's τ_mem marked; middle, τ_mem against
    N in log–log with its 95% bootstrap interval, the least-squares fit and a slope-1 line through
    the data's centre (sizes that never reached the level drawn as lower bounds); right, KID of the
    samples to held-out images against images seen, with τ_gen marked (tables memorization_curve
    and memorization_time)."""
    from .memorization_time import CROSSED, NOT_REACHED, curve_frame

    curves = curve_frame(data.table("memorization_curve"), data.table("runs"))
    t = data.table("memorization_time")
    color, sm = sweep_colors(curves["dataset_size"], data.options["cmap"])
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.8), constrained_layout=True)
    mem, gen = t[t["quantity"] == "tau_mem"].set_index("dataset_size"), t[t["quantity"] == "tau_gen"].set_index("dataset_size")
    for n, c in curves.groupby("dataset_size"):
        g = c.groupby("epoch")[["images_seen", "memorized_fraction", "kid_heldout", "kid_ci_low", "kid_ci_high"]].mean()
        g = g.sort_values("images_seen")
        axes[0].plot(g["images_seen"], g["memorized_fraction"], marker="o", ms=3, color=color(n), label=f"N = {n}")
        axes[2].plot(g["images_seen"], g["kid_heldout"], marker="o", ms=3, color=color(n))
        axes[2].fill_between(g["images_seen"], g["kid_ci_low"], g["kid_ci_high"], color=color(n), alpha=0.15, lw=0)
        if n in mem.index and mem.loc[n, "status"] == CROSSED:
            axes[0].axvline(mem.loc[n, "value"], color=color(n), ls=":", lw=1)
        if n in gen.index:
            axes[2].axvline(gen.loc[n, "value"], color=color(n), ls=":", lw=1)
    level = data.options["memorization_level"]
    axes[0].axhline(level, color="0.3", lw=0.8, ls="--")
    axes[0].set(xscale="log", xlabel="images seen in training", ylabel="memorized fraction of samples", ylim=(-0.03, 1.03),
                title="memorized fraction over training (dotted: τ_mem)")  # fmt: skip
    axes[0].legend(fontsize=8)
    ax = axes[1]
    crossed = mem[mem["status"] == CROSSED]
    ax.errorbar(crossed.index, crossed["value"], yerr=[crossed["value"] - crossed["ci_low"], crossed["ci_high"] - crossed["value"]],
                fmt="o", color="k", capsize=3, label="τ_mem (95% bootstrap)")  # fmt: skip
    lower = mem[mem["status"] == NOT_REACHED]
    if not lower.empty:
        ax.scatter(lower.index, lower["value"], marker="^", facecolors="none", edgecolors="k", label="not reached (τ_mem > last checkpoint)")
    fit = t[t["quantity"] == "exponent_mem"]
    if not fit.empty and len(crossed) >= 2:
        f = fit.iloc[0]
        u = np.log(crossed.index.to_numpy(float))
        v0 = np.log(crossed["value"].to_numpy()).mean()
        xs = np.geomspace(crossed.index.min(), crossed.index.max(), 20)
        ax.plot(xs, np.exp(v0 + f["value"] * (np.log(xs) - u.mean())), color="tab:red",
                label=f"fit: β = {f['value']:.2f} [{f['ci_low']:.2f}, {f['ci_high']:.2f}]")  # fmt: skip
        ax.plot(xs, np.exp(v0 + (np.log(xs) - u.mean())), color="0.5", ls="--", label="slope 1 (τ_mem ∝ N)")
    ax.set(xscale="log", yscale="log", xlabel="training images N", ylabel="τ_mem (images seen)",
           title=f"memorization time (level {level:g})")  # fmt: skip
    sizes = sorted(mem.index)
    ax.set_xticks(sizes, [str(int(n)) for n in sizes])
    ax.xaxis.set_minor_locator(plt.NullLocator())
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, lw=0.5, which="both")
    axes[2].set(xscale="log", xlabel="images seen in training", ylabel="KID to held-out images",
                title="generalization metric (dotted: τ_gen)")  # fmt: skip
    axes[2].axhline(0, color="0.3", lw=0.8)
    colorbar(fig, sm, axes[2], "training images N")
    fig.suptitle("When does memorization set in? (Bonnaire et al. 2025: τ_mem ∝ N)")
    return fig


def teleportation_figure(data: FigureData):
    """Analytical teleportation: distance to the full sampler's sample vs network evaluations saved."""
    o = data.options
    tel = data.table("teleportation")
    runs = last_checkpoints(data.experiment("dataset_size"))
    rows = merge_runs(tel, runs).merge(runs[["run_id"]].drop_duplicates(), on="run_id")
    color, sm = sweep_colors(runs["dataset_size"], o["cmap"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    for n, r in rows.groupby("dataset_size"):
        band(axes[0], r, "nfe_saved", "rmse_to_full", color=color(n), marker="o", ms=3)
        band(axes[1], r, "nfe_saved", "cosine_to_full", color=color(n), marker="o", ms=3)
        band(axes[2], r, "nfe_saved", "memorized_fraction", color=color(n), marker="o", ms=3)
    sampler = rows["sampler"].iloc[0] if "sampler" in rows else ""
    for ax, yl in zip(axes, ("RMSE to the full sample", "cosine to the full sample", "memorized fraction")):
        ax.set(xlabel=f"network evaluations saved (of {int(rows['nfe'].max())}, {sampler})", ylabel=yl)
        if yl == "memorized fraction":
            ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3, lw=0.5)
    colorbar(fig, sm, axes, "training images N")
    fig.suptitle("Analytical teleportation: Gaussian closed form for the first k steps, network for the rest")
    return fig


def _dynamics_rows(data: FigureData, table: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(final checkpoints of the sampler_dynamics runs, their rows of ``table`` with the runs'
    columns, the Gaussian-model rows of their subsets with dataset_size)."""
    runs = last_checkpoints(data.experiment("sampler_dynamics"))
    t = data.table(table)
    net = merge_runs(t, runs)
    base = t[t["run_id"].isin([baseline_keys(s)["run_id"] for s in runs["subset"]])]
    return runs, net, base


RMSE_FLOOR = 1e-6  # step-count RMSE drawn no lower (0 when a sampler lands on the reference's own images)


def step_count_figure(data: FigureData):
    """Why small steps: each column one denoiser from the same latents (the network against a fine
    Heun solve, the Gaussian model against the exact limit of the discretized sampler, the
    empirical-optimal denoiser against a fine Heun solve); top, the mean per-sample RMSE of the
    final samples against network evaluations (solid Euler, dashed Heun, reference slopes 1/NFE
    and 1/NFE² dotted; an RMSE of 0, the same training images as the reference, is drawn at
    10⁻⁶); bottom, the memorized fraction of the samples (table step_count)."""
    runs, net, base = _dynamics_rows(data, "step_count")
    color, sm = sweep_colors(runs["dataset_size"], data.options["cmap"])
    panels = [("network", net[net["reference"] == "fine_heun"], "fine Heun solve"),
              ("gaussian", base[(base["denoiser"] == "gaussian") & (base["reference"] == "exact_limit")], "exact limit"),
              ("empirical", base[(base["denoiser"] == "empirical") & (base["reference"] == "fine_heun")], "fine Heun solve")]  # fmt: skip
    fig, axes = plt.subplots(2, 3, figsize=(16, 8), constrained_layout=True, sharex=True)
    for j, (name, rows, ref) in enumerate(panels):
        for (n, solver), r in rows.groupby(["dataset_size", "solver"]):
            ls = "-" if solver == "euler" else "--"
            r = r.sort_values("nfe")
            band(axes[0, j], r.assign(rmse=r["rmse"].clip(lower=RMSE_FLOOR)), "nfe", "rmse", color=color(n), ls=ls, marker="o", ms=3)
            band(axes[1, j], r, "nfe", "memorized_fraction", color=color(n), ls=ls, marker="o", ms=3)
        if name == "gaussian" and not rows.empty:
            x = np.geomspace(rows["nfe"].min(), rows["nfe"].max(), 10)
            top = rows.loc[rows["nfe"] == rows["nfe"].min(), "rmse"].max()
            axes[0, j].plot(x, top * x[0] / x, color="0.5", ls=":", lw=1, label="∝ 1/NFE")
            axes[0, j].plot(x, top * (x[0] / x) ** 2, color="0.3", ls=":", lw=1, label="∝ 1/NFE²")
            axes[0, j].legend(fontsize=8)
        axes[0, j].set(xscale="log", yscale="log", ylabel=f"RMSE per pixel to the {ref}", title=f"{name} denoiser")
        axes[1, j].set(xscale="log", xlabel="network evaluations (NFE)", ylabel="memorized fraction", ylim=(-0.03, 1.03))
        for i in range(2):
            axes[i, j].grid(alpha=0.3, which="both", lw=0.5)
    colorbar(fig, sm, axes, "training images N (solid: Euler, dashed: Heun)")
    fig.suptitle("Sampling with few steps: error against network evaluations, from the same latents")
    return fig


def posterior_figure(data: FigureData):
    """How multimodal the posterior is: against σ on held-out noisy inputs, per training-set size
    N, the effective number of training images exp(H) of the empirical posterior (median, band
    10–90% of the inputs), the share of the denoising target's second moment that is posterior
    variance (Vastola's proxy-score variance), and the RMS from the network's output to the
    nearest training image (solid) and to the Gaussian model's answer (dashed); untrained σ grey
    (table posterior)."""
    runs, rows, _ = _dynamics_rows(data, "posterior")
    color, sm = sweep_colors(runs["dataset_size"], data.options["cmap"])
    fig, axes = plt.subplots(1, 3, figsize=(16.5, 4.8), constrained_layout=True)
    for n, r in rows.groupby("dataset_size"):
        g = r.groupby("sigma").mean(numeric_only=True).sort_index()
        axes[0].plot(g.index, g["n_eff_q50"], color=color(n))
        axes[0].fill_between(g.index, g["n_eff_q10"], g["n_eff_q90"], color=color(n), alpha=0.15, lw=0)
        axes[1].plot(g.index, g["proxy_fraction"], color=color(n))
        axes[2].plot(g.index, g["network_to_nearest"], color=color(n))
        axes[2].plot(g.index, g["network_to_gaussian"], color=color(n), ls="--")
    sigma_axis(axes[0], "effective number of training images exp(H)")
    axes[0].set_yscale("log")
    sigma_axis(axes[1], "posterior variance / second moment of the target")
    sigma_axis(axes[2], "RMS per pixel from the network's output")
    axes[2].set_yscale("log")
    axes[2].plot([], [], color="0.3", label="to the nearest training image")
    axes[2].plot([], [], color="0.3", ls="--", label="to the Gaussian model's answer")
    axes[2].legend(fontsize=8)
    window = trained_window(runs)
    for ax in axes:
        shade_untrained(ax, window)
    colorbar(fig, sm, axes, "training images N")
    fig.suptitle("The empirical posterior p(y_i | x): how many images it averages, and how noisy the target is")
    return fig


def commitment_figure(data: FigureData):
    """Coarse to fine, per training-set size N (solid: network, dashed: its Gaussian model, the
    same latents and sampler): (a) the share of a trajectory's variance (its per-step denoised
    estimates) in its top principal components; (b) the σ at which each eigenmode's coefficient
    settles within the tolerance of its final value (median over trajectories) against √λ_k,
    with the Gaussian flow's exact line σ = √λ_k·√(1/(1−tol)² − 1) (the measured σ can only be one
    of the sampler's steps); (c) the RMSE between the final
    sample and that of a run perturbed at step t by a fraction of σ_t; (d) the share of samples
    whose nearest training image changes (tables trajectory_dimension, trajectory_modes,
    perturbation)."""
    runs, _, _ = _dynamics_rows(data, "perturbation")
    color, sm = sweep_colors(runs["dataset_size"], data.options["cmap"])
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8), constrained_layout=True)
    specs = [("trajectory_dimension", "components", "variance_fraction", axes[0]),
             ("trajectory_modes", "sqrt_eigenvalue", "settle_sigma", axes[1]),
             ("perturbation", "sigma", "rmse_change", axes[2]), ("perturbation", "sigma", "nn_changed", axes[3])]  # fmt: skip
    for table, x, y, ax in specs:
        _, net, base = _dynamics_rows(data, table)
        for frame, ls, mk in ((net, "-", "o"), (base, "--", "x")):
            for n, r in frame.groupby("dataset_size"):
                band(ax, r.sort_values(x), x, y, color=color(n), ls=ls, marker=mk, ms=3)
    lam = data.table("trajectory_modes")["sqrt_eigenvalue"]
    tol = data.options["settle_tol"]
    line = np.geomspace(lam.min(), lam.max(), 10)
    axes[1].plot(line, line * np.sqrt(1 / (1 - tol) ** 2 - 1), color="0.3", ls=":", label=f"Gaussian flow, exact (tol {tol})")
    axes[1].legend(fontsize=8)
    axes[0].set(xlabel="principal components", ylabel="share of the trajectory's variance", title="trajectory dimension")
    axes[1].set(xscale="log", yscale="log", xlabel="√λ_k of the training set", ylabel="σ at which mode k settles",
                title="large-variance modes commit first")  # fmt: skip
    axes[1].xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    sigma_axis(axes[2], "RMSE of the final sample")
    axes[2].set(yscale="log", title="perturbing x_t by a fraction of σ_t")
    sigma_axis(axes[3], "share of samples with another nearest image")
    axes[3].set(ylim=(-0.03, 1.03), title="content changes only when perturbed early")
    for ax in axes:
        ax.grid(alpha=0.3, which="both", lw=0.5)
    colorbar(fig, sm, axes, "training images N (solid: network, dashed: Gaussian)")
    fig.suptitle("What the sampler commits to when: trajectories, eigenmodes and perturbations")
    return fig


def draw(name: str, data: FigureData, out_png, out_pdf=None) -> None:
    """Draw figure ``name`` of the registry with its drawing function and save PNG (and PDF)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {sorted(FIGURES)}")
    data.figure = FIGURES[name]
    save(globals()[data.figure.draw](data), out_png, out_pdf, dpi=data.options["dpi"])
