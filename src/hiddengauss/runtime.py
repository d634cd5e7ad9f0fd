"""Where and how computations run: device choice and CPU threads."""

from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger("hiddengauss")


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but torch sees no CUDA device")
    device = torch.device(name)
    if device.type == "cuda":
        log.info("device: %s (%s)", device, torch.cuda.get_device_name(device))
    else:
        log.info("device: cpu (%d threads)", torch.get_num_threads())
    if "SLURM_JOB_ID" in os.environ:  # what the scheduler allocated (checked by .ci/slurm_test.sh)
        keys = ["SLURM_JOB_ID", "SLURM_JOB_PARTITION", "SLURM_JOB_GPUS", "SLURM_GPUS", "CUDA_VISIBLE_DEVICES"]
        log.info("slurm: %s", ", ".join(f"{k}={os.environ[k]}" for k in keys if k in os.environ))
    return device


def set_threads(threads: int | None) -> None:
    """Honour the rule's ``threads`` for torch's intra-op pool."""
    if threads:
        torch.set_num_threads(int(threads))
