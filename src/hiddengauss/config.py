"""Configuration: schema validation with readable errors, defaults, and the study it describes."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
import yaml

from . import splits as splits_mod

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _resolve(schema: dict, root: dict) -> dict:
    """Inline a local ``$ref`` (merging sibling keywords such as ``required``)."""
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $ref supported, got {ref}")
        target = root
        for part in ref[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _describe(error: jsonschema.ValidationError, root: dict) -> str:
    key = _key(error.absolute_path)
    schema = _resolve(error.schema, root) if isinstance(error.schema, dict) else {}
    v = error.validator
    if v == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        where = f"under '{key}'" if error.absolute_path else "at the top level"
        return f"unknown config key {', '.join(repr(e) for e in extra)} {where} (allowed: {', '.join(allowed)})"
    if v == "type":
        return f"config key '{key}': {error.instance!r} is not of type {error.validator_value!r}"
    if v == "enum":
        return f"config key '{key}': {error.instance!r} is not one of the allowed values {error.validator_value}"
    if v in ("minimum", "exclusiveMinimum"):
        return f"config key '{key}': {error.instance!r} is out of range (minimum {error.validator_value})"
    if v in ("maximum", "exclusiveMaximum"):
        return f"config key '{key}': {error.instance!r} is out of range (maximum {error.validator_value})"
    if v == "required":
        return f"config key '{key}': {error.message}"
    if v == "minItems":
        return f"config key '{key}': the list must not be empty (at least {error.validator_value} item)"
    if v in ("oneOf", "anyOf"):  # name each accepted form, and why the value fits none
        reasons = "; ".join(dict.fromkeys(_describe(c, root).split(": ", 1)[-1] for c in error.context))
        return f"config key '{key}': {error.instance!r} is neither of the accepted forms ({schema.get('description', '')}): {reasons}"
    if v == "uniqueItems":
        return f"config key '{key}': the list {error.instance!r} has repeated values"
    return f"config key '{key}': {error.message}"


def _fill_defaults(instance: dict, schema: dict, root: dict) -> None:
    schema = _resolve(schema, root)
    for name, sub in schema.get("properties", {}).items():
        sub = _resolve(sub, root)
        if name not in instance and "default" in sub:
            instance[name] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(name), dict):
            _fill_defaults(instance[name], sub, root)


def validate_config(config: dict, schema: dict | None = None, schema_path: str | Path | None = None) -> dict:
    """Validate ``config`` against the schema and return a copy with defaults filled in.

    Raises ConfigError listing every problem, each naming its key.
    """
    schema = schema or load_schema(schema_path or SCHEMA_PATH)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    if errors:
        lines = [_describe(e, schema) for e in errors]
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(dict.fromkeys(lines)))
    out = copy.deepcopy(config)
    _fill_defaults(out, schema, schema)
    _check_cross_keys(out)
    return out


def _check_cross_keys(config: dict) -> None:
    """Constraints the schema cannot state: values that must match another key or a library."""
    fig = config.get("figures", {})
    alphas = config.get("analysis", {}).get("alphas", [])
    if "a" in fig and alphas and not any(abs(fig["a"] - a) < 1e-9 for a in alphas):
        raise ConfigError(f"config key 'figures.a': {fig['a']} is not one of analysis.alphas {alphas}")
    sg = config.get("experiments", {}).get("strong_generalization", {})
    if isinstance(sg.get("model_scale"), list) and len(sg["model_scale"]) != len(sg["sizes"]):
        raise ConfigError(f"config key 'experiments.strong_generalization.model_scale': {sg['model_scale']} needs one "
                          f"scale per entry of sizes {sg['sizes']} (or a single integer)")  # fmt: skip
    if "cmap" in fig:
        import matplotlib

        if fig["cmap"] not in matplotlib.colormaps:
            raise ConfigError(f"config key 'figures.cmap': unknown matplotlib colormap {fig['cmap']!r} (e.g. viridis, magma, cividis)")


RUN_PATTERN = r"(?:ncsnpp|ddpmpp|adm)_c[0-9]+_n[0-9]+(?:s2)?_s[0-9]+"


@dataclass(frozen=True)
class Run:
    """One training run: backbone, model scale (model_channels), training subset, seed."""

    arch: str
    scale: int
    subset: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.arch}_c{self.scale}_{self.subset}_s{self.seed}"

    @property
    def size(self) -> int:
        return splits_mod.parse_subset_id(self.subset)[0]

    @classmethod
    def parse(cls, run_id: str) -> "Run":
        arch, scale, subset, seed = run_id.split("_")
        return cls(arch, int(scale[1:]), subset, int(seed[1:]))


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
        pairs = set(exp.get("strong_generalization", {}).get("sizes", []))
        self.nested_sizes = sorted(nested | pairs)
        self.pair_sizes = sorted(pairs)
        self.experiments = self._experiment_runs(exp)
        a = c.get("analysis", {})
        if a.get("inputs", "heldout") == "heldout" and "n_pairs" in a and 2 * a["n_pairs"] > c["evaluation"]["size"]:
            raise ConfigError(
                f"config key 'analysis.n_pairs': {a['n_pairs']} pairs need {2 * a['n_pairs']} held-out images, "
                f"but evaluation.size is {c['evaluation']['size']}"
            )

    def _experiment_runs(self, exp: dict) -> dict[str, list[tuple[Run, str]]]:
        """Experiment -> [(run, which checkpoints: 'final' | 'all' | 'early_stop')]."""
        arch = self.config["model"]["arch"]
        seeds = self.config["training"]["seeds"]
        sid = splits_mod.subset_id
        out: dict[str, list[tuple[Run, str]]] = {}
        if "dataset_size" in exp:
            e = exp["dataset_size"]
            out["dataset_size"] = [(Run(arch, e["model_scale"], sid(n), s), "final") for n in e["sizes"] for s in seeds]
        if "model_scale" in exp:
            e = exp["model_scale"]
            out["model_scale"] = [(Run(arch, c, sid(e["dataset_size"]), s), "final") for c in e["scales"] for s in seeds]
        if "training_epochs" in exp:
            e = exp["training_epochs"]
            out["training_epochs"] = [(Run(arch, e["model_scale"], sid(e["dataset_size"]), s), "all") for s in seeds]
        if "strong_generalization" in exp:
            e = exp["strong_generalization"]
            scale = pair_scales(e)
            runs = [(Run(arch, scale[n], sid(n, half), s), "final")
                    for n in e["sizes"] for half in (False, True) for s in seeds]  # fmt: skip
            smallest = min(e["sizes"])
            if "small_scale" in e:
                runs += [(Run(arch, e["small_scale"], sid(smallest, half), s), "final") for half in (False, True) for s in seeds]
            if "early_stop_epoch" in e:
                runs += [(Run(arch, scale[smallest], sid(smallest, half), s), "early_stop") for half in (False, True) for s in seeds]
            out["strong_generalization"] = runs
        if "architecture" in exp:
            e = exp["architecture"]
            out["architecture"] = [(Run(a, e["model_scale"], sid(e["dataset_size"]), s), "final") for a in e["archs"] for s in seeds]
        return out

    @property
    def runs(self) -> dict[str, Run]:
        """Every distinct training run (a run that two experiments share appears once)."""
        return {r.id: r for rows in self.experiments.values() for r, _ in rows}

    def final_epoch(self, run: Run) -> int:
        t = self.config["training"]
        if "epochs" in t:
            return int(t["epochs"])
        return max(1, round(t["duration_kimg"] * 1000 / run.size))

    def early_stop_epoch(self, run: Run) -> int | None:
        for r, which in self.experiments.get("strong_generalization", []):
            if r == run and which == "early_stop":
                return min(self.config["experiments"]["strong_generalization"]["early_stop_epoch"], self.final_epoch(run))
        return None

    def checkpoint_epochs(self, run: Run) -> list[int]:
        """The run's checkpoint grid: log-spaced, final epoch and any early-stop epoch included."""
        from .schedules import log_spaced_epochs

        t = self.config["training"]
        extra = list(t["extra_checkpoint_epochs"])
        if self.early_stop_epoch(run):
            extra.append(self.early_stop_epoch(run))
        return log_spaced_epochs(self.final_epoch(run), t["checkpoints"], t["first_checkpoint_epoch"], extra)

    def member_epochs(self, run: Run, which: str) -> list[int]:
        """The checkpoints an experiment evaluates of one of its runs ('final' | 'all' | 'early_stop')."""
        if which == "all":
            return self.checkpoint_epochs(run)
        if which == "early_stop":
            return [self.early_stop_epoch(run)]
        return [self.final_epoch(run)]

    def evaluated_epochs(self, run: Run) -> list[int]:
        """Checkpoints of ``run`` that the analysis evaluates."""
        epochs = {self.final_epoch(run)}
        for rows in self.experiments.values():
            epochs.update(e for r, which in rows if r == run for e in self.member_epochs(r, which))
        return sorted(epochs)

    def pairs(self) -> list[dict]:
        """Strong-generalization pairs: {pair_id, s1, s2 (run ids), epoch, kind}."""
        out = {}
        for r, which in self.experiments.get("strong_generalization", []):
            if r.subset.endswith("s2"):
                continue
            twin = Run(r.arch, r.scale, r.subset + "s2", r.seed)
            epoch = self.early_stop_epoch(r) if which == "early_stop" else self.final_epoch(r)
            small = self.config["experiments"]["strong_generalization"].get("small_scale")
            kind = "early_stop" if which == "early_stop" else ("small_scale" if r.scale == small else "full")
            pid = f"{r.arch}_c{r.scale}_{r.subset}_s{r.seed}_e{epoch}"
            out[pid] = {"pair_id": pid, "s1": r.id, "s2": twin.id, "epoch": epoch, "kind": kind,
                        "dataset_size": r.size, "model_scale": r.scale}  # fmt: skip
        return list(out.values())

    def experiment_rows(self) -> list[dict]:
        """One row per experiment × evaluated checkpoint (runs.csv without the checkpoint metadata);
        a run shared by two experiments appears under both."""
        rows = []
        for name, members in self.experiments.items():
            for run, which in members:
                for e in self.member_epochs(run, which):
                    rows.append(dict(experiment=name, run_id=run.id, arch=run.arch, model_scale=run.scale,
                                     dataset_size=run.size, subset=run.subset, split=run.subset, seed=run.seed,
                                     epoch=e, checkpoint=which))  # fmt: skip
        return rows

    def figures(self) -> list[str]:
        """The figures of outputs.md that the configured experiments can draw."""
        exp = self.experiments
        need = {"linearity": ["dataset_size"], "gaussian_structure": ["dataset_size"], "dataset_size": ["dataset_size"],
                "model_scale": ["model_scale"], "training_epochs": ["training_epochs"], "teleportation": ["dataset_size"],
                "strong_generalization": ["strong_generalization"], "architectures": ["architecture"]}  # fmt: skip
        out = [n for n, keys in need.items() if all(k in exp for k in keys)]
        if "architecture" in exp or "dataset_size" in exp:
            out += ["linear_vs_gaussian", "same_noise_samples"]
        return sorted(out)

    def experiment_evaluations(self, name: str, final_only: bool = True) -> list[tuple[Run, int]]:
        """(run, epoch) pairs of an experiment as the figures use them."""
        out = [(run, e) for run, which in self.experiments[name] for e in self.member_epochs(run, which)
               if not final_only or e == self.final_epoch(run)]  # fmt: skip
        return list(dict.fromkeys(out))

    def showcase(self) -> tuple[Run, int]:
        """The run of the same-noise figure (Fig 3): the architecture experiment's first
        architecture, else the largest training set of the dataset-size experiment."""
        if "architecture" in self.experiments:
            run = self.experiments["architecture"][0][0]
        else:
            run = max((r for r, _ in self.experiments["dataset_size"]), key=lambda r: r.size)
        return run, self.final_epoch(run)

    def evaluations(self) -> list[tuple[str, int]]:
        """Every (run id, epoch) the analysis evaluates."""
        return [(rid, e) for rid, run in sorted(self.runs.items()) for e in self.evaluated_epochs(run)]

    @property
    def external_evaluation(self) -> bool:
        return "dataset" in self.config["evaluation"]

    @property
    def held_out(self) -> int:
        """Images held out of the training data set (0 with a separate evaluation set)."""
        return 0 if self.external_evaluation else self.config["evaluation"]["size"]

    @property
    def training_subsets(self) -> list[str]:
        ids = [splits_mod.subset_id(n) for n in self.nested_sizes]
        return ids + [splits_mod.subset_id(n, second=True) for n in self.pair_sizes]

    def check_counts(self, n_dataset: int | None, n_evalset: int | None = None) -> None:
        """Raise SplitError (with both numbers) if a requested size exceeds the data.

        Counts that are unknown (None) are checked later, when the split job runs.
        """
        if n_dataset is not None:
            where = f"dataset '{self.name}'"
            splits_mod.check_sizes(n_dataset, self.held_out, self.nested_sizes, self.pair_sizes, where)
        if self.external_evaluation and n_evalset is not None:
            size = self.config["evaluation"]["size"]
            if size > n_evalset:
                raise splits_mod.SplitError(
                    f"evaluation.size {size} is larger than the {n_evalset} images of the evaluation data set"
                )


def pair_scales(section: dict) -> dict[int, int]:
    """experiments.strong_generalization: size -> model scale (``model_scale`` is one scale for
    every size, or a list with one scale per entry of ``sizes``)."""
    scale = section["model_scale"]
    return dict(zip(section["sizes"], scale)) if isinstance(scale, list) else dict.fromkeys(section["sizes"], scale)


def available_count(spec: dict | None, prepared_h5: str | Path) -> int | None:
    """Number of images a data source provides, cheaply, for planning-time checks.

    Reads the prepared HDF5 file when it exists, else counts the source without decoding
    images. None when unknown (a missing source is reported by the job that reads it).
    """
    if spec is None:
        return None
    from .data import count_source_images, read_attrs

    if Path(prepared_h5).exists():
        return int(read_attrs(prepared_h5)["count"])
    return count_source_images(spec)
