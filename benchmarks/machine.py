"""One description of the machine for every benchmark's JSON (``from machine import describe``)."""

from __future__ import annotations

import os
import platform


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def describe() -> dict:
    """Platform, CPU model and count, memory, Python/torch/numpy/scipy versions, torch's
    thread count and BLAS, and the GPU when torch sees one."""
    import numpy
    import scipy
    import torch

    return {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(), "memory_gb": _memory_gb(), "torch": torch.__version__,
        "numpy": numpy.__version__, "scipy": scipy.__version__, "torch_threads": torch.get_num_threads(),
        "torch_blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }  # fmt: skip
