"""GPU-hours of a config: every training run and every evaluated checkpoint of its DAG.

    python benchmarks/cost_model.py config/ffhq64.yaml [--throughput JSON]

Training: images seen per run × GPU-seconds per image for its architecture, scale and image
size. Without a measured throughput the reference is EDM's published cost on V100s (Karras
et al. 2022, appendix: FFHQ-64 and CIFAR-10 at 200 Mimg took about 4 and 2 days on 8 V100s
for the 63M/56M-parameter networks), scaled by (scale/128)² (convolution FLOPs grow with
channels²) with a floor of 5% for the small networks, which are launch-bound on a GPU.
``--throughput`` takes the JSON of ``benchmarks/train_throughput.py --device cuda`` (or of
``benchmarks/gpu_check.sh``) instead: images/s per arch, resolution and scale measured on your
GPU; a configuration it lacks is scaled from the nearest measured scale at the same resolution
(the same arch when measured) by the same (scale/128)² rule.

Analysis: network evaluations (NFE) per evaluated checkpoint (distillation: sigmas ×
samples_per_dim × d; sampling: n_samples × NFE of each sampler) and per checkpoint the linearity
probe measures (the dataset_size experiment's final ones: sigma grid × pairs × (2 + alphas) ×
2 input kinds), at three times the training rate (forward only).

A network trained elsewhere (config ``pretrained``) costs its analysis only.

Wall time of the training (``--pool`` GPUs, default 8): with g GPUs per run (``training.gpus``),
each run takes its GPU-hours / (g × efficiency) and pool/g runs go side by side, longest first
to the least loaded slot. ``--efficiency`` is the data-parallel efficiency (default 1: ideal,
unmeasured; ``benchmarks/gpu_check.sh`` measures it on a multi-GPU node as speedup / GPUs).

Prints a table per experiment (a run shared by two experiments counts in both; the total
counts it once) and writes benchmarks/out/cost-<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from hiddengauss.config import validate_config  # noqa: E402
from hiddengauss.schedules import PRESETS, nfe, sigma_grid  # noqa: E402
from hiddengauss.study import Study  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
# GPU-seconds per training image of a scale-128 network on one V100 (EDM's reported runs)
V100_S_PER_IMAGE = {64: 4 * 86400 * 8 / 200e6, 32: 2 * 86400 * 8 / 200e6}
FLOOR = 0.05


def seconds_per_image(arch: str, scale: int, resolution: int, measured: dict | None) -> float:
    if measured is not None:
        key = (arch, resolution, scale)
        if key in measured:
            return 1.0 / measured[key]
        refs = [k for k in measured if k[1] == resolution]
        refs = sorted([k for k in refs if k[0] == arch] or refs, key=lambda k: abs(k[2] - scale))
        if not refs:
            raise SystemExit(f"--throughput has no measurement at {resolution}px for {key}; have {sorted(measured)}")
        ref = refs[0]  # the nearest measured scale, scaled by the (scale/128)^2 rule
        return max((scale / 128) ** 2, FLOOR) / max((ref[2] / 128) ** 2, FLOOR) / measured[ref]
    ref = V100_S_PER_IMAGE.get(resolution, V100_S_PER_IMAGE[64] * (resolution / 64) ** 2)
    return ref * max((scale / 128) ** 2, FLOOR)


def load_measured(path: str | None) -> dict | None:
    if path is None:
        return None
    rows = json.loads(Path(path).read_text())["results"]
    return {(r["arch"], int(r["resolution"]), int(r["model_scale"])): float(r["images_per_s"]) for r in rows if r.get("images_per_s")}


def analysis_nfe(config: dict, d: int) -> int:
    """Network evaluations the analysis spends on one evaluated checkpoint (without linearity)."""
    a, s = config["analysis"], config["sampling"]
    distill = len(sigma_grid(a["sigmas"])) * a["distill"]["samples_per_dim"] * d
    sampling = s["n_samples"] * sum(nfe(PRESETS[name]) for name in s["samplers"])
    return distill + sampling


def linearity_nfe(config: dict) -> int:
    """Network evaluations of the linearity probe of one checkpoint."""
    a = config["analysis"]
    return len(sigma_grid(a["linearity_sigmas"])) * a["n_pairs"] * (2 + len(a["alphas"])) * 2


def makespan(hours: list[float], slots: int) -> float:
    """Wall time of jobs of these durations on ``slots`` parallel slots (longest first, each to
    the least loaded slot)."""
    loads = [0.0] * max(1, slots)
    for h in sorted(hours, reverse=True):
        loads[loads.index(min(loads))] += h
    return max(loads)


def wall_times(per_run: dict, pool: int, efficiency: float, gpus_per_run=(1, 4, 8)) -> list[dict]:
    """Training wall time of the grid with g GPUs per run, for each g that fits the pool."""
    out = []
    for g in (g for g in gpus_per_run if g <= pool):
        hours = [r["train_h"] / (g * (efficiency if g > 1 else 1.0)) for r in per_run.values() if r["train_h"] > 0]
        if hours:
            out.append({"gpus_per_run": g, "longest_run_h": max(hours), "grid_h": makespan(hours, pool // g)})
    return out


def cost(config_path: str, throughput: str | None, resolution: int | None = None, pool: int = 8,
         efficiency: float = 1.0) -> dict:  # fmt: skip
    config = validate_config(yaml.safe_load(Path(config_path).read_text()))
    study = Study(config)
    res = resolution or config["dataset"].get("resolution") or {"cifar10": 32, "mnist": 28, "fashion_mnist": 28, "digits": 8}.get(
        config["dataset"]["source"], 64
    )
    channels = config["dataset"].get("channels") or (3 if config["dataset"]["source"] in ("cifar10", "image_folder") else 1)
    d = channels * res * res
    measured = load_measured(throughput)
    probed = [k["run_id"] for kind, k in study.table_units("linearity") if kind == "checkpoint"] if "dataset_size" in study.experiments else []
    per_run = {}
    for rid, run in study.runs.items():
        images = 0 if study.is_pretrained(run) else study.final_epoch(run) * run.size  # trained elsewhere: analysis only
        spi = seconds_per_image(run.arch, run.model_scale, res, measured)
        n_eval = len(study.evaluated_epochs(run))
        nfe_run = n_eval * analysis_nfe(config, d) + probed.count(rid) * linearity_nfe(config)
        per_run[rid] = {"train_h": images * spi / 3600, "analysis_h": nfe_run * spi / 3 / 3600,
                        "images": images, "evaluated_checkpoints": n_eval}  # fmt: skip
    experiments = {}
    for name, rows in study.experiments.items():
        ids = sorted({m.run.id for m in rows})
        experiments[name] = {"runs": len(ids), "train_h": sum(per_run[i]["train_h"] for i in ids),
                             "analysis_h": sum(per_run[i]["analysis_h"] for i in ids)}  # fmt: skip
    total = {"runs": len(per_run), "train_h": sum(r["train_h"] for r in per_run.values()),
             "analysis_h": sum(r["analysis_h"] for r in per_run.values())}  # fmt: skip
    basis = f"measured ({throughput})" if measured else "EDM's published V100 cost, scaled by (scale/128)^2, floor 5%"
    return {"config": config_path, "d": d, "basis": basis, "experiments": experiments, "total": total, "runs": per_run,
            "wall": {"pool_gpus": pool, "efficiency": efficiency, "rows": wall_times(per_run, pool, efficiency)}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--throughput", help="JSON of benchmarks/train_throughput.py on your GPU")
    p.add_argument("--resolution", type=int, help="image side when the config keeps the native size (npz, folders)")
    p.add_argument("--pool", type=int, default=8, help="GPUs available for the wall-time estimate (default 8)")
    p.add_argument("--efficiency", type=float, default=1.0, help="data-parallel efficiency (default 1: ideal, unmeasured)")
    a = p.parse_args()
    out = cost(a.config, a.throughput, a.resolution, a.pool, a.efficiency)
    print(f"{a.config} (d = {out['d']}; basis: {out['basis']})")
    print("| experiment | runs | training GPU-h | analysis GPU-h |\n|---|---|---|---|")
    for name, e in [*out["experiments"].items(), ("total (shared runs once)", out["total"])]:
        print(f"| {name} | {e['runs']} | {e['train_h']:,.0f} | {e['analysis_h']:,.0f} |")
    w = out["wall"]
    if w["rows"]:
        print(f"\ntraining wall time on {w['pool_gpus']} GPUs (data-parallel efficiency {w['efficiency']:g})")
        print("| GPUs per run | longest run (h) | whole grid (h) |\n|---|---|---|")
        for r in w["rows"]:
            print(f"| {r['gpus_per_run']} | {r['longest_run_h']:,.0f} | {r['grid_h']:,.0f} |")
    OUT.mkdir(exist_ok=True)
    (OUT / f"cost-{Path(a.config).stem}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
