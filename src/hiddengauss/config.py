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
    return out


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
