"""The plan of a study: its training runs, the checkpoints each experiment evaluates, and the
registry of every table and figure the pipeline makes.

A validated config describes a :class:`Study`; everything Snakemake needs to plan the DAG
(which runs, which evaluations, which files feed which table or figure) is a method here,
so it can be tested without Snakemake. ``workflow/rules/common.smk`` only maps these plans to
paths. This module does no I/O and imports neither torch nor matplotlib: Snakemake imports
it on every invocation, dry runs included.

**Adding a table**: a :class:`Table` record in :data:`TABLES`, the row builder, and the rule
that writes one file per unit (checkpoint, final checkpoint, pair); ``collect_table``
concatenates them. **Adding a figure**: a :class:`Figure` record in :data:`FIGURES` and its
drawing function in :mod:`hiddengauss.figures` (its docstring is the report caption).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from . import splits
from .schedules import PRESETS, log_spaced_epochs, sigma_grid

ARCHS = ("ncsnpp", "ddpmpp", "adm")
# Run id grammar: {arch}_c{model_scale}_{subset}_s{seed}; a strong-generalization pair is its
# S1 run id and the evaluated epoch, {run}_e{epoch}.
RUN_RE = re.compile(
    rf"(?P<arch>{'|'.join(ARCHS)})_c(?P<model_scale>[0-9]+)_(?P<subset>{splits.SUBSET_PATTERN})_s(?P<seed>[0-9]+)"
)
RUN_PATTERN = splits.unnamed(RUN_RE.pattern)
PAIR_PATTERN = rf"{RUN_PATTERN}_e[0-9]+"
DATA_FILES = ("dataset", "evalset")  # the prepared data files: training data, separate evaluation set

# Checkpoints an experiment evaluates of one of its runs (runs.csv column ``checkpoint``).
FINAL, ALL, EARLY_STOP = "final", "all", "early_stop"
# Experiments whose checkpoints only their own tables evaluate (not distillation, denoiser
# distances or the full sample sets every other evaluated checkpoint gets).
OWN_TABLES_ONLY = ("memorization_time", "sampler_dynamics")


@dataclass(frozen=True)
class Run:
    """One training run: backbone, model scale (EDM's model_channels), training subset, seed."""

    arch: str
    model_scale: int
    subset: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.arch}_c{self.model_scale}_{self.subset}_s{self.seed}"

    @property
    def size(self) -> int:
        return splits.parse_subset_id(self.subset)[0]

    @classmethod
    def parse(cls, run_id: str) -> "Run":
        m = RUN_RE.fullmatch(run_id)
        if not m:
            raise ValueError(f"not a run id: {run_id!r} (expected {{arch}}_c{{model_scale}}_n{{size}}[s2]_s{{seed}})")
        return cls(m["arch"], int(m["model_scale"]), m["subset"], int(m["seed"]))

    def keys(self, epoch: int) -> dict:
        """The identifying columns of a checkpoint's rows in every per-checkpoint table."""
        return dict(run_id=self.id, epoch=epoch, arch=self.arch, model_scale=self.model_scale,
                    dataset_size=self.size, subset=self.subset, seed=self.seed)  # fmt: skip


def baseline_keys(subset: str) -> dict:
    """The identifying columns of the Gaussian model's own rows (``run_id = gaussian:<subset>``)."""
    return dict(run_id=f"gaussian:{subset}", epoch=-1, arch="gaussian", model_scale=-1,
                dataset_size=splits.parse_subset_id(subset)[0], subset=subset, seed=-1)  # fmt: skip


# --------------------------------------------------------------------------- the registry

CHECKPOINT, FINAL_CHECKPOINT, PAIR, STUDY = "checkpoint", "final_checkpoint", "pair", "study"
BASELINE = "baseline"  # a unit of a table's Gaussian-model rows: one training subset


@dataclass(frozen=True)
class Table:
    """One tidy table of ``results/{dataset}/tables/``.

    ``granularity``: the unit each file of ``rule`` covers before ``collect_table`` concatenates
    them (checkpoint: every evaluated checkpoint; final_checkpoint: the last one of every run;
    pair: every strong-generalization pair), or ``study`` for a table one rule writes whole.
    ``columns``: the measure columns every file must hold (identifying columns come first).
    ``baseline``: the Gaussian model of every training subset adds rows too (rule
    ``gaussian_<name>``, ``run_id = gaussian:<subset>``; with ``experiment``, of that
    experiment's subsets only). ``experiment``: only that
    experiment's checkpoints (its final ones with granularity final_checkpoint, those it
    evaluates with granularity checkpoint), and the table exists only when that experiment is
    configured.
    """

    name: str
    rule: str
    granularity: str
    columns: tuple[str, ...]
    baseline: bool = False
    experiment: str = ""

    @property
    def collected(self) -> bool:
        return self.granularity != STUDY


TABLES: dict[str, Table] = {t.name: t for t in (
    Table("spectrum", "spectrum_table", STUDY, ("subset", "dataset_size", "k", "eigenvalue")),
    Table("runs", "runs_table", STUDY, ("experiment", "run_id", "arch", "model_scale", "dataset_size", "subset",
                                        "split", "seed", "epoch", "checkpoint", "source", "warmup_images", "p_mean", "p_std",
                                        "images_seen", "n_params", "final_loss")),
    Table("distillation", "distill", CHECKPOINT,
          ("sigma", "method", "fit_rmse", "n_samples", "weight_rel_error", "eigen_diagonal_mae")),
    Table("eigen_diagonal", "distill", CHECKPOINT, ("sigma", "k", "eigenvalue", "shrinkage", "diagonal")),
    # Fig 1 and its claim read the linearity of the dataset_size experiment's final checkpoints
    # only: probing every checkpoint cost 16 s of a 20 s measure job each on 2 cores
    Table("linearity", "linearity", FINAL_CHECKPOINT, ("sigma", "target", "inputs", "a", "alpha", "cosine", "nmse"),
          baseline=True, experiment="dataset_size"),
    Table("denoiser_distances", "measure_denoisers", CHECKPOINT, ("sigma", "pair", "rmse", "rms_mean", "nmse", "r2")),
    Table("generalization", "generalization", CHECKPOINT,
          ("sampler", "n_samples", "gl_score", "memorized_fraction", "mean_nn_distance", "mean_max_cosine", "gaussian_rmse")),
    Table("closed_form_generalization", "sample_closed_forms", FINAL_CHECKPOINT,
          ("model", "sampler", "n_samples", "gl_score", "memorized_fraction", "mean_nn_distance", "mean_max_cosine",
           "gaussian_rmse"), experiment="dataset_size"),
    Table("teleportation", "teleportation", FINAL_CHECKPOINT,
          ("sampler", "total_steps", "skip_steps", "nfe", "nfe_saved", "rmse_to_full", "cosine_to_full", "gl_score",
           "memorized_fraction"), experiment="dataset_size"),
    Table("strong_generalization", "strong_generalization", PAIR,
          ("sampler", "n_samples", "s1_s2_cosine", "s1_s2_rmse", "s1_nn_cosine", "s2_nn_cosine",
           "gaussian_s1_s2_cosine", "network_gaussian_cosine", "s1_s2_centred_cosine",
           "gaussian_s1_s2_centred_cosine", "floor_cosine")),
    # per-item values behind the claims' bootstrap intervals (the same items for every model)
    Table("distance_items", "measure_denoisers", CHECKPOINT, ("sigma", "pair", "item", "rms", "nmse", "r2", "spread")),
    Table("els_calibration", "measure_denoisers", CHECKPOINT, ("sigma", "patch", "r2", "chosen")),
    Table("linearity_items", "linearity", FINAL_CHECKPOINT, ("sigma", "a", "item", "cosine", "nmse"),
          experiment="dataset_size"),
    Table("generalization_items", "generalization", CHECKPOINT, ("sampler", "item", "nn_ratio", "memorized")),
    Table("strong_generalization_items", "strong_generalization", PAIR,
          ("sampler", "item", "s1_s2_cosine", "gaussian_s1_s2_cosine", "floor_cosine")),
    Table("distributions", "distributions", PAIR, ("sampler", "n", "set_a", "set_b", "metric", "value", "ci_low", "ci_high")),
    Table("distribution_contrasts", "distributions", PAIR, ("sampler", "n", "metric", "value", "ci_low", "ci_high")),
    Table("memorization_curve", "memorization_curve", CHECKPOINT,
          ("sampler", "n_samples", "memorized_fraction", "kid_heldout", "kid_ci_low", "kid_ci_high"),
          experiment="memorization_time"),
    Table("memorization_items", "memorization_curve", CHECKPOINT, ("sampler", "item", "nn_ratio", "memorized"),
          experiment="memorization_time"),
    Table("step_count", "step_count", CHECKPOINT,
          ("denoiser", "solver", "steps", "nfe", "n_samples", "reference", "rmse", "gl_score", "memorized_fraction"),
          baseline=True, experiment="sampler_dynamics"),
    Table("posterior", "posterior", CHECKPOINT,
          ("sigma", "n_inputs", "n_images", "n_eff", "n_eff_q10", "n_eff_q50", "n_eff_q90", "proxy_fraction",
           "proxy_fraction_q10", "proxy_fraction_q50", "proxy_fraction_q90", "network_to_nearest", "network_to_gaussian",
           "network_to_empirical", "gaussian_to_nearest"), experiment="sampler_dynamics"),
    Table("trajectory_dimension", "commitment", CHECKPOINT, ("denoiser", "components", "variance_fraction", "q10", "q90"),
          baseline=True, experiment="sampler_dynamics"),
    Table("trajectory_modes", "commitment", CHECKPOINT,
          ("denoiser", "k", "eigenvalue", "sqrt_eigenvalue", "settle_q25", "settle_sigma", "settle_q75"),
          baseline=True, experiment="sampler_dynamics"),
    Table("perturbation", "commitment", CHECKPOINT, ("denoiser", "step", "sigma", "eta", "n_samples", "rmse_change", "nn_changed"),
          baseline=True, experiment="sampler_dynamics"),
    Table("memorization_time", "memorization_time", STUDY,
          ("quantity", "dataset_size", "value", "ci_low", "ci_high", "epochs", "status", "n_sizes", "dropped_replicates"),
          experiment="memorization_time"),
)}  # fmt: skip

CLAIMS_TABLES = ("runs", "distance_items", "linearity_items", "generalization_items", "strong_generalization",
                 "strong_generalization_items", "distribution_contrasts", "memorization_time")  # fmt: skip

# What a figure shows of the stored samples: none, the showcase run (Fig 3), every evaluated
# checkpoint of its experiment, both halves of every strong-generalization pair, or the final
# checkpoints of the dataset_size experiment with their closed-form models' samples.
NO_SAMPLES, SHOWCASE, EXPERIMENT, PAIRS, CLOSED_FORMS = "none", "showcase", "experiment", "pairs", "closed_forms"


@dataclass(frozen=True)
class Figure:
    """One figure of ``results/{dataset}/figures/``.

    Drawn when any of ``experiments`` is configured; the first configured one is the figure's
    experiment (its caption names that experiment's settings). ``draw``: the function of
    :mod:`hiddengauss.figures` that draws it from ``tables`` (``runs`` is always passed) and the
    stored samples of kind ``samples``.
    """

    name: str
    paper: str
    experiments: tuple[str, ...]
    tables: tuple[str, ...]
    samples: str
    draw: str


FIGURES: dict[str, Figure] = {f.name: f for f in (
    Figure("linearity", "Fig 1", ("dataset_size",), ("linearity",), NO_SAMPLES, "linearity_figure"),
    Figure("linear_vs_gaussian", "Fig 2", ("architecture", "dataset_size"), ("denoiser_distances",), NO_SAMPLES,
           "linear_vs_gaussian_figure"),
    Figure("same_noise_samples", "Fig 3", ("architecture", "dataset_size"), (), SHOWCASE, "same_noise_samples_figure"),
    Figure("gaussian_structure", "Figs 4-5", ("dataset_size",), ("spectrum", "distillation", "eigen_diagonal"),
           NO_SAMPLES, "gaussian_structure_figure"),
    Figure("dataset_size", "Fig 6", ("dataset_size",), ("distance_items", "generalization", "generalization_items"), EXPERIMENT,
           "sweep_figure"),
    Figure("model_scale", "Fig 7", ("model_scale",), ("distance_items", "generalization", "generalization_items"), EXPERIMENT,
           "sweep_figure"),
    Figure("training_epochs", "Fig 8", ("training_epochs",), ("distance_items", "generalization", "generalization_items"), EXPERIMENT,
           "sweep_figure"),
    Figure("strong_generalization", "Fig 9", ("strong_generalization",),
           ("strong_generalization", "strong_generalization_items"), PAIRS,
           "strong_generalization_figure"),
    Figure("architectures", "appendix", ("architecture",), ("denoiser_distances",), EXPERIMENT, "architectures_figure"),
    Figure("closed_forms", "issue 18", ("dataset_size", "training_epochs"), ("distance_items", "closed_form_generalization"),
           CLOSED_FORMS, "closed_forms_figure"),
    Figure("distributions", "issue 19", ("strong_generalization",), ("distributions",), NO_SAMPLES, "distributions_figure"),
    Figure("memorization_time", "issue 19", ("memorization_time",), ("memorization_curve", "memorization_time"), NO_SAMPLES,
           "memorization_time_figure"),
    Figure("step_count", "issue 20", ("sampler_dynamics",), ("step_count",), NO_SAMPLES, "step_count_figure"),
    Figure("posterior", "issue 20", ("sampler_dynamics",), ("posterior",), NO_SAMPLES, "posterior_figure"),
    Figure("commitment", "issue 20", ("sampler_dynamics",), ("trajectory_dimension", "trajectory_modes", "perturbation"),
           NO_SAMPLES, "commitment_figure"),
    Figure("teleportation", "Wang & Vastola", ("dataset_size",), ("teleportation",), NO_SAMPLES, "teleportation_figure"),
)}  # fmt: skip


# --------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class Member:
    """A run of an experiment, and which of its checkpoints the experiment evaluates."""

    run: Run
    checkpoints: str  # FINAL | ALL | EARLY_STOP


@dataclass
class Study:
    """What a validated config asks for, independent of Snakemake."""

    config: dict
    name: str = field(init=False)
    nested_sizes: list[int] = field(init=False)
    pair_sizes: list[int] = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        self.name = c["dataset"]["name"]
        exp = c.get("experiments", {})
        nested = set(exp.get("dataset_size", {}).get("sizes", []))
        for key in ("model_scale", "training_epochs", "architecture"):
            if key in exp:
                nested.add(exp[key]["dataset_size"])
        nested |= set(exp.get("memorization_time", {}).get("sizes", []))
        nested |= set(exp.get("sampler_dynamics", {}).get("sizes", []))
        pairs = set(exp.get("strong_generalization", {}).get("sizes", []))
        self.nested_sizes = sorted(nested | pairs)
        self.pair_sizes = sorted(pairs)
        self.experiments = self._experiment_members(exp)
        self.pretrained = dict(c.get("pretrained") or {})
        self._check_pretrained()

    def _check_pretrained(self) -> None:
        """A network trained elsewhere (config ``pretrained``) stands in for a planned run and has
        one checkpoint: it cannot be a member whose every (or early-stopped) checkpoint is read."""
        from .config import ConfigError

        for rid in self.pretrained:
            if rid not in self.runs:
                raise ConfigError(f"config key 'pretrained.{rid}': no experiment plans the run {rid} "
                                  f"(planned runs: {', '.join(sorted(self.runs))})")  # fmt: skip
        for name, members in self.experiments.items():
            for m in members:
                if m.run.id in self.pretrained and m.checkpoints != FINAL:
                    raise ConfigError(f"config key 'pretrained.{m.run.id}': experiment {name} evaluates "
                                      f"{'every' if m.checkpoints == ALL else 'an early-stopped'} checkpoint of its runs, "
                                      "but a network trained elsewhere has only its final one")  # fmt: skip

    def _experiment_members(self, exp: dict) -> dict[str, list[Member]]:
        """Experiment -> its members (run, checkpoints evaluated)."""
        arch = self.config["model"]["arch"]
        seeds = self.config["training"]["seeds"]
        sid = splits.subset_id
        out: dict[str, list[Member]] = {}
        if "dataset_size" in exp:
            e = exp["dataset_size"]
            out["dataset_size"] = [Member(Run(arch, e["model_scale"], sid(n), s), FINAL) for n in e["sizes"] for s in seeds]
        if "model_scale" in exp:
            e = exp["model_scale"]
            out["model_scale"] = [Member(Run(arch, c, sid(e["dataset_size"]), s), FINAL) for c in e["scales"] for s in seeds]
        if "training_epochs" in exp:
            e = exp["training_epochs"]
            out["training_epochs"] = [Member(Run(arch, e["model_scale"], sid(e["dataset_size"]), s), ALL) for s in seeds]
        if "strong_generalization" in exp:
            e = exp["strong_generalization"]
            scale = pair_scales(e)
            both = lambda n, c, which: [Member(Run(arch, c, sid(n, half), s), which)  # noqa: E731
                                        for half in (False, True) for s in seeds]  # fmt: skip
            members = [m for n in e["sizes"] for m in both(n, scale[n], FINAL)]
            smallest = min(e["sizes"])
            if "small_scale" in e:
                members += both(smallest, e["small_scale"], FINAL)
            if "early_stop_epoch" in e:
                members += both(smallest, scale[smallest], EARLY_STOP)
            out["strong_generalization"] = members
        if "architecture" in exp:
            e = exp["architecture"]
            scales = e.get("model_scales", {})  # per-arch widths (EDM's ADM is 192 channels)
            out["architecture"] = [Member(Run(a, scales.get(a, e["model_scale"]), sid(e["dataset_size"]), s), FINAL)
                                   for a in e["archs"] for s in seeds]  # fmt: skip
        if "memorization_time" in exp:
            e = exp["memorization_time"]
            out["memorization_time"] = [Member(Run(arch, e["model_scale"], sid(n), s), ALL) for n in e["sizes"] for s in seeds]
        if "sampler_dynamics" in exp:
            e = exp["sampler_dynamics"]
            out["sampler_dynamics"] = [Member(Run(arch, e["model_scale"], sid(n), s), FINAL) for n in e["sizes"] for s in seeds]
        return out

    # ----------------------------------------------------------------------- runs and checkpoints

    @property
    def runs(self) -> dict[str, Run]:
        """Every distinct training run (a run that two experiments share appears once)."""
        return {m.run.id: m.run for members in self.experiments.values() for m in members}

    def is_pretrained(self, run: Run) -> bool:
        """Whether ``run`` is a network trained elsewhere (config ``pretrained``): imported, not trained."""
        return run.id in self.pretrained

    def trained_runs(self) -> list[str]:
        """Ids of the runs rule ``train`` trains."""
        return sorted(rid for rid, run in self.runs.items() if not self.is_pretrained(run))

    def pretrained_images(self, run: Run) -> int:
        return round(self.pretrained[run.id]["images_seen_kimg"] * 1000)

    def final_epoch(self, run: Run) -> int:
        """The run's last epoch: training.epochs, or duration_kimg over the subset's size; for a
        network trained elsewhere, the images it saw over the size of the subset it stands on."""
        if self.is_pretrained(run):
            return max(1, round(self.pretrained_images(run) / run.size))
        t = self.config["training"]
        if "epochs" in t:
            return int(t["epochs"])
        return max(1, round(t["duration_kimg"] * 1000 / run.size))

    def early_stop_epoch(self, run: Run) -> int | None:
        for m in self.experiments.get("strong_generalization", []):
            if m.run == run and m.checkpoints == EARLY_STOP:
                return min(self.config["experiments"]["strong_generalization"]["early_stop_epoch"], self.final_epoch(run))
        return None

    def checkpoint_epochs(self, run: Run) -> list[int]:
        """The run's checkpoint grid: log-spaced, final epoch and any early-stop epoch included
        (a network trained elsewhere: its one checkpoint)."""
        if self.is_pretrained(run):
            return [self.final_epoch(run)]
        t = self.config["training"]
        extra = list(t["extra_checkpoint_epochs"])
        if self.early_stop_epoch(run):
            extra.append(self.early_stop_epoch(run))
        return log_spaced_epochs(self.final_epoch(run), t["checkpoints"], t["first_checkpoint_epoch"], extra)

    def member_epochs(self, member: Member) -> list[int]:
        """The checkpoints an experiment evaluates of one of its members."""
        if member.checkpoints == ALL:
            return self.checkpoint_epochs(member.run)
        if member.checkpoints == EARLY_STOP:
            return [self.early_stop_epoch(member.run)]
        return [self.final_epoch(member.run)]

    def evaluated_epochs(self, run: Run) -> list[int]:
        """Checkpoints of ``run`` that every per-checkpoint table evaluates: its final one and the
        ones its experiments evaluate, if an experiment other than :data:`OWN_TABLES_ONLY` has it."""
        members = [m for name, ms in self.experiments.items() if name not in OWN_TABLES_ONLY for m in ms if m.run == run]
        if not members:
            return []
        return sorted({self.final_epoch(run)} | {e for m in members for e in self.member_epochs(m)})

    def evaluations(self) -> list[tuple[str, int]]:
        """Every (run id, epoch) the analysis evaluates."""
        return [(rid, e) for rid, run in sorted(self.runs.items()) for e in self.evaluated_epochs(run)]

    def experiment_evaluations(self, name: str) -> list[tuple[Run, int]]:
        """(run, epoch) of every checkpoint an experiment evaluates, in the experiment's order."""
        return list(dict.fromkeys((m.run, e) for m in self.experiments[name] for e in self.member_epochs(m)))

    def network_settings(self, arch: str) -> dict:
        """channel_mult, num_blocks and attn_resolutions of ``arch``'s runs: the model section's,
        overridden by ``model.per_arch[arch]``."""
        m = self.config["model"]
        keys = ("channel_mult", "num_blocks", "attn_resolutions")
        return {k: m.get("per_arch", {}).get(arch, {}).get(k, m[k]) for k in keys}

    def train_spec(self, run: Run) -> dict:
        """Every value that determines a training run's weights (rule train's params)."""
        m, t = self.config["model"], self.config["training"]
        return dict(
            arch=run.arch, model_scale=run.model_scale, **self.network_settings(run.arch),
            dropout=m["dropout"], sigma_data=m["sigma_data"],
            epochs=self.final_epoch(run), checkpoint_epochs=self.checkpoint_epochs(run), batch_size=t["batch_size"],
            lr=t["lr"], warmup_fraction=t["warmup_fraction"], ema_halflife_fraction=t["ema_halflife_fraction"],
            ema_rampup_ratio=t["ema_rampup_ratio"], p_mean=t["p_mean"], p_std=t["p_std"], augment_p=t["augment_p"],
            seed=run.seed,
        )  # fmt: skip

    def pretrained_plan(self, run: Run) -> dict:
        """Rule import_network's params: the file's format, the network it must be (arch and
        width from the run id; a plain state dict's other widths from the model section), its
        checkpoint epoch and images seen, and the training σ distribution it must have used."""
        e, m = self.pretrained[run.id], self.config["model"]
        network = dict(arch=run.arch, model_channels=run.model_scale, **self.network_settings(run.arch), sigma_data=m["sigma_data"])
        return dict(format=e["format"], key=e["key"], precond=e["precond"], epoch=self.final_epoch(run),
                    images_seen=self.pretrained_images(run), expect=dict(arch=run.arch, model_channels=run.model_scale),
                    network=network, p_mean=e["p_mean"], p_std=e["p_std"])  # fmt: skip

    def experiment_rows(self) -> list[dict]:
        """One row per experiment × evaluated checkpoint (runs.csv without the checkpoint metadata);
        a run shared by two experiments appears under both. ``warmup_images`` (the learning-rate
        warm-up, warmup_fraction × the run's images, as training.learning_rate), ``p_mean`` and
        ``p_std`` (its training σ distribution) let the claims leave out warm-up checkpoints and
        untrained noise levels."""
        t = self.config["training"]
        rows = []
        for name, members in self.experiments.items():
            for m in members:
                warmup = t["warmup_fraction"] * self.final_epoch(m.run) * m.run.size
                sigmas = {k: t[k] for k in ("p_mean", "p_std")}
                if self.is_pretrained(m.run):  # its own ramp-up and σ distribution (config pretrained)
                    e = self.pretrained[m.run.id]
                    warmup, sigmas = e["warmup_kimg"] * 1000, {k: e[k] for k in ("p_mean", "p_std")}
                for ep in self.member_epochs(m):
                    ident = {k: v for k, v in m.run.keys(ep).items() if k not in ("epoch", "seed")}
                    rows.append({"experiment": name, **ident, "split": m.run.subset, "seed": m.run.seed, "epoch": ep,
                                 "checkpoint": m.checkpoints, "source": "pretrained" if self.is_pretrained(m.run) else "trained",
                                 "warmup_images": warmup, **sigmas})  # fmt: skip
        return rows

    # ----------------------------------------------------------------------- pairs

    def pairs(self) -> list[dict]:
        """Strong-generalization pairs: {pair_id, s1, s2 (run ids), epoch, kind, dataset_size, model_scale}."""
        out = {}
        small = self.config["experiments"].get("strong_generalization", {}).get("small_scale")
        for m in self.experiments.get("strong_generalization", []):
            r = m.run
            if splits.parse_subset_id(r.subset)[1]:
                continue
            twin = Run(r.arch, r.model_scale, splits.subset_id(r.size, second=True), r.seed)
            (epoch,) = self.member_epochs(m)  # the early-stop or the final epoch
            kind = EARLY_STOP if m.checkpoints == EARLY_STOP else ("small_scale" if r.model_scale == small else "full")
            pid = f"{r.id}_e{epoch}"
            out[pid] = {"pair_id": pid, "s1": r.id, "s2": twin.id, "epoch": epoch, "kind": kind,
                        "dataset_size": r.size, "model_scale": r.model_scale}  # fmt: skip
        return list(out.values())

    def pair(self, pair_id: str) -> dict:
        for p in self.pairs():
            if p["pair_id"] == pair_id:
                return p
        raise KeyError(f"no strong-generalization pair {pair_id!r} in this study")

    # ----------------------------------------------------------------------- data and splits

    @property
    def external_evaluation(self) -> bool:
        return "dataset" in self.config["evaluation"]

    @property
    def held_out(self) -> int:
        """Images held out of the training data set (0 with a separate evaluation set)."""
        return 0 if self.external_evaluation else self.config["evaluation"]["size"]

    @property
    def training_subsets(self) -> list[str]:
        ids = [splits.subset_id(n) for n in self.nested_sizes]
        return ids + [splits.subset_id(n, second=True) for n in self.pair_sizes]

    def data_sections(self) -> list[tuple[str, str]]:
        """(prepared data file, its config key) of every data source the study reads."""
        return [("dataset", "dataset")] + ([("evalset", "evaluation.dataset")] if self.external_evaluation else [])

    def data_source(self, data_file: str) -> dict:
        """The config section that describes a prepared data file (``dataset`` or ``evalset``)."""
        return self.config["dataset"] if data_file == "dataset" else self.config["evaluation"]["dataset"]

    def split_data_file(self, split: str) -> str:
        """The data file a split indexes: held-out images may come from a separate evaluation set."""
        return "evalset" if split == splits.HELD_OUT and self.external_evaluation else "dataset"

    def split_plan(self, split: str) -> dict:
        """How split ``split`` is drawn (rule split_dataset's params): the seed, the images held
        out of the permutation, and whether it indexes the separate evaluation set."""
        external = split == splits.HELD_OUT and self.external_evaluation
        held_out = self.config["evaluation"]["size"] if split == splits.HELD_OUT else self.held_out
        return dict(seed=self.config["splits"]["seed"], held_out=held_out, external=external)

    def analysis_split(self, subset: str) -> str:
        """The split whose images y make the noisy evaluation inputs y + σn of a model of ``subset``."""
        return splits.HELD_OUT if self.config["analysis"]["inputs"] == "heldout" else subset

    def check_counts(self, n_dataset: int | None, n_evalset: int | None = None) -> None:
        """Raise SplitError (with both numbers) if a requested size exceeds the data.

        Counts that are unknown (None) are checked later, when the split job runs.
        """
        if n_dataset is not None:
            where = f"dataset '{self.name}'"
            splits.check_sizes(n_dataset, self.held_out, self.nested_sizes, self.pair_sizes, where)
        if self.external_evaluation and n_evalset is not None:
            size = self.config["evaluation"]["size"]
            if size > n_evalset:
                raise splits.SplitError(
                    f"evaluation.size {size} is larger than the {n_evalset} images of the evaluation data set"
                )

    # ----------------------------------------------------------------------- samplers

    def linear_samplers(self) -> list[str]:
        """The configured samplers the distilled linear model can run: its maps exist only at the
        σ's of ``analysis.sigmas``, and only if W is stored (``analysis.distill.store``)."""
        a = self.config["analysis"]
        if a["distill"]["store"] == "none":
            return []
        fitted = sigma_grid(a["sigmas"])
        runs = lambda name: all(np.isclose(fitted, v).any() for v in PRESETS[name].sigmas()[:-1])  # noqa: E731
        return [n for n in self.config["sampling"]["samplers"] if runs(n)]

    # ----------------------------------------------------------------------- tables and figures

    def tables(self) -> list[Table]:
        """The tables this study makes (strong_generalization needs S1/S2 pairs; a table of one
        experiment needs that experiment; closed_form_generalization needs a closed-form model;
        the tables of every evaluated checkpoint need one, beyond :data:`OWN_TABLES_ONLY`)."""
        evaluated = bool(self.evaluations())
        wanted = lambda t: ((t.granularity != PAIR or self.pairs()) and (not t.experiment or t.experiment in self.experiments)
                            and (t.rule != "sample_closed_forms" or self.closed_form_models())
                            and (t.granularity != CHECKPOINT or t.experiment or evaluated))  # noqa: E731  # fmt: skip
        return [t for t in TABLES.values() if wanted(t)]

    def table_units(self, name: str) -> list[tuple[str, dict]]:
        """(unit kind, identifying columns) of every file ``collect_table`` concatenates into table
        ``name``: kind ``checkpoint`` (keys run_id, epoch, …), ``baseline`` (keys of the subset's
        Gaussian model, see :func:`baseline_keys`) or ``pair`` (the pair's record)."""
        table = TABLES[name]
        if table.granularity == PAIR:
            return [(PAIR, p) for p in self.pairs()]
        if table.granularity == FINAL_CHECKPOINT:
            runs = {m.run.id: m.run for m in self.experiments[table.experiment]} if table.experiment else self.runs
            evals = [(rid, self.final_epoch(run)) for rid, run in sorted(runs.items())]
        elif table.granularity == CHECKPOINT and table.experiment:
            evals = [(run.id, e) for run, e in self.experiment_evaluations(table.experiment)]
        elif table.granularity == CHECKPOINT:
            evals = self.evaluations()
        else:
            raise ValueError(f"table {name!r} is written whole by rule {table.rule}, not collected")
        units = [(CHECKPOINT, Run.parse(rid).keys(epoch)) for rid, epoch in evals]
        if table.baseline:
            subsets = self.training_subsets
            if table.experiment:
                subsets = [s for s in subsets if s in {Run.parse(rid).subset for rid, _ in evals}]
            units += [(BASELINE, baseline_keys(s)) for s in subsets]
        return units

    def figures(self) -> list[str]:
        """The figures the configured experiments can draw."""
        return sorted(n for n, f in FIGURES.items() if any(e in self.experiments for e in f.experiments))

    def figure_experiment(self, name: str) -> str:
        """The experiment a figure shows: the first of its experiments that is configured."""
        return next(e for e in FIGURES[name].experiments if e in self.experiments)

    def showcase(self) -> tuple[Run, int]:
        """The run of the same-noise figure (Fig 3): the architecture experiment's first
        architecture, else the largest training set of the dataset-size experiment."""
        if "architecture" in self.experiments:
            run = self.experiments["architecture"][0].run
        else:
            run = max((m.run for m in self.experiments["dataset_size"]), key=lambda r: r.size)
        return run, self.final_epoch(run)

    def figure_options(self, name: str) -> dict:
        """The drawing options of a figure: the ``figures`` config section, the experiment it shows
        (:meth:`figure_experiment`) and, for the showcase figure (Fig 3), the (run id, epoch)
        :meth:`showcase` chose; the memorization-time figure, the level τ_mem crosses; the
        commitment figure, the settling tolerance."""
        options = {**self.config["figures"], "experiment": self.figure_experiment(name)}
        if FIGURES[name].samples == SHOWCASE:
            run, epoch = self.showcase()
            options["showcase"] = [run.id, epoch]
        if name == "memorization_time":
            options["memorization_level"] = self.config["experiments"]["memorization_time"]["level"]
        if name == "commitment":
            options["settle_tol"] = self.config["experiments"]["sampler_dynamics"]["settle_tol"]
        return options

    def figure_subsets(self, name: str) -> list[str]:
        """The training subsets of the checkpoints whose samples a figure shows (sorted)."""
        return sorted({run.subset for run, _ in self.figure_samples(name)})

    def claims_tables(self) -> list[str]:
        """The tables the claims are computed from that this study makes."""
        made = {t.name for t in self.tables()}
        return [t for t in CLAIMS_TABLES if t in made]

    def figure_samples(self, name: str) -> list[tuple[Run, int]]:
        """The (run, epoch) checkpoints whose stored samples a figure shows."""
        kind = FIGURES[name].samples
        if kind == SHOWCASE:
            return [self.showcase()]
        if kind == EXPERIMENT:
            return self.experiment_evaluations(self.figure_experiment(name))
        if kind == PAIRS:
            return [(Run.parse(p[half]), p["epoch"]) for p in self.pairs() for half in ("s1", "s2")]
        if kind == CLOSED_FORMS and "closed_form_generalization" in {t.name for t in self.tables()}:
            return [(Run.parse(k["run_id"]), k["epoch"]) for _, k in self.table_units("closed_form_generalization")]
        return []

    def closed_form_models(self) -> list[str]:
        """The closed-form models of config ``baselines`` (empty: none is compared or sampled)."""
        return list(self.config.get("baselines", {}).get("models", []))


def pair_scales(section: dict) -> dict[int, int]:
    """experiments.strong_generalization: size -> model scale (``model_scale`` is one scale for
    every size, or a list with one scale per entry of ``sizes``)."""
    scale = section["model_scale"]
    return dict(zip(section["sizes"], scale)) if isinstance(scale, list) else dict.fromkeys(section["sizes"], scale)
