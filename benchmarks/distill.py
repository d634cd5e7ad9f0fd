"""Linear distillation: closed form (ours) against the official Adam procedure, per σ.

Teacher: a trained checkpoint of the pipeline (default: the default config's
ncsnpp_c32_n1024_s0 final checkpoint; run `make run` first), inputs: its held-out images.
For every σ of G10 both methods fit W_σ, b_σ; their accuracy is the RMSE (per pixel, on fresh
noisy inputs) between the fitted map and a reference optimum (the closed form on 16x more
samples). The SGD run follows the official script: zero init, input/√d, Adam with the per-σ
learning rate of the official table, batch 256, fresh noise each batch.

    python benchmarks/distill.py [--results results/digits] [--run RUN --epoch E] [--epochs 100]

Writes benchmarks/out/distill.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hiddengauss.dataset import load_split_images  # noqa: E402
from hiddengauss.distill import linear_denoiser  # noqa: E402
from hiddengauss.training import checkpoint_denoiser  # noqa: E402
from hiddengauss.distill import distill_closed_form, distill_sgd, noisy_inputs, official_sgd_lr  # noqa: E402
from hiddengauss.schedules import karras_sigmas  # noqa: E402
from machine import describe  # noqa: E402  (benchmarks/machine.py)


def map_rmse(a, b, y, sigma, seed=99, n=2048) -> float:
    x = torch.cat(list(noisy_inputs(y, sigma, n, 512, seed)))
    return float(((a(x, sigma) - b(x, sigma)) ** 2).mean().sqrt())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("results/digits"))
    ap.add_argument("--run", default="ncsnpp_c32_n1024_s0")
    ap.add_argument("--epoch", type=int, default=None, help="checkpoint epoch (default: the last)")
    ap.add_argument("--epochs", type=int, default=100, help="SGD epochs (official: 100)")
    ap.add_argument("--samples-per-dim", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "distill.json")
    a = ap.parse_args()
    ckpts = a.results / "runs" / a.run / "checkpoints"
    if not ckpts.exists():
        sys.exit(f"{ckpts} not found: run the pipeline first (make run), or pass --results/--run")
    epoch = a.epoch or max(int(p.stem[5:]) for p in ckpts.glob("epoch*.pt"))
    torch.set_num_threads(torch.get_num_threads())
    teacher, _ = checkpoint_denoiser(ckpts, epoch)
    y, _ = load_split_images(a.results / "splits" / "heldout.h5", a.results / "data" / "dataset.h5")
    d = y.shape[1]
    rows = []
    for sigma in map(float, karras_sigmas(10)):
        ref_w, ref_b, _ = distill_closed_form(teacher, y, sigma, 16 * a.samples_per_dim * d, seed=1)
        ref = linear_denoiser(ref_w, ref_b)
        t = time.perf_counter()
        w, b, fit = distill_closed_form(teacher, y, sigma, a.samples_per_dim * d, seed=0)
        cf_time = time.perf_counter() - t
        cf_err = map_rmse(linear_denoiser(w, b), ref, y, sigma)
        trace = []
        t = time.perf_counter()

        def track(ep, ws, bs):
            trace.append((ep, time.perf_counter() - t, map_rmse(linear_denoiser(ws, bs), ref, y, sigma, n=512)))

        distill_sgd(teacher, y, sigma, a.epochs, callback=track)
        sgd_time = trace[-1][1]  # includes the per-epoch tracking of linear maps, negligible next to teacher passes
        reached = next((tt for ep, tt, e in trace if e <= cf_err), None)
        rows.append({
            "sigma": sigma, "official_lr": official_sgd_lr(sigma), "closed_form_s": cf_time,
            "closed_form_rmse_to_optimum": cf_err, "closed_form_fit_rmse": fit,
            "sgd_s": sgd_time, "sgd_epochs": a.epochs, "sgd_rmse_to_optimum": trace[-1][2],
            "sgd_s_to_match_closed_form": reached,
            "speed_ratio": sgd_time / cf_time, "trace": trace[:: max(1, len(trace) // 20)],
        })  # fmt: skip
        r = rows[-1]
        print(f"σ={sigma:8.4f}  closed form {cf_time:6.2f}s err {cf_err:.2e} | SGD {sgd_time:7.1f}s err {r['sgd_rmse_to_optimum']:.2e}"
              f" ({'matched after %.1fs' % reached if reached else 'never matched'})", flush=True)  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"machine": describe(), "teacher": f"{a.run} epoch {epoch}", "d": d,
                                 "n_heldout": len(y), "results": rows}, indent=1))  # fmt: skip
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
