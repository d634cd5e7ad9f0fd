"""The prepared GPU check (run by ``bash benchmarks/gpu_check.sh``; ``--cpu`` = toy sizes on the CPU).

Steps, each timed, each recorded even when it fails (one failure does not stop the others):

1. ``smoke``: the smoke config end to end on the GPU, with figures (``snakemake --cores 8`` in a
   scratch folder; every GPU rule's device is ``auto``). CPU mode: a dry run only (the test
   suite runs the smoke config for real).
2. ``train``: training images/s of NCSN++ at FFHQ-64 scale 128, batch 256, augment_dim 0, one
   subprocess per mode: eager fp32, TF32, bf16 autocast, torch.compile, and the pipeline's own
   training loop (fp32; batch sampling, lr schedule, gradient clean-up, EMA, loss logging).
   With more than one GPU, the pipeline's loop again on all of them (``training.gpus``, the
   global batch 256 split across them) and the scaling from one GPU in images/s.
   The reference is EDM's published cost for FFHQ-64, 200 Mimg in about 4 days on 8 V100s,
   which is 72 images/s per V100. This is the basis of cost_model.py. The figure of "about
   145" quoted in issue 17 would mean 2 days, the time the same source gives for CIFAR-10.
3. ``eigh``: float64 eigendecomposition of a d = 12,288 covariance on the GPU, and the Gram-matrix
   fit of N = 1,094 images at that d (the pipeline's N < d path).
4. ``nn``: exact nearest neighbours of 10,000 samples among 70,000 × 12,288 training images
   (``benchmarks/gaussian.py nn``).
5. ``heun``: images/s of the Heun-18 sampler (35 evaluations) with NCSN++ c128 at 64×64,
   float64 sampler state as in the pipeline.

Writes benchmarks/out/gpu_check.json (machine, every step's figures; ``results`` holds the
training throughput rows that ``benchmarks/cost_model.py --throughput`` reads) and
benchmarks/out/gpu_check.md (a summary table), and prints the summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from machine import describe  # noqa: E402

OUT = HERE / "out"
# sizes: (gpu, cpu)
SIZES = {
    "train": ({"resolution": 64, "scale": 128, "batch": 256, "seconds": 15}, {"resolution": 8, "scale": 4, "batch": 4, "seconds": 0.2}),
    "eigh": ({"d": 12288, "n": 1094}, {"d": 96, "n": 20}),
    "nn": ({"n": 70000, "d": 12288, "samples": 10000, "naive": 4}, {"n": 500, "d": 48, "samples": 40, "naive": 4}),
    "heun": ({"resolution": 64, "scale": 128, "batch": 256}, {"resolution": 8, "scale": 4, "batch": 4}),
}  # fmt: skip
TRAIN_MODES = {"fp32": [], "tf32": ["--tf32"], "bf16": ["--bf16"], "compile": ["--compile"], "pipeline loop": ["--pipeline"]}


def _run(cmd: list[str], timeout: float, cwd=ROOT) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd[:4]))} … exited {proc.returncode}: {proc.stderr[-800:]}")
    return proc


def step_smoke(cpu: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"), "--directory", tmp,
                "--configfile", str(ROOT / "config" / "smoke.yaml"), "--cores", "8"]  # fmt: skip
        if cpu:
            proc = _run([*args, "-n", "--quiet", "rules"], 300)
            return {"mode": "dry run (CPU)", "planned": proc.stdout.count("\n")}
        _run(args, 420)
        logs = list(Path(tmp).glob("results/*/logs/train/*.log"))
        on_cuda = sum("device: cuda" in p.read_text() for p in logs)
        figures = len(list(Path(tmp).glob("results/*/figures/*.png")))
        claims = (Path(tmp) / "results" / "smoke" / "claims.csv").read_text()
        return {"train_jobs_on_cuda": on_cuda, "train_jobs": len(logs), "figures": figures,
                "claims_rows": claims.count("\n") - 1}  # fmt: skip


def step_train(cpu: bool) -> dict:
    import torch

    s = SIZES["train"][cpu]
    rows = []
    modes = dict(TRAIN_MODES)
    n_gpus = 0 if cpu else torch.cuda.device_count()
    if n_gpus > 1:  # data-parallel scaling of the pipeline's loop (issue 22)
        modes[f"pipeline loop, {n_gpus} GPUs"] = ["--pipeline", "--gpus", str(n_gpus)]
    for mode, flags in modes.items():
        if cpu and mode in ("tf32", "compile"):
            continue  # TF32 is GPU-only; compiling on a CPU takes minutes
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "t.json"
            cmd = [sys.executable, str(HERE / "train_throughput.py"), "--device", "cpu" if cpu else "cuda",
                   "--archs", "ncsnpp", "--resolutions", str(s["resolution"]), "--scales", str(s["scale"]),
                   "--channels", "3", "--batch", str(s["batch"]), "--seconds", str(s["seconds"]),
                   "--max-step-seconds", "600", *flags, "--out", str(out)]  # fmt: skip
            try:
                _run(cmd, 300)
                (row,) = json.loads(out.read_text())["results"]
            except Exception as err:  # noqa: BLE001  (recorded, the other modes still run)
                row = {"status": "error", "error": str(err)[-500:]}
        rows.append({"mode": mode, **row})
        print(f"  train {mode}: {row.get('images_per_s', float('nan')):.1f} img/s ({row.get('status')})", flush=True)
    out = {"rows": rows, "edm_v100_images_per_s": 200e6 / (4 * 86400 * 8)}
    rate = {row["mode"]: row.get("images_per_s") for row in rows}
    if n_gpus > 1 and rate.get("pipeline loop") and rate.get(f"pipeline loop, {n_gpus} GPUs"):
        out["data_parallel"] = {"gpus": n_gpus, "speedup": rate[f"pipeline loop, {n_gpus} GPUs"] / rate["pipeline loop"]}
    return out


def step_eigh(cpu: bool) -> dict:
    import numpy as np
    import torch

    from hiddengauss.gaussian import fit_gaussian

    s = SIZES["eigh"][cpu]
    dev = torch.device("cpu" if cpu else "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(s["d"], 64, generator=g, dtype=torch.float64)
    cov = (a @ a.T / 64 + 0.01 * torch.eye(s["d"], dtype=torch.float64)).to(dev)
    sync()
    t = time.perf_counter()
    lam, _ = torch.linalg.eigh(cov)
    sync()
    t_eigh = time.perf_counter() - t
    del cov
    x = torch.from_numpy(np.random.default_rng(1).normal(size=(s["n"], s["d"]))).to(dev)
    sync()
    t = time.perf_counter()
    model = fit_gaussian([x], (s["d"],), device=dev)
    sync()
    return {"device": str(dev), "d": s["d"], "eigh_float64_s": t_eigh, "top_eigenvalue": float(lam[-1]),
            "gram_fit_n": s["n"], "gram_fit_s": time.perf_counter() - t, "gram_rank": int(model.eigenvalues.numel())}  # fmt: skip


def step_nn(cpu: bool) -> dict:
    s = SIZES["nn"][cpu]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "nn.json"
        cmd = [sys.executable, str(HERE / "gaussian.py"), "nn", "--n", str(s["n"]), "--d", str(s["d"]),
               "--n-samples", str(s["samples"]), "--naive", str(s["naive"]), "--out", str(out)] + (["--cpu"] if cpu else [])  # fmt: skip
        _run(cmd, 400)
        return json.loads(out.read_text())["result"]


def step_heun(cpu: bool) -> dict:
    import torch

    from hiddengauss.edm import EDMDenoiser
    from hiddengauss.networks import build_network
    from hiddengauss.sampling import PRESETS, network_denoiser, sample

    s = SIZES["heun"][cpu]
    dev = torch.device("cpu" if cpu else "cuda")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    res = s["resolution"]
    layout = {"channel_mult": [1, 2, 2, 2], "num_blocks": 4, "attn_resolutions": [16]} if res == 64 else \
        {"channel_mult": [1, 2], "num_blocks": 1, "attn_resolutions": []}  # fmt: skip
    torch.manual_seed(0)
    net = EDMDenoiser(build_network("ncsnpp", img_resolution=res, in_channels=3, model_channels=s["scale"], **layout)).to(dev).eval()
    den = network_denoiser(net, (3, res, res))
    d = 3 * res * res
    sample(den, range(2), d, PRESETS["euler10"], batch_size=2, device=dev)  # warm-up
    sync()
    t = time.perf_counter()
    x = sample(den, range(s["batch"]), d, PRESETS["heun18"], batch_size=s["batch"], device=dev)
    sync()
    dt = time.perf_counter() - t
    return {"device": str(dev), "resolution": res, "model_scale": s["scale"], "batch": s["batch"], "nfe": 35,
            "seconds": dt, "images_per_s": s["batch"] / dt, "finite": bool(torch.isfinite(x).all())}  # fmt: skip


STEPS = {"smoke": step_smoke, "train": step_train, "eigh": step_eigh, "nn": step_nn, "heun": step_heun}


def summary(report: dict) -> str:
    r = report["steps"]
    lines = [f"# GPU check ({report['mode']}, {report['machine'].get('gpu') or report['machine'].get('cpu')})", "",
             "| step | result | seconds |", "|---|---|---|"]  # fmt: skip
    for name, step in r.items():
        if step.get("status") == "error":
            text = f"error: {step['error'][-160:]}"
        elif name == "train":
            text = "; ".join(f"{row['mode']} {row.get('images_per_s', float('nan')):.1f} img/s" for row in step["rows"])
            text += f" (EDM on a V100: {step['edm_v100_images_per_s']:.0f}, from 200 Mimg in 4 days on 8)"
            if "data_parallel" in step:
                dp = step["data_parallel"]
                text += f"; {dp['gpus']} GPUs: {dp['speedup']:.2f}x one GPU ({dp['speedup'] / dp['gpus']:.0%} efficiency)"
        elif name == "smoke":
            text = ", ".join(f"{k} {v}" for k, v in step.items() if k not in ("seconds", "status"))
        elif name == "eigh":
            text = f"eigh d={step['d']} {step['eigh_float64_s']:.2f} s; Gram fit N={step['gram_fit_n']} {step['gram_fit_s']:.2f} s"
        elif name == "nn":
            text = f"{step['n_samples']} samples vs {step['n_train']} x {step['d']}: {step['chunked_s']:.2f} s"
        else:
            text = f"{step['images_per_s']:.1f} img/s (batch {step['batch']}, 35 NFE)"
        lines.append(f"| {name} | {text} | {step.get('seconds', 0):.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", action="store_true", help="toy sizes on the CPU (what the test suite runs)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--out", type=Path, default=OUT / "gpu_check.json")
    a = p.parse_args()
    import torch

    if not a.cpu and not torch.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device; run with --cpu for the toy sizes")
    report = {"mode": "cpu (toy sizes)" if a.cpu else "gpu", "machine": describe(), "command": sys.argv, "steps": {}}
    t_all = time.perf_counter()
    for name in a.steps.split(","):
        print(f"== {name}", flush=True)
        t = time.perf_counter()
        try:
            result = STEPS[name](a.cpu)
        except Exception as err:  # noqa: BLE001  (recorded; the next step still runs)
            result = {"status": "error", "error": f"{type(err).__name__}: {err}"[-1500:]}
        report["steps"][name] = {**result, "seconds": time.perf_counter() - t}
    report["total_s"] = time.perf_counter() - t_all
    train = report["steps"].get("train", {})
    report["results"] = [{"arch": "ncsnpp", **{k: row[k] for k in ("resolution", "model_scale", "images_per_s")}}
                         for row in train.get("rows", []) if row.get("mode") == "fp32" and row.get("images_per_s")]  # fmt: skip
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    text = summary(report)
    a.out.with_suffix(".md").write_text(text)
    print(text + f"total {report['total_s']:.0f} s; wrote {a.out} and {a.out.with_suffix('.md')}")
    if any(s.get("status") == "error" for s in report["steps"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
