"""Tidy tables: concatenation with identifying columns, and finite-value checks."""

from __future__ import annotations

import numpy as np
import pandas as pd


class NonFiniteTableError(ValueError):
    """A table holds NaN or an infinity where figures and claims expect numbers."""


# Columns whose value may be unknown (NaN, never infinite): the training loss of a network
# trained elsewhere (config pretrained), which no log of this pipeline holds.
MAY_BE_UNKNOWN = ("final_loss",)


def require_finite(tables: dict[str, pd.DataFrame]) -> None:
    """Raise NonFiniteTableError naming the table, the column, the count and the first row's
    identifying values if any numeric value of any table is NaN or infinite (NaN is allowed in
    the columns of :data:`MAY_BE_UNKNOWN`)."""
    for name, frame in tables.items():
        numeric = frame.select_dtypes("number")
        values = numeric.to_numpy(dtype=float)
        bad = ~np.isfinite(values) & ~(np.isnan(values) & numeric.columns.isin(MAY_BE_UNKNOWN)[None, :])
        for c in np.flatnonzero(bad.any(axis=0)):
            col, rows = numeric.columns[c], np.flatnonzero(bad[:, c])
            ident = ", ".join(f"{k}={frame.iloc[rows[0]][k]}" for k in frame.columns if k != col)[:200]
            raise NonFiniteTableError(f"table {name}: column {col!r} has {len(rows)} non-finite value"
                                      f"{'s' if len(rows) > 1 else ''} (first at row {rows[0]}: {ident})")  # fmt: skip


def concat_with_keys(paths: list[str], keys: list[dict], columns=()) -> pd.DataFrame:
    """Concatenate CSV files, putting the columns of ``keys[i]`` in front of file i's rows.

    Raises ValueError naming the file if one lacks a column of ``columns`` (the table's
    registry record) or if a numeric value is NaN or infinite, so that no non-finite number
    reaches a table (or a figure drawn from it).
    """
    if len(paths) != len(keys):
        raise ValueError(f"{len(paths)} files but {len(keys)} key rows")
    frames = []
    for path, key in zip(paths, keys):
        frame = pd.read_csv(path)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"{path} lacks the column(s) {missing} of its table (has {list(frame.columns)})")
        require_finite({path: frame})
        frames.append(frame.assign(**key)[list(key) + list(frame.columns)])
    return pd.concat(frames, ignore_index=True)


def runs_table(rows: list[dict], checkpoints_dir) -> pd.DataFrame:
    """runs.csv: the experiment rows (Study.experiment_rows) with each checkpoint's images seen,
    parameter count and training loss at that checkpoint, read from the checkpoint itself.

    ``checkpoints_dir(run_id)`` gives the directory of a run's checkpoints."""
    from pathlib import Path

    from .training import checkpoint_name, load_checkpoint

    out = []
    for row in rows:
        ckpt = load_checkpoint(Path(checkpoints_dir(row["run_id"])) / checkpoint_name(row["epoch"]))
        out.append({**row, "images_seen": int(ckpt["images_seen"]), "n_params": int(ckpt["n_params"]),
                    "final_loss": float(ckpt["final_loss"])})  # fmt: skip
    return pd.DataFrame(out)


def last_checkpoints(runs: pd.DataFrame) -> pd.DataFrame:
    """The row of each run's last evaluated epoch in (a part of) runs.csv, in the table's order."""
    return runs.loc[sorted(runs.groupby("run_id")["epoch"].idxmax())]
