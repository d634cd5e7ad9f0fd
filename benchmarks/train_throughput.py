"""Training throughput (images/s) and peak memory of our EDM networks.

Grid: image sizes 8×8 … 64×64 and model scales (model_channels) 4 … 128, NCSN++ and DDPM++,
each configuration measured in its own subprocess (so peak RSS is per configuration).
Run on demand (not in CI):

    python benchmarks/train_throughput.py                       # CPU (threads = all cores)
    python benchmarks/train_throughput.py --device cuda --bf16  # GPU, bf16 autocast
    python benchmarks/train_throughput.py --quick               # 8x8 and 16x16 only
    python benchmarks/train_throughput.py --variants --archs ncsnpp --resolutions 16 --scales 32

--variants measures each configuration several ways, each against the same baseline (a bare
eager fp32 step: forward, EDM loss, backward, Adam): the pipeline's own training loop
(``hiddengauss.training.train``: batch sampling, lr schedule, gradient clean-up, EMA, loss
logging), channels_last, bf16 autocast, torch.compile (and TF32 on a GPU).

Writes JSON (default benchmarks/out/train_throughput-<device>.json) with the machine description.
A configuration whose first step takes longer than --max-step-seconds is recorded as too slow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from machine import describe, peak_rss_mb  # benchmarks/machine.py

# network layout per resolution: the CPU default at 8/16, the paper's CIFAR/FFHQ layouts at 32/64
LAYOUTS = {
    8: dict(channel_mult=[1, 2], num_blocks=1, attn_resolutions=[]),
    16: dict(channel_mult=[1, 2, 2], num_blocks=1, attn_resolutions=[]),
    32: dict(channel_mult=[2, 2, 2], num_blocks=4, attn_resolutions=[16]),
    64: dict(channel_mult=[1, 2, 2, 2], num_blocks=4, attn_resolutions=[16]),
}


def layout(arch: str, res: int) -> dict:
    """The network layout of ``arch`` at ``res``: ADM at 32/64 is EDM's DhariwalUNet layout."""
    if arch == "adm" and res >= 32:
        from hiddengauss.networks import EDM_PRESETS

        return {k: v for k, v in EDM_PRESETS["adm"].items() if k != "model_channels"}
    return LAYOUTS[res]


def measure_pipeline(arch, res, channels, scale, batch, device, bf16, tf32, compile_, seconds, gpus=1):
    """Images/s of the pipeline's training loop: train() for 3 + k and for 3 steps, the difference
    timed (set-up and the first steps cancel; a first 3-step call warms up and sizes k), on random
    uint8 images, no checkpoint written. ``gpus`` > 1: data-parallel over that many GPUs (the
    global batch ``batch`` split across them; the processes' start-up cancels too)."""
    import tempfile

    import numpy as np

    from hiddengauss.training import Hardware, TrainSpec, train

    spec = TrainSpec(arch=arch, model_scale=scale, **layout(arch, res), dropout=0.0, img_resolution=res,
                     img_channels=channels, n_images=4096, epochs=1000, batch_size=batch, lr=1e-4)  # fmt: skip
    images = np.random.default_rng(0).integers(0, 256, (4096, channels, res, res), dtype=np.uint8)
    hw = Hardware(device=device, tf32=tf32, bf16=bf16, compile=compile_, gpus=gpus)

    def run(steps):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            train(spec, images, f"{tmp}/out", f"{tmp}/state", hardware=hw, progress=False, max_steps=steps)
            return time.perf_counter() - t

    t3 = run(3)
    k = max(3, min(200, int(seconds * 3 / max(t3, 1e-3))))
    dt = run(3 + k) - run(3)
    return {"arch": arch, "resolution": res, "channels": channels, "model_scale": scale, "batch": batch, "gpus": gpus,
            "status": "ok", "steps": k, "images_per_s": k * batch / dt, **layout(arch, res)}  # fmt: skip


def measure(arch, res, channels, scale, batch, device, bf16, tf32, compile_, seconds, max_step_seconds, channels_last):
    import torch

    from hiddengauss.edm import EDMDenoiser, edm_loss
    from hiddengauss.networks import build_network, count_parameters

    if tf32 and device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    net = EDMDenoiser(build_network(arch, img_resolution=res, in_channels=channels, model_channels=scale, **layout(arch, res))).to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    fn = torch.compile(net) if compile_ else net
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    g = torch.Generator(device=device).manual_seed(0)
    y = torch.rand(batch, channels, res, res, device=device) * 2 - 1
    if channels_last:
        y = y.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            loss = edm_loss(fn, y, g).float().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t = time.perf_counter()
    step()  # warm-up (and compilation)
    sync()
    first = time.perf_counter() - t
    out = {"arch": arch, "resolution": res, "channels": channels, "model_scale": scale, "batch": batch,
           "n_params": count_parameters(net), "first_step_s": first, **layout(arch, res)}  # fmt: skip
    if first > max_step_seconds:
        return {**out, "status": "too slow", "images_per_s": batch / first}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    steps, t = 0, time.perf_counter()
    while steps < 3 or (time.perf_counter() - t < seconds and steps < 200):
        step()
        steps += 1
    sync()
    dt = time.perf_counter() - t
    out.update(status="ok", steps=steps, images_per_s=steps * batch / dt)
    if device == "cuda":
        out["peak_gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    out["peak_rss_mb"] = peak_rss_mb()
    return out


VARIANTS = {  # name: extra flags of the child (each against the bare eager fp32 step)
    "eager fp32 (baseline)": [],
    "pipeline training loop": ["--pipeline"],
    "channels_last": ["--channels-last"],
    "bf16 autocast": ["--bf16"],
    "torch.compile": ["--compile"],
    "tf32 (GPU)": ["--tf32"],
}
OPTION_FLAGS = ("--quick", "--variants", "--pipeline", "--channels-last", "--bf16", "--compile", "--tf32")


def child(arch, res, scale, flags, strip=("--quick",)):
    """One configuration in a fresh process (its own peak memory, no state shared between runs)."""
    cmd = [sys.executable, __file__, "--one", f"{arch},{res},{scale}"]
    cmd += [x for x in sys.argv[1:] if x not in strip] + flags
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"arch": arch, "resolution": res, "model_scale": scale, "status": "error", "error": proc.stderr[-500:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_grid(a, resolutions):
    rows = []
    for arch in a.archs:
        for res in resolutions:
            slow = False
            for scale in a.scales:
                if slow:  # a smaller scale was already too slow: larger ones are too
                    rows.append({"arch": arch, "resolution": res, "model_scale": scale, "status": "skipped (smaller scale too slow)"})
                    continue
                row = child(arch, res, scale, [])
                slow = row["status"] == "too slow"
                rows.append(row)
                print(f"{arch:7s} {res:3d}px c{scale:<4d} {row.get('n_params', 0) / 1e6:7.2f}M  "
                      f"{row.get('images_per_s', 0):9.1f} img/s  {row['status']}", flush=True)  # fmt: skip
    return rows


def run_variants(a, resolutions):
    rows = []
    for arch in a.archs:
        for res in resolutions:
            for scale in a.scales:
                base = None
                for name, flags in VARIANTS.items():
                    if "--tf32" in flags and a.device != "cuda":
                        continue
                    row = {**child(arch, res, scale, flags, strip=OPTION_FLAGS), "variant": name}
                    if not flags:  # the baseline row
                        base = row.get("images_per_s")
                    row["ratio_to_baseline"] = row.get("images_per_s", 0) / base if base else None
                    rows.append(row)
                    print(f"{arch:7s} {res:3d}px c{scale:<4d} {name:24s} {row.get('images_per_s', 0):9.1f} img/s "
                          f"x{row['ratio_to_baseline'] or 0:.2f}  {row['status']}", flush=True)  # fmt: skip
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--archs", nargs="+", default=["ncsnpp", "ddpmpp"])
    ap.add_argument("--resolutions", nargs="+", type=int, default=[8, 16, 32, 64])
    ap.add_argument("--scales", nargs="+", type=int, default=[4, 8, 16, 32, 64, 128])
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0, help="timed seconds per configuration")
    ap.add_argument("--max-step-seconds", type=float, default=20.0)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--tf32", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--quick", action="store_true", help="8x8 and 16x16 only")
    ap.add_argument("--pipeline", action="store_true", help="time the pipeline's training loop, not a bare step")
    ap.add_argument("--gpus", type=int, default=1, help="with --pipeline: data-parallel processes (training.gpus)")
    ap.add_argument("--variants", action="store_true", help="baseline, pipeline loop, channels_last, bf16, compile")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:  # child process: one configuration
        arch, res, scale = a.one.split(",")
        if a.pipeline:
            print(json.dumps(measure_pipeline(arch, int(res), a.channels, int(scale), a.batch, a.device, a.bf16,
                                              a.tf32, a.compile, a.seconds, a.gpus)))  # fmt: skip
            return
        print(json.dumps(measure(arch, int(res), a.channels, int(scale), a.batch, a.device, a.bf16, a.tf32,
                                 a.compile, a.seconds, a.max_step_seconds, a.channels_last)))  # fmt: skip
        return
    resolutions = [r for r in a.resolutions if not a.quick or r <= 16]
    if a.variants:
        rows = run_variants(a, resolutions)
    else:
        rows = run_grid(a, resolutions)
    out = a.out or Path(__file__).parent / "out" / f"train_throughput-{a.device}{'-variants' if a.variants else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: getattr(a, k) for k in ("device", "batch", "channels", "bf16", "tf32", "compile", "channels_last", "seconds")}
    out.write_text(json.dumps({"machine": describe(), "settings": settings, "results": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
