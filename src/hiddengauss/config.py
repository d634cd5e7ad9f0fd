"""Configuration: schema validation with readable errors, command-line strings converted to the
schema's types, and defaults filled in from the schema (the only place defaults live)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

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
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):  # a mapping of named entries (config pretrained): each one's defaults
        for name, value in instance.items():
            if name not in schema.get("properties", {}) and isinstance(value, dict):
                _fill_defaults(value, extra, root)


_JSON_TYPES = {"integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
               "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
               "boolean": lambda v: isinstance(v, bool), "array": lambda v: isinstance(v, list),
               "object": lambda v: isinstance(v, dict), "null": lambda v: v is None}  # fmt: skip


def coerce_strings(value, schema: dict, root: dict):
    """``value`` with every string converted to the type the schema asks for at its place.

    Snakemake hands nested ``--config`` values over as strings (``--config training='{"lr":
    0.5}'`` gives ``{'lr': '0.5'}``). A string where the schema wants a number, an integer, a
    boolean, a list or a mapping is read as an int, a float (for numbers) or YAML, and kept only
    if it then has that type (an integer must be an int, stricter than JSON Schema's 2.0); a string
    that does not convert stays a string, so validation refuses it naming the key.
    """
    schema = _resolve(schema, root) if isinstance(schema, dict) else {}
    for key in ("oneOf", "anyOf"):
        if key in schema:
            for branch in schema[key]:
                converted = coerce_strings(value, branch, root)
                if jsonschema.Draft202012Validator(_resolve(branch, root) | {"$defs": root.get("$defs", {})}).is_valid(converted):
                    return converted
            return value
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties")
        extra = extra if isinstance(extra, dict) else None
        return {k: coerce_strings(v, props[k], root) if k in props else coerce_strings(v, extra, root) if extra else v
                for k, v in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [coerce_strings(v, schema.get("items", {}), root) for v in value]
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if not isinstance(value, str) or not types or "string" in types:
        return value
    fits = lambda v: any(_JSON_TYPES[t](v) for t in types)  # noqa: E731
    readers = [int, float] if {"integer", "number"} & set(types) else []  # Snakemake's order: YAML 1.1 keeps '2e-4' a string
    for read in readers + [yaml.safe_load]:
        try:
            parsed = read(value)
        except (ValueError, yaml.YAMLError):
            continue
        if fits(parsed):
            return coerce_strings(parsed, schema, root) if isinstance(parsed, (dict, list)) else parsed
    return value


def validate_config(config: dict, schema: dict | None = None, schema_path: str | Path | None = None) -> dict:
    """Validate ``config`` against the schema and return a copy with command-line strings
    converted (:func:`coerce_strings`), experiments set to null removed (a named config file is
    merged over config/config.yaml, so null is how it skips one of the default's experiments),
    and defaults filled in.

    Raises ConfigError listing every problem, each naming its key.
    """
    schema = schema or load_schema(schema_path or SCHEMA_PATH)
    config = coerce_strings(config, schema, schema)
    if isinstance(config.get("experiments"), dict):  # null skips an experiment a merged config file has
        config = {**config, "experiments": {k: v for k, v in config["experiments"].items() if v is not None}}
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
    a, ev = config.get("analysis", {}), config.get("evaluation", {})
    if a.get("inputs") == "heldout" and "n_pairs" in a and "size" in ev and 2 * a["n_pairs"] > ev["size"]:
        raise ConfigError(f"config key 'analysis.n_pairs': {a['n_pairs']} pairs need {2 * a['n_pairs']} held-out images, "
                          f"but evaluation.size is {ev['size']}")  # fmt: skip
    dist, samplers = config.get("distributions", {}), config.get("sampling", {}).get("samplers", [])
    if "distributions" in config and "sampler" not in dist and samplers:
        dist["sampler"] = "heun18" if "heun18" in samplers else samplers[0]
    if "sampler" in dist and samplers and dist["sampler"] not in samplers:
        raise ConfigError(f"config key 'distributions.sampler': {dist['sampler']!r} is not one of sampling.samplers {samplers}")
    if "cmap" in fig:
        import matplotlib

        if fig["cmap"] not in matplotlib.colormaps:
            raise ConfigError(f"config key 'figures.cmap': unknown matplotlib colormap {fig['cmap']!r} (e.g. viridis, magma, cividis)")
