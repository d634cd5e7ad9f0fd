"""Config schema: bad values stop the run with a message naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from hiddengauss.config import ConfigError, validate_config
from hiddengauss.study import Study

ROOT = Path(__file__).resolve().parents[1]


def base():
    return {"dataset": {"name": "digits", "source": "digits"}, "experiments": {"dataset_size": {"sizes": [8, 16], "model_scale": 4}}}


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")))
def test_shipped_configs_validate(path):
    """Each as `--configfile` gives it: merged over config/config.yaml (the Snakefile's own)."""
    from snakemake.utils import update_config

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load(path.read_text()))
    Study(validate_config(cfg))


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")))
def test_shipped_configs_do_not_depend_on_the_development_data(path):
    """Users do not have ../shared: no value of a shipped config may point into it."""

    def strings(v):
        if isinstance(v, dict):
            return [s for x in v.values() for s in strings(x)]
        if isinstance(v, list):
            return [s for x in v for s in strings(x)]
        return [v] if isinstance(v, str) else []

    assert not [v for v in strings(yaml.safe_load(path.read_text())) if "shared" in v], path


def test_defaults_filled():
    cfg = validate_config(base())
    assert cfg["splits"]["seed"] == 0
    assert cfg["evaluation"]["size"] == 256
    assert cfg["dataset"]["skip_bad_images"] is False


def edit(path, value):
    cfg = copy.deepcopy(base())
    node = cfg
    for k in path[:-1]:
        node = node.setdefault(k, {})
    node[path[-1]] = value
    return cfg


@pytest.mark.parametrize(
    "path,value,pattern",
    [
        (["splits", "seed"], "zero", r"'splits.seed': 'zero' is not of type 'integer'"),
        (["splits", "seed"], -1, r"'splits.seed': -1 is out of range \(minimum 0\)"),
        (["splits", "sead"], 1, r"unknown config key 'sead' under 'splits' \(allowed: seed\)"),
        (["bogus"], 1, r"unknown config key 'bogus' at the top level"),
        (["dataset", "source"], "imagenet", r"'dataset.source': 'imagenet' is not one of the allowed values \['digits'"),
        (["experiments", "dataset_size", "sizes"], [], r"'experiments.dataset_size.sizes': the list must not be empty"),
        (["experiments", "dataset_size", "sizes"], [0, 8], r"'experiments.dataset_size.sizes.0': 0 is out of range"),
        (["experiments", "dataset_size", "model_scale"], 0, r"'experiments.dataset_size.model_scale': 0 is out of range"),
        (["experiments", "architecture"], {"dataset_size": 8, "model_scale": 4, "archs": ["unet"]}, r"'experiments.architecture.archs.0': 'unet' is not one of"),
        (["gaussian", "store_dtype"], "float16", r"'gaussian.store_dtype': 'float16' is not one of"),
        (["training", "lr"], "fast", r"'training.lr': 'fast' is not of type 'number'"),
        (["model", "arch"], "unet", r"'model.arch': 'unet' is not one of the allowed values \['ncsnpp', 'ddpmpp', 'adm'\]"),
        (["experiments", "model_scale"], {"dataset_size": 8, "scales": [4, -8]}, r"'experiments.model_scale.scales.1': -8 is out of range \(minimum 1\)"),
        (["experiments", "model_scale"], {"dataset_size": 8, "scales": []}, r"'experiments.model_scale.scales': the list must not be empty"),
        (["experiments", "strong_generalization"], {"sizes": [8], "model_scale": 0},
         r"'experiments.strong_generalization.model_scale': 0 is neither of the accepted forms .*0 is out of range \(minimum 1\)"),
        (["experiments", "strong_generalization"], {"sizes": [8, 16], "model_scale": [4]},
         r"'experiments.strong_generalization.model_scale': \[4\] needs one scale per entry of sizes \[8, 16\]"),
        (["dataset", "name"], "my data", r"'dataset.name': 'my data' does not match"),
    ],
)
def test_bad_config_names_key(path, value, pattern):
    with pytest.raises(ConfigError, match=pattern):
        validate_config(edit(path, value))


def test_an_experiment_set_to_null_is_skipped():
    cfg = base()
    cfg["experiments"]["model_scale"] = None
    out = validate_config(cfg)
    assert list(out["experiments"]) == ["dataset_size"]
    assert list(Study(out).experiments) == ["dataset_size"]


def test_missing_dataset_name():
    with pytest.raises(ConfigError, match=r"'dataset': 'name' is a required property"):
        validate_config({"dataset": {"source": "digits"}})


def test_linearity_pairs_must_fit_in_held_out_set():
    with pytest.raises(ConfigError, match=r"'analysis.n_pairs': 30 pairs need 60 held-out images, but evaluation.size is 50"):
        validate_config({**base(), "evaluation": {"size": 50}, "analysis": {"n_pairs": 30}})


@pytest.mark.parametrize(
    "section,value,expected",
    [
        ("training", {"lr": "0.002", "seeds": ["0", "1"], "bf16": "true", "epochs": "40"},
         {"lr": 0.002, "seeds": [0, 1], "bf16": True, "epochs": 40}),
        ("training", {"lr": "2e-4", "duration_kimg": "1e3"}, {"lr": 2e-4, "duration_kimg": 1000.0}),
        ("analysis", {"sigmas": "G12", "alphas": ["0.5", "0.99"]}, {"sigmas": "G12", "alphas": [0.5, 0.99]}),
        ("analysis", {"sigmas": ["0.5", "2"]}, {"sigmas": [0.5, 2]}),
        ("dataset", {"name": "digits", "source": "digits", "limit": "400"}, {"limit": 400}),
    ],
)
def test_command_line_strings_become_the_schemas_types(section, value, expected):
    """Snakemake's --config hands nested values over as strings (YAML BaseLoader)."""
    cfg = validate_config({**base(), section: value})
    assert {k: cfg[section][k] for k in expected} == expected


def test_strings_that_do_not_convert_are_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"'training.lr': 'fast' is not of type 'number'"):
        validate_config({**base(), "training": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"'training.seeds.1': 'x' is not of type 'integer'"):
        validate_config({**base(), "training": {"seeds": ["0", "x"]}})
    with pytest.raises(ConfigError, match=r"'training.batch_size': '1.5' is not of type 'integer'"):
        validate_config({**base(), "training": {"batch_size": "1.5"}})
