"""The on-demand benchmark scripts still run, at toy sizes, and their JSON says what they measured.

No timing is asserted (speed targets live in benchmarks/README.md); what is asserted would
catch a broken benchmark: the fit's eigenvalues, the nearest-neighbour agreement with the
naive loop (the script asserts it), the closed form against Heun, the rule table.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_script(*args, cwd=ROOT):
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.mark.parametrize(
    "stage, args",
    [
        ("fit", ["--n", "300", "--d", "48", "--chunk", "64"]),
        ("sample", ["--d", "48", "--n-samples", "8"]),
        ("nn", ["--n", "500", "--d", "48", "--n-samples", "40", "--naive", "5"]),
        ("dual", ["--n", "30", "--d", "48", "--chunk", "16"]),
        ("grid", ["--d", "48", "--sizes", "20,100", "--chunk", "16"]),
    ],
)
def test_gaussian_benchmark_stages(tmp_path, stage, args):
    out = tmp_path / f"{stage}.json"
    run_script(ROOT / "benchmarks/gaussian.py", stage, *args, "--threads", "1", "--out", out)
    report = json.loads(out.read_text())
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["torch"]
    r = report["result"]
    if stage == "fit":
        assert r["n"] == 300 and r["d"] == 48 and r["top_eigenvalue"] > 0 and r["clipped"] == 0
    elif stage == "sample":
        # Heun's discretization error: present (the two solvers differ) but small (0.03 measured)
        assert r["max_abs_diff"] < 0.5 and 0 < r["rmse"] < 0.1
    elif stage == "dual":  # the two fits agree (D_G) and the Gram basis spans the N - 1 directions
        assert r["gram_rank"] == 29 and max(r["max_abs_denoiser_diff_per_sigma"].values()) < 1e-7
        assert abs(r["top_eigenvalue"][0] - r["top_eigenvalue"][1]) < 1e-9 * r["top_eigenvalue"][1]
    elif stage == "grid":
        assert [(f["n"], f["path"]) for f in r["fits"]] == [(20, "gram"), (100, "covariance")]
    else:
        assert r["n_samples"] == 40 and r["speedup"] > 0


def test_training_throughput_benchmark(tmp_path):
    out = tmp_path / "train.json"
    run_script(ROOT / "benchmarks/train_throughput.py", "--archs", "ncsnpp", "--resolutions", "8", "--scales", "4",
               "--channels", "1", "--batch", "4", "--seconds", "0.2", "--out", out)  # fmt: skip
    (row,) = json.loads(out.read_text())["results"]
    assert row["status"] == "ok" and row["images_per_s"] > 0 and row["n_params"] > 0


def test_pipeline_times_table(tmp_path):
    bench = tmp_path / "results" / "benchmarks"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rule, job, s in [("train", "a", 30.0), ("train", "b", 10.0), ("distill", "a", 20.0)]:
        (bench / rule).mkdir(parents=True, exist_ok=True)
        (bench / rule / f"{job}.tsv").write_text(header + f"{s}\t0:00:{int(s)}\t100\t200\t-\t-\t0\t0\t50\t{s}\n")
    out = tmp_path / "times.json"
    proc = run_script(ROOT / "benchmarks/pipeline_times.py", "--results", tmp_path / "results", "--wall", "30", "--out", out)
    rules = {r["rule"]: r for r in json.loads(out.read_text())["rules"]}
    assert rules["train"]["jobs"] == 2 and rules["train"]["total_s"] == 40.0
    assert rules["distill"]["share"] == pytest.approx(1 / 3)
    assert "job seconds / wall = 2.00" in proc.stdout


def test_gpu_check_runs_at_toy_sizes_on_the_cpu(tmp_path):
    """``bash benchmarks/gpu_check.sh --cpu``: every step runs (the smoke step as a dry run) and
    the JSON carries a training-throughput row that cost_model.py reads."""
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--cpu", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900, env={**os.environ, "PYTHON": sys.executable})  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads(out.read_text())
    steps = report["steps"]
    assert set(steps) == {"smoke", "train", "eigh", "nn", "heun"} and not any(s.get("status") == "error" for s in steps.values())
    assert {r["mode"] for r in steps["train"]["rows"]} == {"fp32", "bf16", "pipeline loop"}
    assert all(r["images_per_s"] > 0 for r in steps["train"]["rows"]) and steps["heun"]["finite"]
    assert steps["eigh"]["gram_rank"] == 19 and steps["smoke"]["planned"] > 0
    (row,) = report["results"]
    assert row["model_scale"] == 4 and row["resolution"] == 8
    assert "| train |" in out.with_suffix(".md").read_text()
    # the cost model takes it: scales a config's other networks from the measured one
    cost = run_script(ROOT / "benchmarks/cost_model.py", ROOT / "config/smoke.yaml", "--throughput", out)
    assert "measured" in cost.stdout


def test_cost_model_prices_the_paper_grid():
    """cost_model.py plans config/ffhq64.yaml's DAG (no data needed) and prices each run; EDM's
    ADM (192 channels) costs (192/128)² of the scale-128 NCSN++ at the same N."""
    run_script(ROOT / "benchmarks/cost_model.py", ROOT / "config/ffhq64.yaml")
    out = json.loads((ROOT / "benchmarks/out/cost-ffhq64.json").read_text())
    runs = out["runs"]
    assert out["total"]["runs"] == 16 == len(runs)
    assert runs["adm_c192_n70000_s0"]["train_h"] == pytest.approx(2.25 * runs["ncsnpp_c128_n70000_s0"]["train_h"])
    # wall time on 8 GPUs: one GPU per run is bound by the longest run (ADM); 8 per run by the total
    wall = {r["gpus_per_run"]: r for r in out["wall"]["rows"]}
    longest = max(r["train_h"] for r in runs.values())
    assert wall[1]["grid_h"] == pytest.approx(longest) and wall[8]["longest_run_h"] == pytest.approx(longest / 8)
    assert wall[8]["grid_h"] == pytest.approx(out["total"]["train_h"] / 8)


def test_makespan_packs_the_longest_runs_first():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cost_model import makespan

    assert makespan([3, 3, 2, 2, 2], 2) == 7 and makespan([5, 1, 1], 4) == 5 and makespan([2, 2], 1) == 4


def test_closed_form_benchmark_times_every_model(tmp_path):
    out = tmp_path / "cf.json"
    run_script(ROOT / "benchmarks/closed_forms.py", "--sizes", "digits", "--timed-train", "16", "--threads", "1", "--out", out)
    (row,) = json.loads(out.read_text())["results"]
    assert row["extrapolated"] and row["timed_on_n"] == 16 and row["n_train"] == 1024
    assert set(row["models"]) == {"mixture8", "local (dense mask)", "patch 3x3", "els 3x3"}
    assert all(m["seconds_per_image_per_sigma"] > 0 for m in row["models"].values())
