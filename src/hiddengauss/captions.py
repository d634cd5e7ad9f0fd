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

from .study import FIGURES


@cache
def figure_docstrings() -> dict[str, str]:
    """Function name -> docstring (whitespace collapsed) of every function in figures.py."""
    tree = ast.parse((Path(__file__).parent / "figures.py").read_text())
    return {n.name: " ".join((ast.get_docstring(n) or "").split()) for n in tree.body if isinstance(n, ast.FunctionDef)}


def figure_description(name: str, config: dict) -> str:
    """Caption: what the figure plots (its drawing function's docstring) and the config it comes
    from (``config`` validated, so every default is filled in)."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; known: {sorted(FIGURES)}")
    figure, exp = FIGURES[name], config["experiments"]
    key = next((e for e in figure.experiments if e in exp), figure.experiments[0])
    settings = ", ".join(f"{k} = {v}" for k, v in exp.get(key, {}).items())
    t = config["training"]
    budget = f"{t['epochs']} epochs" if "epochs" in t else f"{t['duration_kimg']} kimg"
    return (f"{figure_docstrings()[figure.draw]} Data set {config['dataset']['name']} (source "
            f"{config['dataset']['source']}); experiment {key}: {settings}; model {config['model']['arch']}, "
            f"training {budget}, seeds {t['seeds']}; figure sampler {config['figures']['sampler']}.")  # fmt: skip
