"""Each rule's share of a finished pipeline run, from Snakemake's `benchmark:` files.

    python benchmarks/pipeline_times.py [--results results/digits] [--wall SECONDS]

Prints a table (jobs, summed job seconds, mean, max, share) and writes
benchmarks/out/pipeline_times.json. Job seconds are summed over jobs that ran in parallel, so
with --wall (the run's wall-clock time) the table also shows the parallel efficiency.
Every rule has a `benchmark:` directive (benchmarks/{rule}/{job}.tsv or benchmarks/{rule}.tsv).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from machine import describe  # benchmarks/machine.py


def rule_times(results: Path) -> pd.DataFrame:
    rows = []
    root = results / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        frame = pd.read_csv(tsv, sep="\t")
        rule = tsv.relative_to(root).parts[0].removesuffix(".tsv")
        rows.append({"rule": rule, "job": tsv.stem, "s": float(frame["s"].iloc[-1]),
                     "max_rss_mb": float(pd.to_numeric(frame["max_rss"], errors="coerce").iloc[-1])})  # fmt: skip
    if not rows:
        raise SystemExit(f"no benchmark files under {results / 'benchmarks'}: run the pipeline first")
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"), mean_s=("s", "mean"), max_s=("s", "max"),
                                     max_rss_mb=("max_rss_mb", "max"))  # fmt: skip
    table["share"] = table["total_s"] / table["total_s"].sum()
    return table.sort_values("total_s", ascending=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results/digits"))
    ap.add_argument("--wall", type=float, default=None, help="wall-clock seconds of the run")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "pipeline_times.json")
    a = ap.parse_args()
    table = rule_times(a.results)
    print(table.round({"total_s": 1, "mean_s": 1, "max_s": 1, "max_rss_mb": 0, "share": 3}).to_string())
    total = table["total_s"].sum()
    print(f"\nsum of job seconds: {total:.0f} s ({total / 60:.1f} min)")
    if a.wall:
        print(f"wall clock: {a.wall:.0f} s ({a.wall / 60:.1f} min); job seconds / wall = {total / a.wall:.2f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"machine": describe(), "results": str(a.results), "wall_s": a.wall, "rules": table.reset_index().to_dict("records")}, indent=1))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
