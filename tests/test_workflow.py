"""The Snakemake workflow itself: parse-time validation, dry runs, lint, a real smoke run."""

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, refused_before_any_job, snakemake


def test_bad_config_stops_before_any_job(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["splits"]["seed"] = "one"
    out = refused_before_any_job(tmp_path, cfg)
    assert "'splits.seed': 'one' is not of type 'integer'" in out


def test_size_larger_than_data_fails_at_dag_build(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["experiments"]["dataset_size"]["sizes"] = [16, 5000]
    out = refused_before_any_job(tmp_path, cfg)
    assert "5000 is larger than the 336 images available (400 images in dataset 'smoke' minus 64 held out)" in out


def test_nested_command_line_overrides_are_typed(tmp_path, smoke_config):
    """Snakemake hands nested --config values over as strings: they are converted to the schema's
    types (a new lr retrains every run), and what does not convert is refused naming the key."""
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(smoke_config))
    args = ["-n", "--cores", "1", "--configfile", str(tmp_path / "c.yaml"), "--config"]
    out = snakemake(tmp_path, *args, 'training={"lr": 0.002}').stdout
    assert re.search(r"^train\s+8$", out, re.M), out[-2000:]
    bad = snakemake(tmp_path, *args, 'training={"lr": "fast"}', check=False)
    assert bad.returncode != 0 and "config key 'training.lr': 'fast' is not of type 'number'" in bad.stdout


def test_missing_data_stops_a_real_run_before_any_job_and_warns_in_a_dry_run(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["dataset"] = {"name": "smoke", "source": "npz", "path": str(tmp_path / "nowhere.npz")}
    real = snakemake(tmp_path, "--cores", "1", config=cfg, check=False)
    assert real.returncode != 0 and f"config key 'dataset.path': {tmp_path / 'nowhere.npz'} does not exist" in real.stdout
    assert not (tmp_path / "results").exists()
    dry = snakemake(tmp_path, "-n", "--cores", "1", config=cfg)
    assert "warning: config key 'dataset.path'" in dry.stdout and "prepare_dataset" in dry.stdout
    cfg["dataset"] = {"name": "smoke", "source": "image_folder", "path": str(tmp_path)}
    out = refused_before_any_job(tmp_path, cfg)  # an option the source needs stops even a dry run
    assert "config key 'dataset.resolution': source 'image_folder' needs it" in out


def test_default_config_dry_run(tmp_path):
    proc = snakemake(tmp_path, "-n", "--cores", "2", config=ROOT / "config" / "config.yaml")
    assert "fit_gaussian" in proc.stdout and "prepare_dataset" in proc.stdout


MNIST_NPZ = ROOT.parent / "shared" / "data" / "mnist" / "mnist_uint8.npz"


@pytest.mark.skipif(not MNIST_NPZ.exists(), reason="the shared MNIST copy is not on this machine")
def test_mnist_study_plans_with_the_shared_copy_by_override(tmp_path):
    """config/mnist.yaml reads torchvision's layout; a test (or a user) points it at another copy."""
    cfg = yaml.safe_load((ROOT / "config" / "mnist.yaml").read_text())
    cfg["dataset"] = {"name": "mnist14", "source": "npz", "path": str(MNIST_NPZ), "images_key": "x_train",
                      "labels_key": "y_train", "resolution": 14}  # fmt: skip
    proc = snakemake(tmp_path, "-n", "--cores", "2", config=cfg)
    assert "prepare_dataset" in proc.stdout and "train" in proc.stdout and "claims" in proc.stdout


def test_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint", "--cores", "1"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakefmt_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_smoke_pipeline_runs(tmp_path, smoke_config):
    """The whole smoke DAG: data, splits, Gaussian models, every training run."""
    snakemake(tmp_path, "--cores", "2", config=smoke_config)
    res = tmp_path / "results" / "smoke"
    with h5py.File(res / "data" / "dataset.h5") as f:
        assert f["images"].shape == (400, 1, 8, 8) and f["images"].dtype == np.uint8
        assert f.attrs["source"] == "digits" and f.attrs["count"] == 400
    spectrum = pd.read_csv(res / "tables" / "spectrum.csv")
    assert set(spectrum["subset"]) == {"n16", "n128", "n16s2", "n128s2"}
    assert (spectrum["eigenvalue"] >= 0).all()
    # N=16 images span at most 15 directions
    assert (spectrum.query("subset == 'n16' and eigenvalue > 1e-9")["k"].max()) <= 15
    with h5py.File(res / "splits" / "heldout.h5") as f:
        held = set(f["indices"][...])
    with h5py.File(res / "splits" / "n128.h5") as f:
        assert not held & set(f["indices"][...])
    from hiddengauss.config import validate_config
    from hiddengauss.study import Study
    from hiddengauss.training import checkpoint_name, load_checkpoint

    study = Study(validate_config(smoke_config))
    for run_id, run in study.runs.items():
        ckpts = res / "runs" / run_id / "checkpoints"
        names = sorted(p.name for p in ckpts.glob("epoch*.pt"))
        assert names == [checkpoint_name(e) for e in study.checkpoint_epochs(run)]
        final = load_checkpoint(ckpts / checkpoint_name(study.final_epoch(run)))
        assert final["images_seen"] == study.final_epoch(run) * run.size
        assert len(pd.read_csv(res / "runs" / run_id / "loss.csv")) > 0
    # analysis tables: one block of rows per evaluated checkpoint, finite values
    evaluations = study.evaluations()
    dist = pd.read_csv(res / "tables" / "distillation.csv")
    assert len(dist) == len(evaluations) * 10 and np.isfinite(dist["weight_rel_error"]).all()
    pairs = pd.read_csv(res / "tables" / "denoiser_distances.csv")
    assert set(pairs["pair"]) == {"network-gaussian", "linear-gaussian", "network-linear", "network-empirical",
                                  "network-mixture8", "network-local", "network-patch", "network-els"}  # + baselines
    assert np.isfinite(pairs["r2"]).all()
    cal = pd.read_csv(res / "tables" / "els_calibration.csv")
    assert (cal.groupby(["run_id", "epoch", "sigma"])["chosen"].sum() == 1).all()
    lin = pd.read_csv(res / "tables" / "linearity.csv")
    probed = {m.run.id for m in study.experiments["dataset_size"]}  # Fig 1's checkpoints and their Gaussians only
    assert set(lin["run_id"]) == probed | {"gaussian:n16", "gaussian:n128"}
    assert set(lin["inputs"]) == {"noisy", "pure_noise"} and set(lin["target"]) == {"denoiser", "score"}
    gauss80 = lin.query("run_id == 'gaussian:n128' and sigma == 80 and a == 0.5 and target == 'denoiser' and inputs == 'noisy'")
    assert gauss80["nmse"].item() == pytest.approx((np.sqrt(2) - 1) / np.sqrt(2), abs=0.01)  # affine offset
    gen = pd.read_csv(res / "tables" / "generalization.csv")
    assert len(gen) == len(evaluations) * 2 and set(gen["sampler"]) == {"euler10", "heun18"}
    assert gen[["gl_score", "memorized_fraction", "mean_max_cosine", "gaussian_rmse"]].notna().all().all()
    cf = pd.read_csv(res / "tables" / "closed_form_generalization.csv")  # same-latent closed-form samples
    finals = {(k["run_id"], k["epoch"]) for _, k in study.table_units("closed_form_generalization")}
    assert set(zip(cf["run_id"], cf["epoch"])) == finals and cf["memorized_fraction"].between(0, 1).all()
    assert set(cf["model"]) == {"network", "gaussian", "empirical", "mixture8", "local", "patch", "els"}
    n_cf = dict(zip(cf["model"], cf["n_samples"]))
    assert n_cf["els"] == min(study.config["baselines"]["els_samples"], n_cf["patch"]) and n_cf["patch"] == n_cf["network"]
    tele = pd.read_csv(res / "tables" / "teleportation.csv")
    assert (tele.query("skip_steps == 0")["rmse_to_full"] == 0).all() and set(tele["nfe_saved"]) == {0, 8, 16}
    strong = pd.read_csv(res / "tables" / "strong_generalization.csv")
    assert set(strong["kind"]) == {"full", "small_scale", "early_stop"}
    curve = pd.read_csv(res / "tables" / "memorization_curve.csv")  # every checkpoint of the memorization runs
    units = [(k["run_id"], k["epoch"]) for _, k in study.table_units("memorization_curve")]
    assert list(zip(curve["run_id"], curve["epoch"])) == units and curve["memorized_fraction"].between(0, 1).all()
    assert (curve["kid_ci_low"] <= curve["kid_heldout"]).all() and (curve["kid_heldout"] <= curve["kid_ci_high"]).all()
    mem = pd.read_csv(res / "tables" / "memorization_time.csv").query("quantity == 'tau_mem'")
    assert sorted(mem["dataset_size"]) == [16, 128] and mem["status"].isin(["crossed", "not reached", "memorized at the first checkpoint"]).all()
    steps = pd.read_csv(res / "tables" / "step_count.csv")  # sampler_dynamics: network, Gaussian, empirical
    assert set(zip(steps["denoiser"], steps["reference"])) == {("network", "fine_heun"), ("gaussian", "exact_limit"),
                                                               ("gaussian", "exact_map"), ("empirical", "fine_heun")}  # fmt: skip
    g = steps.query("denoiser == 'gaussian' and reference == 'exact_limit'").groupby(["solver", "steps"])["rmse"].mean()
    # converges, Heun faster once the steps are short (with 4 steps its trapezoid still overshoots)
    assert g["heun", 16] < g["heun", 4] and g["euler", 16] < g["euler", 4] < g["euler", 1] and g["heun", 16] < g["euler", 16]
    post = pd.read_csv(res / "tables" / "posterior.csv")
    assert set(post["n_images"]) == {16, 128} and post["n_eff_q10"].ge(1 - 1e-9).all() and post["proxy_fraction"].between(0, 1).all()
    big = post.groupby("n_images").apply(lambda r: r.sort_values("sigma")["n_eff"].iloc[-1], include_groups=False)
    assert big[128] > big[16] > 8  # at σ = 80 the posterior spreads over most training images
    modes = pd.read_csv(res / "tables" / "trajectory_modes.csv")
    assert set(modes["denoiser"]) == {"network", "gaussian"} and (modes["settle_sigma"] > 0).all()
    pert = pd.read_csv(res / "tables" / "perturbation.csv")
    assert set(pert["step"]) == set(range(18)) and pert["nn_changed"].between(0, 1).all()
    with h5py.File(res / "samples" / "gaussian" / "n16.h5") as f:
        assert f["gaussian/euler10/samples"].shape == (32, 64) and f["empirical/euler10/denoised"].shape == (10, 2, 64)
    # runs, figures, claims and the report
    runs = pd.read_csv(res / "tables" / "runs.csv")
    assert set(runs["experiment"]) == set(smoke_config["experiments"])
    assert (runs["n_params"] > 0).all() and (runs["images_seen"] == runs["epoch"] * runs["dataset_size"]).all()
    for name in study.figures():
        from PIL import Image

        assert min(Image.open(res / "figures" / f"{name}.png").size) > 300
        assert (res / "figures" / f"{name}.pdf").stat().st_size > 1000
    claims = pd.read_csv(res / "claims.csv")
    assert {"linearity_grows_with_data", "strong_generalization", "memorization_time_linear_in_n"} <= set(claims["claim_id"])
    assert list(claims.columns[:10]) == ["claim_id", "claim", "statistic", "value", "ci_low", "ci_high", "threshold",
                                         "p_value", "verdict", "holds"]  # fmt: skip
    assert set(claims["verdict"]) <= {"holds", "fails", "inconclusive"}
    decided = claims[claims["verdict"] != "inconclusive"]
    assert (decided["ci_low"] <= decided["ci_high"]).all() and decided["sigma_window"].notna().any()
    snakemake(tmp_path, "--report", "report.html", config=smoke_config)
    html = (tmp_path / "report.html").read_text()
    assert len(html) > 100_000 and "claims.csv" in html and "linearity.png" in html
    # nothing left to do
    proc = snakemake(tmp_path, "-n", "--cores", "2", config=smoke_config)
    assert "Nothing to be done" in proc.stdout
    assert list(res.rglob("*.tmp*")) == []
    check_partial_reruns(tmp_path, smoke_config)
    check_pretrained_import(tmp_path, smoke_config)
    # determinism: a second run from scratch elsewhere gives byte-identical tables and claims
    # (the figures, drawn from those tables, are left out of it)
    again = tmp_path / "again"
    snakemake(again, "--cores", "2", "--omit-from", "figure", config=smoke_config)
    for table in sorted((res / "tables").glob("*.csv")) + [res / "claims.csv"]:
        twin = again / table.relative_to(tmp_path)
        assert table.read_bytes() == twin.read_bytes(), f"{table.name} differs between two runs of the same config"
    keep = os.environ.get("HIDDENGAUSS_SMOKE_REFERENCE")
    if keep:  # CI: the Slurm check (.ci/slurm_test.sh) compares its run with these instead of a third local run
        import shutil

        shutil.copytree(res / "tables", Path(keep) / "results/smoke/tables", dirs_exist_ok=True)
        shutil.copy2(res / "claims.csv", Path(keep) / "results/smoke/claims.csv")


def rule_blocks(out: str) -> list[tuple[str, str]]:
    """(rule, its job block) for every job a `snakemake -n` output lists."""
    blocks = re.split(r"^(?=(?:local)?rule \w+:)", out, flags=re.M)
    return [(m.group(1), b) for b in blocks if (m := re.match(r"(?:local)?rule (\w+):", b))]


def planned(workdir, config) -> dict[str, int]:
    """Rule -> number of jobs that `snakemake -n` plans for ``config`` in ``workdir``."""
    out = snakemake(workdir, "-n", config=config).stdout
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def check_partial_reruns(workdir, base):
    """A config change plans exactly the jobs whose params or inputs it changes."""
    cfg = copy.deepcopy(base)
    cfg["figures"] = {"dpi": 100}
    from hiddengauss.config import validate_config
    from hiddengauss.study import Study

    assert planned(workdir, cfg) == {"figure": len(Study(validate_config(base)).figures()), "all": 1}
    cfg = copy.deepcopy(base)
    cfg.setdefault("analysis", {})["linearity_sigmas"] = "G12"
    jobs = planned(workdir, cfg)
    # only the dataset_size experiment's final checkpoints and their subsets' Gaussians are probed
    kinds = [kind for kind, _ in Study(validate_config(base)).table_units("linearity")]
    assert jobs == {"linearity": kinds.count("checkpoint"), "gaussian_linearity": kinds.count("baseline"),
                    "collect_table": 2, "figure": 1, "claims": 1, "all": 1}, jobs  # fmt: skip
    cfg = copy.deepcopy(base)
    cfg["baselines"] = {**cfg.get("baselines", {}), "n_samples": 8}  # the closed-form samples only
    n_final = len(Study(validate_config(base)).table_units("closed_form_generalization"))
    assert planned(workdir, cfg) == {"sample_closed_forms": n_final, "collect_table": 1, "figure": 1, "all": 1}
    cfg = copy.deepcopy(base)
    cfg["training"]["lr"] = 0.002  # every run trains again, data, splits and Gaussians stay
    jobs = planned(workdir, cfg)
    assert jobs["train"] == 8 and not {"prepare_dataset", "split_dataset", "fit_gaussian", "sample_gaussian"} & set(jobs), jobs
    cfg = copy.deepcopy(base)
    cfg["experiments"]["dataset_size"]["sizes"] = [16, 64, 128]  # one new subset, one new run
    jobs = planned(workdir, cfg)
    assert jobs["train"] == 1 and jobs["split_dataset"] == 1 and jobs["fit_gaussian"] == 1, jobs
    assert jobs["distill"] == jobs["sample_checkpoint"] == 1 and "prepare_dataset" not in jobs, jobs


def check_pretrained_import(workdir, base):
    """A trained run's EMA weights saved as a plain state dict and analysed as a network trained
    elsewhere (config pretrained) give byte-identical per-checkpoint tables, without a train job;
    a different file at the same path, even an older one, reruns its import."""
    import torch

    from hiddengauss.config import validate_config
    from hiddengauss.study import Study
    from hiddengauss.training import checkpoint_name, load_checkpoint

    study = Study(validate_config(base))
    run = next(m.run for m in study.experiments["dataset_size"] if m.run.size == 128)
    epoch = study.final_epoch(run)
    ckpt = load_checkpoint(workdir / "results/smoke/runs" / run.id / "checkpoints" / checkpoint_name(epoch))
    other = workdir / "pretrained"
    other.mkdir()
    torch.save(ckpt["ema"], other / "net.pt")
    warmup = next(r["warmup_images"] for r in study.experiment_rows() if r["run_id"] == run.id)
    cfg = copy.deepcopy(base)
    cfg["experiments"] = {"dataset_size": {"sizes": [128], "model_scale": 8}}
    cfg["pretrained"] = {run.id: {"path": str(other / "net.pt"), "format": "state_dict",
                                  "images_seen_kimg": ckpt["images_seen"] / 1000, "warmup_kimg": warmup / 1000}}  # fmt: skip
    targets = [f"results/smoke/eval/{run.id}/epoch{epoch}/{t}.csv" for t in ("distillation", "generalization")]
    out = snakemake(other, "--cores", "2", *targets, config=cfg).stdout
    assert "import_network" in out and "rule train" not in out
    for t in targets:
        assert (other / t).read_bytes() == (workdir / t).read_bytes(), f"{t} differs between the trained and the imported network"
    assert "Nothing to be done" in snakemake(other, "-n", *targets, config=cfg).stdout
    torch.save({k: v * 1.01 for k, v in ckpt["ema"].items()}, other / "net.pt")
    os.utime(other / "net.pt", (0, 0))  # older than every output: only its content hash can tell
    assert "import_network" in snakemake(other, "-n", *targets, config=cfg).stdout


def test_pretrained_config_dry_run_plans_every_analysis_and_no_training(tmp_path):
    """config/ffhq64_pretrained.yaml (NVlabs' FFHQ-64 networks, files absent here: a dry run
    warns and plans anyway): no train job, one import per network, every analysis of both."""
    jobs = planned(tmp_path, ROOT / "config" / "ffhq64_pretrained.yaml")
    assert "train" not in jobs and jobs["import_network"] == 2, jobs
    for rule in ("distill", "measure_denoisers", "sample_checkpoint", "generalization"):
        assert jobs[rule] == 2, (rule, jobs)
    for rule in ("linearity", "teleportation", "sample_closed_forms", "fit_gaussian"):  # N = 70000, the VE network
        assert jobs[rule] == 1, (rule, jobs)
    assert jobs["figure"] == 8 and jobs["claims"] == 1


def test_slurm_dry_run_requests_a_gpu_for_training(tmp_path, smoke_config):
    """No cluster needed: `snakemake --profile slurm -n`, typed in the repository root, puts
    every GPU rule on the GPU partition with gpu=1 and the rest on the CPU partition."""
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(smoke_config))
    cmd = [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "-d", str(tmp_path), "--configfile", str(tmp_path / "config.yaml")]
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    jobs = rule_blocks(proc.stdout)
    gpu_rules = {"train", "distill", "measure_denoisers", "linearity", "closed_form_outputs", "sample_checkpoint", "sample_closed_forms",
                 "teleportation", "memorization_curve", "step_count", "posterior", "commitment"}  # fmt: skip
    assert gpu_rules <= {rule for rule, _ in jobs}
    for rule, b in jobs:
        if rule in gpu_rules:
            assert "gpu=1" in b and "slurm_partition=gpu" in b, b
        elif rule != "all":
            assert "gpu=" not in b and "slurm_partition=cpu" in b, b
    # training.gpus: each train job asks for that many GPUs (and cpus_per_gpu each); the rest keep one
    proc = subprocess.run([*cmd, "--config", 'training={"gpus": 4}'], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    for rule, b in rule_blocks(proc.stdout):
        if rule in gpu_rules:
            assert ("gpu=4" if rule == "train" else "gpu=1") in b and "slurm_partition=gpu" in b, b


def test_second_snakemake_in_the_same_directory_is_refused(tmp_path, smoke_config):
    """Snakemake's lock: while one run holds the directory, a second one stops with a message
    that says how to --unlock after a crash (docs/reliability.md, "After a crash")."""
    import signal
    import time

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(smoke_config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "config.yaml"), "--cores", "1", "results/smoke/splits/n16.h5"]  # fmt: skip
    first = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        locks = tmp_path / ".snakemake" / "locks"
        deadline = time.time() + 120
        while not (locks.exists() and any(locks.iterdir())) and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGSTOP)  # hold the lock, deterministically
        assert locks.exists() and any(locks.iterdir()), "the first run never took the lock"
        second = snakemake(tmp_path, "--cores", "1", "results/smoke/splits/n16.h5", config=smoke_config, check=False)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout and "--unlock" in second.stdout
    finally:
        os.killpg(first.pid, signal.SIGCONT)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


PAPER_RUNS = {
    "ffhq64": {"ncsnpp_c128_n68_s0", "ncsnpp_c128_n137_s0", "ncsnpp_c128_n1094_s0", "ncsnpp_c128_n8750_s0",
               "ncsnpp_c128_n35000_s0", "ncsnpp_c128_n70000_s0",  # Fig 6
               "ncsnpp_c4_n1094_s0", "ncsnpp_c8_n1094_s0", "ncsnpp_c16_n1094_s0", "ncsnpp_c32_n1094_s0",
               "ncsnpp_c64_n1094_s0",  # Fig 7 (scale 128 shared with Fig 6; Fig 8 is that run's checkpoints)
               "ncsnpp_c128_n1094s2_s0", "ncsnpp_c128_n35000s2_s0", "ncsnpp_c8_n1094s2_s0",  # Fig 9 twins, scale-8 remedy
               "ddpmpp_c128_n70000_s0", "adm_c192_n70000_s0"},  # appendix architectures (EDM's ADM is 192 wide)
    "cifar10": {"ncsnpp_c128_n782_s0", "ncsnpp_c128_n3125_s0", "ncsnpp_c128_n25000_s0", "ncsnpp_c128_n50000_s0",
                "ncsnpp_c128_n782s2_s0", "ncsnpp_c64_n25000_s0", "ncsnpp_c64_n25000s2_s0",
                "ncsnpp_c4_n782_s0", "ncsnpp_c4_n782s2_s0"},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PAPER_RUNS))
def test_paper_scale_config_plans_exactly_the_papers_training_runs(name, tmp_path):
    """config/ffhq64.yaml and config/cifar10.yaml: the dry-run DAG trains exactly the paper's grid
    (data need not exist for planning), with epoch 921 on the checkpoint grid of the early-stop runs."""
    cfg = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    out = snakemake(tmp_path, "-n", "--cores", "2", config=cfg).stdout
    trained = {re.search(r"wildcards: run=(\S+)", b).group(1) for rule, b in rule_blocks(out) if rule == "train"}
    assert trained == PAPER_RUNS[name]
    from hiddengauss.config import validate_config
    from hiddengauss.study import Run, Study

    study = Study(validate_config(cfg))
    small = min(cfg["experiments"]["strong_generalization"]["sizes"])
    for rid in (f"ncsnpp_c128_n{small}_s0", f"ncsnpp_c128_n{small}s2_s0"):
        assert 921 in study.checkpoint_epochs(Run.parse(rid))
    assert {p["kind"] for p in study.pairs()} == {"full", "early_stop", "small_scale"}


# Parameter counts of EDM's own networks (paper_spec §2.2, measured by instantiating them:
# EDM-VE with augment_dim 9); ADM's is this implementation's, stated in docs/cluster.md.
PAPER_NETWORKS = [
    ("ffhq64", "ncsnpp_c128_n70000_s0", 62.8e6, {"channel_mult": [1, 2, 2, 2], "num_blocks": 4, "attn_resolutions": [16]}),
    ("cifar10", "ncsnpp_c128_n50000_s0", 56.4e6, {"channel_mult": [2, 2, 2], "num_blocks": 4, "attn_resolutions": [16]}),
    ("ffhq64", "adm_c192_n70000_s0", 295.13e6, {"channel_mult": [1, 2, 3, 4], "num_blocks": 3, "attn_resolutions": [32, 16, 8]}),
]  # fmt: skip


@pytest.mark.parametrize("name, run_id, params, widths", PAPER_NETWORKS)
def test_paper_scale_runs_build_edms_networks(name, run_id, params, widths):
    """The networks the paper-scale configs train are EDM's: NCSN++ FFHQ-64 at scale 128 is
    62.8M parameters, CIFAR-32 [2,2,2] 56.4M (within 1%); ADM gets EDM's DhariwalUNet widths
    (192 channels, [1,2,3,4], 3 blocks, attention at 32/16/8), not NCSN++'s. Built on ``meta``."""
    import torch

    from hiddengauss.config import validate_config
    from hiddengauss.networks import EDM_PRESETS, count_parameters
    from hiddengauss.study import Run, Study
    from hiddengauss.training import TrainSpec, build_denoiser

    cfg = validate_config(yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text()))
    run = Run.parse(run_id)
    spec = Study(cfg).train_spec(run)
    assert {k: spec[k] for k in widths} == widths
    if run.arch == "adm":
        assert {"model_channels": run.model_scale, **widths} == EDM_PRESETS["adm"]
    spec.update(img_resolution={"ffhq64": 64, "cifar10": 32}[name], img_channels=3, n_images=run.size)
    with torch.device("meta"):
        n = count_parameters(build_denoiser(TrainSpec(**spec)))
    assert abs(n - params) < 0.01 * params, n


def test_conda_env_matches_pyproject():
    """envs/hiddengauss.yaml (--sdm conda) pins the same packages and minimum versions as
    pyproject.toml (Snakemake itself runs outside the rule environment)."""
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = dict(re.fullmatch(r"([\w-]+)(>=[\d.]+)", d.replace(" ", "")).groups() for d in deps)
    wanted.pop("snakemake")
    conda_name = {"torch": "pytorch", "matplotlib": "matplotlib-base"}
    env = yaml.safe_load((ROOT / "envs" / "hiddengauss.yaml").read_text())["dependencies"]
    have = dict(re.fullmatch(r"([\w-]+)(>=[\d.]+)", d.replace(" ", "")).groups() for d in env if not d.startswith("python"))
    assert {conda_name.get(k, k): v for k, v in wanted.items()} == have
