"""Gaussian model at paper scale: fit, sampling and nearest neighbours (one stage per call).

    python benchmarks/gaussian.py fit     [--n 70000 --d 12288 --chunk 2048]
    python benchmarks/gaussian.py sample  [--d 12288 --n-samples 64]
    python benchmarks/gaussian.py nn      [--n 70000 --d 12288 --n-samples 10000 --naive 16]
    python benchmarks/gaussian.py dual    [--n 1094 --d 12288]
    python benchmarks/gaussian.py grid    [--d 12288 --sizes 68,137,1094,8750,35000,70000]

fit:    mean and covariance streamed from synthetic uint8 images (seeded, generated chunk by
        chunk, so the data never sit in memory) with the pipeline's float64 accumulator, then
        ``eigh``; wall time per part and peak memory above the start. The accumulation update
        is also timed both ways on the same chunk: BLAS dsyrk (what the pipeline uses on CPU)
        against a full ``addmm``.
sample: the exact probability-flow solution against an 18-step Heun solve with the Wiener
        denoiser, same latents: time of each and their largest difference.
dual:   N < d: the Gram-matrix fit (N × N eigh) against the covariance fit (d × d eigh) on the
        same N images, in one process (the Gram fit first: ru_maxrss only grows, so each peak is
        read after its own fit); time, peak memory and the largest D_G difference per σ of G10.
grid:   every size of a grid fitted with ``method=auto`` (what the pipeline does): time, peak
        memory and the path taken per size; run once per process, smallest first.
nn:     exact nearest training image of every sample with the pipeline's chunked search
        against a naive per-sample loop (timed on --naive samples, extrapolated).

Each stage writes benchmarks/out/gaussian-<stage>.json with the machine described.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.linalg.blas import dsyrk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hiddengauss.gaussian import GaussianModel, eigendecompose, empirical_mean_covariance, fit_gaussian  # noqa: E402
from hiddengauss.schedules import sigma_grid  # noqa: E402
from hiddengauss.memorization import nearest_neighbours  # noqa: E402
from hiddengauss.sampling import PRESETS, sample, seeded_latents  # noqa: E402
from machine import describe, peak_rss_mb  # noqa: E402  (benchmarks/machine.py)

OUT = Path(__file__).resolve().parent / "out"


def synthetic_chunks(n: int, d: int, chunk: int, seed: int = 0):
    """Images in [-1, 1] from uint8 pixels with a low-rank structure (so the spectrum decays),
    generated chunk by chunk from one seeded generator."""
    g = np.random.default_rng(seed)
    basis = g.standard_normal((32, d)).astype(np.float32) * 20
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        u8 = np.clip(128 + g.standard_normal((rows, 32)).astype(np.float32) @ basis
                     + g.integers(-30, 30, (rows, d), dtype=np.int16), 0, 255).astype(np.uint8)  # fmt: skip
        yield u8.astype(np.float64) / 127.5 - 1


def stage_fit(a) -> dict:
    base = peak_rss_mb()
    t0 = time.perf_counter()
    gen = sum(c.shape[0] for c in synthetic_chunks(min(a.n, 4 * a.chunk), a.d, a.chunk))  # generation cost alone
    t_gen = (time.perf_counter() - t0) * a.n / gen
    t0 = time.perf_counter()
    mean, cov, n = empirical_mean_covariance(synthetic_chunks(a.n, a.d, a.chunk))
    t_cov = time.perf_counter() - t0
    mem_cov = peak_rss_mb() - base
    t0 = time.perf_counter()
    evals, evecs, clipped = eigendecompose(cov, overwrite=True)
    t_eigh = time.perf_counter() - t0
    del cov
    # the update rule both ways on one chunk
    y = next(synthetic_chunks(a.chunk, a.d, a.chunk))
    acc = np.zeros((a.d, a.d), order="F")
    t0 = time.perf_counter()
    dsyrk(1.0, y.T, beta=1.0, c=acc, trans=0, lower=0, overwrite_c=1)
    t_syrk = time.perf_counter() - t0
    del acc
    yt, acc = torch.from_numpy(y), torch.zeros(a.d, a.d, dtype=torch.float64)
    t0 = time.perf_counter()
    acc.addmm_(yt.T, yt)
    t_addmm = time.perf_counter() - t0
    return {"n": n, "d": a.d, "chunk": a.chunk, "data_generation_s_estimate": t_gen, "mean_cov_s": t_cov,
            "mean_cov_s_without_generation": t_cov - t_gen, "eigh_s": t_eigh, "total_s": t_cov + t_eigh,
            "peak_mb_above_start_after_cov": mem_cov, "peak_mb_above_start": peak_rss_mb() - base,
            "one_chunk_update_s": {"dsyrk": t_syrk, "addmm": t_addmm, "ratio": t_addmm / t_syrk},
            "top_eigenvalue": float(evals[0]), "clipped": clipped}  # fmt: skip


def gaussian_of_dim(d: int, n: int = 4096) -> GaussianModel:
    mean, cov, n = empirical_mean_covariance(synthetic_chunks(n, d, 1024))
    evals, evecs, clipped = eigendecompose(cov, overwrite=True)
    side = int(round((d / 3) ** 0.5))
    return GaussianModel(mean, evals, evecs, n, (3, side, side), clipped)


def stage_sample(a) -> dict:
    model = gaussian_of_dim(a.d)
    seeds = range(a.n_samples)
    t0 = time.perf_counter()
    closed = model.sample(seeded_latents(seeds, a.d))
    t_closed = time.perf_counter() - t0
    t0 = time.perf_counter()
    heun = sample(model.denoise, seeds, a.d, PRESETS["heun18"], batch_size=a.n_samples)
    t_heun = time.perf_counter() - t0
    diff = (closed - heun).abs()
    return {"d": a.d, "n_samples": a.n_samples, "closed_form_s": t_closed, "heun18_s": t_heun,
            "speedup": t_heun / t_closed, "max_abs_diff": float(diff.max()),
            "rmse": float(diff.pow(2).mean().sqrt())}  # fmt: skip


def stage_nn(a) -> dict:
    dev = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
    def filled(n, seed):  # preallocated and filled chunk by chunk: the data alone set the baseline
        out = torch.empty(n, a.d)
        for s, c in zip(range(0, n, 4096), synthetic_chunks(n, a.d, 4096, seed=seed)):
            out[s : s + len(c)] = torch.from_numpy(c)
        return out.to(dev)

    train, x = filled(a.n, 0), filled(a.n_samples, 1)
    base = peak_rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    dist, idx = nearest_neighbours(x, train, k=2)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_chunked = time.perf_counter() - t0
    peak_chunked = peak_rss_mb() - base  # before the naive loop, whose (n, d) temporaries are larger
    gpu_peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    t0 = time.perf_counter()
    naive = [int(((train - x[i]).pow(2).sum(1)).argmin()) for i in range(a.naive)]
    t_naive = (time.perf_counter() - t0) * a.n_samples / a.naive
    assert naive == idx[: a.naive, 0].tolist(), "naive and chunked search disagree"
    return {"device": str(dev), "n_train": a.n, "n_samples": a.n_samples, "d": a.d, "chunked_s": t_chunked,
            "samples_per_s": a.n_samples / t_chunked, "naive_s_extrapolated": t_naive, "naive_timed_on": a.naive,
            "speedup": t_naive / t_chunked, "peak_mb_above_data_chunked": peak_chunked,
            "peak_mb_above_data_naive": peak_rss_mb() - base, "gpu_peak_mb": gpu_peak,
            "data_mb": (train.numel() + x.numel()) * 4 / 2**20}  # fmt: skip


def _timed_fit(n: int, d: int, chunk: int, method: str) -> tuple[GaussianModel, float]:
    t0 = time.perf_counter()
    model = fit_gaussian(synthetic_chunks(n, d, chunk), (d,), method=method)
    return model, time.perf_counter() - t0


def stage_dual(a) -> dict:
    base = peak_rss_mb()
    t0 = time.perf_counter()
    gen = sum(c.shape[0] for c in synthetic_chunks(a.n, a.d, a.chunk))
    t_gen = time.perf_counter() - t0
    gram, t_gram = _timed_fit(a.n, a.d, a.chunk, "gram")
    peak_gram = peak_rss_mb() - base
    cov, t_cov = _timed_fit(a.n, a.d, a.chunk, "covariance")
    peak_cov = peak_rss_mb() - base
    probe = torch.from_numpy(next(synthetic_chunks(16, a.d, 16, seed=1)))
    diffs = {f"{s:.4g}": float((gram.denoise(probe, float(s)) - cov.denoise(probe, float(s))).abs().max())
             for s in sigma_grid("G10")}  # fmt: skip
    return {"n": a.n, "d": a.d, "data_generation_s": t_gen, "gram_s": t_gram, "covariance_s": t_cov,
            "speedup": t_cov / t_gram, "speedup_without_generation": (t_cov - t_gen) / (t_gram - t_gen),
            "gram_peak_mb_above_start": peak_gram, "covariance_peak_mb_above_start": peak_cov,
            "gram_rank": int(gram.eigenvalues.numel()), "top_eigenvalue": [float(gram.eigenvalues[0]), float(cov.eigenvalues[0])],
            "max_abs_denoiser_diff_per_sigma": diffs}  # fmt: skip


def stage_grid(a) -> dict:
    rows = []
    for n in sorted(int(v) for v in a.sizes.split(",")):
        base = peak_rss_mb()
        model, t = _timed_fit(n, a.d, a.chunk, "auto")
        rows.append({"n": n, "path": "gram" if model.eigenvalues.numel() < a.d else "covariance", "seconds": t,
                     "peak_mb_above_start": peak_rss_mb() - base})  # fmt: skip
        print(rows[-1], flush=True)
        del model
    return {"d": a.d, "fits": rows, "total_s": sum(r["seconds"] for r in rows),
            "note": "peaks are process peaks above the start of each fit (sizes run smallest first)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["fit", "sample", "nn", "dual", "grid"])
    p.add_argument("--n", type=int, default=70000)
    p.add_argument("--d", type=int, default=12288)
    p.add_argument("--chunk", type=int, default=2048)
    p.add_argument("--n-samples", type=int, default=None)
    p.add_argument("--naive", type=int, default=16)
    p.add_argument("--sizes", default="68,137,1094,8750,35000,70000", help="grid: training-set sizes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpu", action="store_true", help="nn: stay on the CPU even with a GPU")
    p.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/out/gaussian-<stage>.json)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    a.n_samples = a.n_samples or {"fit": 0, "sample": 64, "nn": 10000, "dual": 0, "grid": 0}[a.stage]
    result = {"fit": stage_fit, "sample": stage_sample, "nn": stage_nn, "dual": stage_dual, "grid": stage_grid}[a.stage](a)
    out = a.out or OUT / f"gaussian-{a.stage}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": describe(), "command": sys.argv, "result": result}, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
