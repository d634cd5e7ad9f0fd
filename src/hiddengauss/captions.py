"""Report captions of the figures, without importing the figure code.

Snakemake evaluates the figure rule's caption param on every invocation (dry runs included);
importing :mod:`hiddengauss.figures` would load torch and matplotlib each time. The caption's
first part is the figure function's docstring, read here from the source with :mod:`ast`, so
the docstring stays the one description of what a figure plots.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

EXPERIMENT_OF = {"linearity": "dataset_size", "gaussian_structure": "dataset_size", "dataset_size": "dataset_size",
                 "model_scale": "model_scale", "training_epochs": "training_epochs", "teleportation": "dataset_size",
                 "strong_generalization": "strong_generalization", "architectures": "architecture",
                 "linear_vs_gaussian": "architecture", "same_noise_samples": "architecture"}  # fmt: skip


@cache
def figure_docstrings() -> dict[str, str]:
    """Function name -> docstring (whitespace collapsed) of every function in figures.py."""
    tree = ast.parse((Path(__file__).parent / "figures.py").read_text())
    return {n.name: " ".join((ast.get_docstring(n) or "").split()) for n in tree.body if isinstance(n, ast.FunctionDef)}


def figure_description(name: str, config: dict) -> str:
    """Caption: what the figure plots (its function's docstring) and the config it comes from."""
    if name not in EXPERIMENT_OF:
        raise ValueError(f"unknown figure {name!r}; known: {sorted(EXPERIMENT_OF)}")
    docs = figure_docstrings()
    doc = docs.get(f"{name}_figure", docs["sweep_figure"])  # the three sweeps share sweep_figure
    exp = config.get("experiments", {})
    key = EXPERIMENT_OF[name] if EXPERIMENT_OF[name] in exp else "dataset_size"
    settings = ", ".join(f"{k} = {v}" for k, v in exp.get(key, {}).items())
    t, f = config["training"], config.get("figures", {})
    budget = f"{t['epochs']} epochs" if "epochs" in t else f"{t['duration_kimg']} kimg"
    return (f"{doc} Data set {config['dataset']['name']} (source {config['dataset']['source']}); "
            f"experiment {key}: {settings}; model {config['model']['arch']}, training {budget}, "
            f"seeds {t['seeds']}; figure sampler {f.get('sampler', 'heun18')}.")  # fmt: skip
