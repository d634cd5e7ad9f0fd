"""Memorized fraction of every evaluated checkpoint of a pilot run, one line per checkpoint.

    python benchmarks/pilots/summarize.py RESULTS_DIR [--sampler heun18]

RESULTS_DIR is a run's results/{dataset} folder (it must hold tables/runs.csv and
tables/generalization.csv). Prints a markdown table: experiment, run, N, scale, epoch,
images seen, memorized fraction, GL score.
"""

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--sampler", default="heun18")
    args = parser.parse_args()
    runs = pd.read_csv(args.results / "tables" / "runs.csv")
    gen = pd.read_csv(args.results / "tables" / "generalization.csv")
    gen = gen[gen["sampler"] == args.sampler]
    table = runs.merge(gen[["run_id", "epoch", "memorized_fraction", "gl_score"]], on=["run_id", "epoch"])
    cols = ["experiment", "run_id", "dataset_size", "model_scale", "epoch", "images_seen", "memorized_fraction", "gl_score"]
    table = table[cols].sort_values(["experiment", "dataset_size", "model_scale", "epoch"])
    print(table.to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
