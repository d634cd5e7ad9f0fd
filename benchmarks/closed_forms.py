"""Time per σ per input image of each closed-form denoiser (src/hiddengauss/closed_forms.py).

    python benchmarks/closed_forms.py [--sizes digits,mnist,paper] [--device cpu|cuda]

Sizes: ``digits`` (1,024 training images of 1×8×8, the default study's largest subset),
``mnist`` (1,024 of 1×14×14, the real-image study; also 60,000 of 1×28×28 extrapolated) and
``paper`` (70,000 of 3×64×64, FFHQ). Every model's cost is linear in the number of training
images N, so each is timed on ``--timed-train`` random images (at most N) and scaled by
N / timed; the JSON says which figures are extrapolated. Inputs are 8 noisy images at
σ = 0.5, ELS with a 3×3 patch, the patch model with 3×3 crops, the locality mask dense (the
worst case: the cost is N·d² whatever the mask), a mixture of 8 components fitted on the timed
images. Writes benchmarks/out/closed_forms-<device>.json with the machine described.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

from hiddengauss.closed_forms import (  # noqa: E402
    els_denoiser,
    fit_gaussian_mixture,
    gaussian_mixture_denoiser,
    local_denoiser,
    patch_denoiser,
)
from machine import describe  # noqa: E402

SIZES = {  # name: (N, (C, H, W))
    "digits": (1024, (1, 8, 8)),
    "mnist": (1024, (1, 14, 14)),
    "mnist28-full": (60000, (1, 28, 28)),
    "paper": (70000, (3, 64, 64)),
}


def timed(fn, reps: int = 1) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def measure(name: str, n: int, shape, timed_train: int, budget_s: float, dev: torch.device) -> dict:
    d = shape[0] * shape[1] * shape[2]
    m = min(n, timed_train, 64 if d > 4096 else timed_train)  # at 64x64x3 a dense d x d mask is 1.2 GB
    g = torch.Generator().manual_seed(0)
    train = (torch.rand(m, d, generator=g, dtype=torch.float64) * 2 - 1).to(dev)
    x = (torch.rand(8, d, generator=g, dtype=torch.float64) * 2 - 1).to(dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out = {"size": name, "n_train": n, "image_shape": list(shape), "timed_on_n": m, "extrapolated": m < n, "models": {}}
    mix = fit_gaussian_mixture(train, shape, min(8, m))
    mask = torch.ones(d, d, dtype=torch.float64, device=dev)
    models = {
        "mixture8": lambda: gaussian_mixture_denoiser(x, 0.5, mix),
        "local (dense mask)": lambda: local_denoiser(x, 0.5, train, mask, chunk=64),
        "patch 3x3": lambda: patch_denoiser(x, 0.5, train, shape, 3, chunk=64),
        "els 3x3": lambda: els_denoiser(x, 0.5, train, shape, 3, chunk=4),
    }
    for model, fn in models.items():
        t0 = time.perf_counter()
        fn()
        sync()
        first = time.perf_counter() - t0
        secs = timed(lambda fn=fn: (fn(), sync())) if first < budget_s else first  # a slow model is timed once
        scale = 1.0 if model == "mixture8" else n / m
        per_image = secs / 8 * scale
        note = ("K components fitted on the timed images; the cost does not grow with N" if model == "mixture8"
                else f"timed on {m} of {n} training images, scaled by N" if m < n else "")  # fmt: skip
        out["models"][model] = {"seconds_per_image_per_sigma": per_image, "note": note}
        print(f"{name:13s} {model:20s} {per_image:10.4g} s per image per sigma", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="digits,mnist,mnist28-full,paper")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--timed-train", type=int, default=256, help="training images actually used per timing")
    p.add_argument("--budget", type=float, default=20.0, help="seconds beyond which a model is timed once")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    rows = [measure(s, *SIZES[s], a.timed_train, a.budget, dev) for s in a.sizes.split(",")]
    out = a.out or HERE / "out" / f"closed_forms-{a.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": describe(), "command": sys.argv, "results": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
