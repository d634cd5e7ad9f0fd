"""Shared helpers: run the workflow in a scratch directory with a given config."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str, config: dict | Path | None = None, check: bool = True, timeout: int = 1200):
    """Run ``python -m snakemake`` on the repository's Snakefile inside ``workdir``.

    Returns the CompletedProcess (stdout and stderr merged into ``.stdout``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir), *args]
    if isinstance(config, dict):
        path = workdir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(path)]
    elif config is not None:
        cmd += ["--configfile", str(config)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
    return proc


def refused_before_any_job(workdir: Path, config: dict) -> str:
    """`snakemake -n` with ``config`` fails while parsing and writes no results; its output."""
    proc = snakemake(workdir, "-n", "--cores", "1", config=config, check=False)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert not (workdir / "results").exists()
    return proc.stdout


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def smoke_config() -> dict:
    return load_yaml(ROOT / "config" / "smoke.yaml")
