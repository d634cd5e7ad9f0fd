"""The plan of a study (hiddengauss.study), checked without Snakemake."""

from pathlib import Path

import pytest
import yaml

from hiddengauss.config import validate_config
from hiddengauss.splits import SplitError, parse_subset_id
from hiddengauss.study import FIGURES, PAIR_PATTERN, RUN_PATTERN, TABLES, Run, Study, baseline_keys

ROOT = Path(__file__).resolve().parents[1]


def shipped(name: str, **override) -> Study:
    cfg = yaml.safe_load((ROOT / "config" / f"{name}.yaml").read_text())
    for section, values in override.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return Study(validate_config(cfg))


def test_run_ids_round_trip_through_the_one_grammar():
    import re

    for run in (Run("ncsnpp", 32, "n16", 0), Run("adm", 128, "n35000s2", 7)):
        assert Run.parse(run.id) == run and re.fullmatch(RUN_PATTERN, run.id)
        assert re.fullmatch(PAIR_PATTERN, f"{run.id}_e921")
    assert Run("ddpmpp", 8, "n1094s2", 1).size == 1094 == parse_subset_id("n1094s2")[0]
    for bad in ("unet_c8_n16_s0", "ncsnpp_c8_n16_s", "ncsnpp_c8_heldout_s0", "ncsnpp_8_n16_s0"):
        assert not re.fullmatch(RUN_PATTERN, bad)
        with pytest.raises(ValueError, match="not a run id"):
            Run.parse(bad)


def test_study_subsets_and_count_check():
    study = shipped("config")
    assert "n16s2" in study.training_subsets and "n1024" in study.training_subsets
    study.check_counts(1797)
    with pytest.raises(SplitError, match=r"1024 is larger than the 744 images available \(1000 images in dataset 'digits' minus 256 held out\)"):
        study.check_counts(1000)


def test_shared_runs_are_trained_once_and_evaluated_where_needed():
    study = shipped("config")
    runs = study.runs
    assert len(runs) == 15  # 4 sizes + 4 scales at N=32 (epochs shared) + 2 pair halves (N=256's S1 is a size) + 2 small-scale halves + 3 archs
    for exp in ("dataset_size", "strong_generalization"):
        assert {"ncsnpp_c32_n16_s0", "ncsnpp_c32_n256_s0"} <= {m.run.id for m in study.experiments[exp]}
    for exp in ("model_scale", "training_epochs"):  # one run shared by the two fixed-N experiments
        assert "ncsnpp_c32_n32_s0" in {m.run.id for m in study.experiments[exp]}
    main = runs["ncsnpp_c32_n16_s0"]
    assert study.final_epoch(main) == 3125  # 50 kimg / 16 images
    assert 500 in study.checkpoint_epochs(main) and study.checkpoint_epochs(main)[-1] == 3125
    assert study.evaluated_epochs(main) == [500, 3125]  # the early stop and the final checkpoint
    epochs_run = runs["ncsnpp_c32_n32_s0"]
    assert study.evaluated_epochs(epochs_run) == study.checkpoint_epochs(epochs_run)  # the training-epochs run: all
    assert study.evaluated_epochs(epochs_run)[0] == 100  # after its warm-up (78 epochs)
    assert study.evaluated_epochs(runs["ncsnpp_c32_n256_s0"]) == [195]
    kinds = {p["kind"] for p in study.pairs()}
    assert kinds == {"full", "small_scale", "early_stop"}
    early = next(p for p in study.pairs() if p["kind"] == "early_stop")
    assert early["epoch"] == 500 and early["s2"] == "ncsnpp_c32_n16s2_s0"
    assert study.pair(early["pair_id"]) == early
    with pytest.raises(KeyError, match="no strong-generalization pair"):
        study.pair("ncsnpp_c32_n16_s0_e1")


def test_train_spec_names_every_value_that_determines_the_weights():
    study = shipped("smoke")
    spec = study.train_spec(Run.parse("ncsnpp_c8_n16_s0"))
    assert spec["model_scale"] == 8 and spec["epochs"] == 125 and spec["checkpoint_epochs"][-1] == 125
    assert spec["arch"] == "ncsnpp" and spec["seed"] == 0 and spec["batch_size"] == 32
    from dataclasses import fields

    from hiddengauss.training import TrainSpec

    given_by_the_data = {"img_resolution", "img_channels", "n_images", "adam_betas", "adam_eps"}
    assert set(spec) == {f.name for f in fields(TrainSpec)} - given_by_the_data


def test_splits_plan_the_held_out_set_and_subsets():
    study = shipped("smoke")
    assert study.split_plan("heldout") == dict(seed=0, held_out=64, external=False)
    assert study.split_plan("n16s2") == dict(seed=0, held_out=64, external=False)
    assert study.split_data_file("heldout") == "dataset" and study.analysis_split("n16") == "heldout"
    ext = shipped("cifar10")
    assert ext.split_plan("heldout") == dict(seed=0, held_out=ext.config["evaluation"]["size"], external=True)
    assert ext.split_plan("n782") == dict(seed=0, held_out=0, external=False)  # nothing held out of the training set
    assert ext.split_data_file("heldout") == "evalset" and ext.split_data_file("n782") == "dataset"
    assert ext.data_source("evalset")["split"] == "test"
    own = shipped("smoke", analysis={"inputs": "training"})
    assert own.analysis_split("n128s2") == "n128s2"


def test_memorization_time_checkpoints_get_only_their_own_tables():
    """The memorization_time runs are the dataset_size runs of the smoke config: trained once,
    every checkpoint sampled for the memorization curve, and no checkpoint more evaluated in full."""
    study = shipped("smoke")
    runs = [m.run for m in study.experiments["memorization_time"]]
    assert {r.id for r in runs} == {m.run.id for m in study.experiments["dataset_size"]}
    curve = [(k["run_id"], k["epoch"]) for _, k in study.table_units("memorization_curve")]
    assert curve == [(r.id, e) for r in runs for e in study.checkpoint_epochs(r)] and len(curve) == 7  # n16 keeps the early stop
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    del cfg["experiments"]["memorization_time"]
    assert study.evaluations() == Study(validate_config(cfg)).evaluations()  # nothing more evaluated in full
    only = shipped("memorization")
    assert only.evaluations() == [] and list(only.experiments) == ["memorization_time"]
    made = {t.name for t in only.tables()}
    assert made == {"spectrum", "runs", "memorization_curve", "memorization_items", "memorization_time"}
    assert only.figures() == ["memorization_time"] and only.claims_tables() == ["runs", "memorization_time"]
    assert only.figure_options("memorization_time")["memorization_level"] == 0.5


def test_table_units_identify_every_file_collect_table_reads():
    study = shipped("smoke")
    units = study.table_units("denoiser_distances")
    assert [(k["run_id"], k["epoch"]) for kind, k in units] == study.evaluations()
    units = study.table_units("linearity")  # Fig 1's checkpoints only, and their subsets' Gaussians
    sizes = {m.run.id: m.run for m in study.experiments["dataset_size"]}
    checkpoints = [(k["run_id"], k["epoch"]) for kind, k in units if kind == "checkpoint"]
    assert checkpoints == [(r, study.final_epoch(sizes[r])) for r in sorted(sizes)] and len(checkpoints) < len(study.evaluations())
    subsets = sorted({r.subset for r in sizes.values()})
    assert sorted(k["subset"] for kind, k in units if kind == "baseline") == subsets
    assert [k for kind, k in units if kind == "baseline"] == [baseline_keys(s) for s in study.training_subsets if s in subsets]
    assert [k for kind, k in study.table_units("linearity_items")] == [Run.parse(r).keys(e) for r, e in checkpoints]
    assert baseline_keys("n128s2") == dict(run_id="gaussian:n128s2", epoch=-1, arch="gaussian", model_scale=-1,
                                           dataset_size=128, subset="n128s2", seed=-1)  # fmt: skip
    assert len(study.table_units("distillation")) == len(study.evaluations()) == 12
    finals = [(k["run_id"], k["epoch"]) for _, k in study.table_units("teleportation")]  # the dataset_size figure's runs
    assert finals == [(r, study.final_epoch(sizes[r])) for r in sorted(sizes)] and len(finals) < len(study.runs)
    assert [k for _, k in study.table_units("strong_generalization")] == study.pairs()
    assert {t.name for t in study.tables()} == set(TABLES)
    with pytest.raises(ValueError, match="written whole by rule runs_table"):
        study.table_units("runs")
    closed = [(k["run_id"], k["epoch"]) for _, k in study.table_units("closed_form_generalization")]
    assert closed == finals
    assert study.figure_samples("closed_forms") == [(sizes[r], e) for r, e in closed]
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    del cfg["experiments"]["strong_generalization"]
    no_pairs = Study(validate_config(cfg))
    assert "strong_generalization" not in {t.name for t in no_pairs.tables()}
    none = shipped("smoke", baselines={"models": []})
    assert "closed_form_generalization" not in {t.name for t in none.tables()} and none.figure_samples("closed_forms") == []
    cfg["experiments"] = {"training_epochs": cfg["experiments"]["training_epochs"]}
    assert "closed_form_generalization" not in {t.name for t in Study(validate_config(cfg)).tables()}


def test_figures_follow_the_configured_experiments():
    study = shipped("smoke")
    assert study.figures() == sorted(FIGURES)
    assert study.figure_experiment("linear_vs_gaussian") == "architecture"
    assert study.figure_samples("same_noise_samples") == [study.showcase()] == [(Run.parse("ncsnpp_c4_n128_s0"), 16)]
    epochs = study.figure_samples("training_epochs")
    assert {r.id for r, _ in epochs} == {"ncsnpp_c8_n16_s0"} and [e for _, e in epochs] == study.checkpoint_epochs(epochs[0][0])
    assert len(study.figure_samples("strong_generalization")) == 2 * len(study.pairs())
    assert study.figure_samples("linearity") == []
    assert study.figure_options("same_noise_samples")["showcase"] == ["ncsnpp_c4_n128_s0", 16]
    assert study.figure_options("linearity") == {**study.config["figures"], "experiment": "dataset_size"}
    assert study.figure_subsets("same_noise_samples") == ["n128"]
    assert study.claims_tables()[-3:] == ["strong_generalization_items", "distribution_contrasts", "memorization_time"]
    cfg = yaml.safe_load((ROOT / "config" / "smoke.yaml").read_text())
    only = Study(validate_config({**cfg, "experiments": {"dataset_size": cfg["experiments"]["dataset_size"]}}))
    assert only.figures() == sorted(["closed_forms", "dataset_size", "gaussian_structure", "linear_vs_gaussian", "linearity",
                                     "same_noise_samples", "teleportation"])  # fmt: skip
    assert only.figure_experiment("same_noise_samples") == "dataset_size"
    assert only.showcase()[0].size == 128  # the largest training set


def test_linear_samplers_are_decided_when_the_dag_is_planned():
    assert shipped("smoke").linear_samplers() == ["euler10"]  # Euler-10 runs on G10, Heun-18 needs 18 levels
    assert shipped("smoke", analysis={"sigmas": "G18"}).linear_samplers() == ["heun18"]
    assert shipped("smoke", analysis={"distill": {"store": "none"}}).linear_samplers() == []


def test_experiment_rows_list_every_evaluated_checkpoint_under_each_experiment():
    study = shipped("smoke")
    rows = study.experiment_rows()
    assert list(rows[0]) == list(TABLES["runs"].columns[:14])
    n16 = next(r for r in rows if r["run_id"] == "ncsnpp_c8_n16_s0")
    assert n16["warmup_images"] == pytest.approx(0.05 * 2000) and (n16["p_mean"], n16["p_std"]) == (-1.2, 1.2)
    assert {r["experiment"] for r in rows} == set(study.experiments)
    early = [r for r in rows if r["checkpoint"] == "early_stop"]
    assert {r["epoch"] for r in early} == {10} and {r["subset"] for r in early} == {"n16", "n16s2"}


def test_pretrained_networks_stand_in_for_planned_runs_without_training():
    """config pretrained: the runs of config/ffhq64_pretrained.yaml are imported, not trained;
    their one checkpoint is at images seen / subset size; runs.csv rows carry their own warm-up
    and training sigma distribution."""
    from hiddengauss.config import ConfigError

    study = shipped("ffhq64_pretrained")
    assert sorted(study.runs) == ["ddpmpp_c128_n70000_s0", "ncsnpp_c128_n70000_s0"] == sorted(study.pretrained)
    assert study.trained_runs() == []
    run = Run.parse("ncsnpp_c128_n70000_s0")
    assert study.final_epoch(run) == round(200e6 / 70000) == 2857 and study.checkpoint_epochs(run) == [2857]
    assert study.evaluations() == [("ddpmpp_c128_n70000_s0", 2857), ("ncsnpp_c128_n70000_s0", 2857)]
    rows = study.experiment_rows()
    assert {r["source"] for r in rows} == {"pretrained"} and {r["warmup_images"] for r in rows} == {10_000_000}
    plan = study.pretrained_plan(run)
    assert plan["expect"] == {"arch": "ncsnpp", "model_channels": 128} and plan["images_seen"] == 200_000_000
    assert plan["network"]["channel_mult"] == [1, 2, 2, 2] and plan["format"] == "edm_pickle" and plan["key"] == "ema"
    # a mixed study trains the other runs
    mixed = shipped("config", pretrained={"ncsnpp_c32_n256_s0": {"path": "x.pt", "images_seen_kimg": 50}})
    assert "ncsnpp_c32_n256_s0" not in mixed.trained_runs() and len(mixed.trained_runs()) == len(mixed.runs) - 1
    assert next(r for r in mixed.experiment_rows() if r["run_id"] == "ncsnpp_c32_n16_s0")["source"] == "trained"
    with pytest.raises(ConfigError, match=r"'pretrained.ncsnpp_c32_n99_s0': no experiment plans the run ncsnpp_c32_n99_s0"):
        shipped("config", pretrained={"ncsnpp_c32_n99_s0": {"path": "x.pt", "images_seen_kimg": 50}})
    # the training_epochs experiment reads every checkpoint of its run: one network cannot stand in
    with pytest.raises(ConfigError, match="experiment training_epochs evaluates every checkpoint"):
        shipped("config", pretrained={"ncsnpp_c32_n32_s0": {"path": "x.pt", "images_seen_kimg": 50}})
    with pytest.raises(ConfigError, match="images_seen_kimg"):
        shipped("config", pretrained={"ncsnpp_c32_n256_s0": {"path": "x.pt"}})
