"""Reliability: interruption, numerical faults, untrusted files, bad input at the workflow level.

Cases elsewhere: config keys (test_config.py), data sources (test_sources.py), in-process resume,
divergence and checkpoint payloads (test_training.py), determinism, partial reruns and the lock
(test_workflow.py). docs/reliability.md lists them all.
"""

import copy
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import ROOT, refused_before_any_job, snakemake

RUN = "ncsnpp_c4_n16_s0"
TARGET = f"results/smoke/runs/{RUN}/checkpoints"


class Payload:
    """Unpickling this runs a shell command that creates the file PWNED."""

    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def long_training(smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["training"].update(duration_kimg=12, checkpoints=4, first_checkpoint_epoch=1)  # N=16: 750 epochs
    return cfg


def test_killed_training_job_resumes_under_snakemake_to_the_same_weights(tmp_path, smoke_config):
    """SIGKILL the whole Snakemake process group mid-training; `--unlock` and rerun: the job resumes
    from its newest checkpoint and ends with exactly the weights of an uninterrupted run."""
    from hiddengauss.training import load_checkpoint

    cfg = long_training(smoke_config)
    snakemake(tmp_path / "a", "--cores", "1", TARGET, config=cfg)
    b = tmp_path / "b"
    b.mkdir()
    (b / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(b), "--configfile",
           str(b / "config.yaml"), "--cores", "1", TARGET]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=b, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    state = b / "results" / "smoke" / "runs" / RUN / "state"
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            if state.is_dir() and len(list(state.glob("epoch*.pt"))) >= 2:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    kept = sorted(p.name for p in state.glob("epoch*.pt"))
    assert 2 <= len(kept) < 4, f"the kill should land mid-run, state holds {kept}"
    final = sorted((tmp_path / "a" / TARGET).glob("epoch*.pt"))[-1].name
    assert not (b / TARGET / final).exists(), "a killed run must not hold the final checkpoint"
    snakemake(b, "--unlock", config=cfg)
    plan = snakemake(b, "-n", "--cores", "1", TARGET, config=cfg, check=False).stdout
    assert "incomplete" in plan.lower() and "--rerun-incomplete" in plan, plan[-2000:]  # never taken as finished
    snakemake(b, "--cores", "1", TARGET, "--rerun-incomplete", config=cfg)
    log = (b / "results" / "smoke" / "logs" / "train" / f"{RUN}.log").read_text()
    assert re.search(r"resuming from epoch0*\d+\.pt", log), log[-2000:]
    finals = [sorted((d / TARGET).glob("epoch*.pt"))[-1] for d in (tmp_path / "a", b)]
    assert finals[0].name == finals[1].name
    one, two = (load_checkpoint(p) for p in finals)
    for part in ("model", "ema"):
        assert one[part].keys() == two[part].keys()
        for k in one[part]:
            assert torch.equal(one[part][k], two[part][k]), f"{part}.{k} differs after resume"


def test_killed_hdf5_write_never_looks_finished(tmp_path):
    """A process killed inside an HDF5 write leaves only a hidden temporary file, so Snakemake
    (which looks for the output's name) runs the job again; a later write succeeds."""
    out = tmp_path / "gaussian.h5"
    code = f"""
import os, signal, numpy as np
from hiddengauss.io import atomic_h5
with atomic_h5({str(out)!r}) as f:
    f.create_dataset("eigenvectors", data=np.ones((512, 512)))
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    leftover = [p.name for p in tmp_path.iterdir()]
    assert len(leftover) == 1 and leftover[0].startswith(".gaussian.h5.tmp-"), leftover
    from hiddengauss.io import atomic_h5

    with atomic_h5(out) as f:
        f["x"] = np.arange(3)
    with h5py.File(out) as f:
        assert list(f["x"][...]) == [0, 1, 2]


def test_diverging_learning_rate_stops_the_job_with_a_clear_message(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["training"].update(lr=1e8, warmup_fraction=0.0)
    proc = snakemake(tmp_path, "--cores", "1", TARGET, config=cfg, check=False)
    assert proc.returncode != 0 and "Error in rule train" in proc.stdout
    log = (tmp_path / "results" / "smoke" / "logs" / "train" / f"{RUN}.log").read_text()
    assert re.search(r"TrainingDivergedError: loss became (nan|inf) at step \d+ .* Lower training\.lr", log), log[-2000:]
    assert not (tmp_path / TARGET).exists()


def test_tables_with_nan_are_refused_before_figures_and_claims():
    import synthetic_study as synth

    from hiddengauss.claims import evaluate_claims
    from hiddengauss.figures import FigureData
    from hiddengauss.tables import NonFiniteTableError

    tables = synth.build_tables()
    bad = copy.deepcopy(tables)
    bad["denoiser_distances"].loc[3, "rmse"] = np.nan
    with pytest.raises(NonFiniteTableError, match=r"table denoiser_distances: column 'rmse' has 1 non-finite value"):
        FigureData(bad)
    with pytest.raises(NonFiniteTableError, match=r"denoiser_distances.*rmse"):
        evaluate_claims(bad)
    bad = copy.deepcopy(tables)
    bad["linearity"].loc[0, "nmse"] = np.inf
    with pytest.raises(NonFiniteTableError, match=r"table linearity: column 'nmse'"):
        FigureData(bad)
    FigureData(tables)  # the clean tables pass


def test_hdf5_with_a_pickled_payload_is_refused(tmp_path, monkeypatch):
    """Where numbers belong, an HDF5 file from elsewhere could hold pickled bytes (opaque or
    object data); the loaders refuse it by dtype, and nothing is ever unpickled."""
    from hiddengauss.dataset import DataError, read_images
    from hiddengauss.gaussian import GaussianModel
    from hiddengauss.splits import load_split

    monkeypatch.chdir(tmp_path)
    payload = np.void(pickle.dumps(Payload()))
    with h5py.File(tmp_path / "dataset.h5", "w") as f:
        f.create_dataset("images", data=np.array([payload] * 4))
    with pytest.raises(DataError, match=r"dataset\.h5:images is not a numeric array .*nothing is unpickled"):
        read_images(tmp_path / "dataset.h5")
    with h5py.File(tmp_path / "gaussian.h5", "w") as f:
        for key in ("mean", "eigenvectors"):
            f[key] = np.zeros(4)
        blob = np.empty(1, dtype=object)
        blob[0] = np.frombuffer(pickle.dumps(Payload()), dtype=np.uint8)
        f.create_dataset("eigenvalues", data=blob, dtype=h5py.vlen_dtype(np.uint8))
        f.attrs.update(n_images=4, image_shape=[1, 2, 2], n_clipped=0)
    with pytest.raises(ValueError, match=r"gaussian\.h5: 'eigenvalues' is not a numeric array"):
        GaussianModel.load(tmp_path / "gaussian.h5")
    with h5py.File(tmp_path / "split.h5", "w") as f:
        f.create_dataset("indices", data=np.array([payload]))
    with pytest.raises(ValueError, match=r"split\.h5: 'indices' is not a numeric array"):
        load_split(tmp_path / "split.h5")
    assert not (tmp_path / "PWNED").exists()


def test_no_code_path_unpickles_untrusted_data():
    """Static check of src/ and workflow/: torch.load only with weights_only=True, np.load only
    with allow_pickle=False, no pickle.load(s), pd.read_pickle, joblib or dill; the two Unpicklers
    are sources/cifar.py's numpy-only CIFAR reader (tested against a payload in test_sources.py)
    and convert.py's EDM snapshot reader (tested against hidden calls in test_convert.py)."""
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "workflow").rglob("*.py"), *(ROOT / "workflow").rglob("*.smk")]
    offending = []
    for path in files:
        for no, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            where = f"{path.relative_to(ROOT)}:{no}: {line.strip()}"
            if re.search(r"\btorch\.load\(", code) and "weights_only=True" not in code:
                offending.append(where)
            if re.search(r"\bnp\.load\(", code) and "allow_pickle=False" not in code:
                offending.append(where)
            if re.search(r"pickle\.loads?\(|read_pickle|joblib|\bdill\b|marshal\.loads|(?<![.\w])eval\(|(?<![.\w])exec\(", code):
                offending.append(where)
            allowed = {"cifar.py": "class _NumpyOnlyUnpickler", "convert.py": "class SnapshotUnpickler"}
            if "pickle.Unpickler" in code and not (path.name in allowed and allowed[path.name] in code):
                offending.append(where)
    assert offending == []


def test_held_out_set_larger_than_the_data_stops_before_any_job(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["evaluation"]["size"] = 500  # the smoke data set has 400 images
    out = refused_before_any_job(tmp_path, cfg)
    assert re.search(r"held.out.*500|500.*held.out", out), out[-2000:]


def test_unknown_dataset_source_stops_before_any_job(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["dataset"]["source"] = "imagenet"
    out = refused_before_any_job(tmp_path, cfg)
    assert "'dataset.source': 'imagenet' is not one of the allowed values ['digits', 'mnist'" in out


def test_missing_data_file_names_the_path_before_any_job(tmp_path, smoke_config):
    cfg = copy.deepcopy(smoke_config)
    cfg["dataset"] = {"name": "mine", "source": "npz", "path": str(tmp_path / "nowhere.npz")}
    proc = snakemake(tmp_path, "--cores", "1", config=cfg, check=False)
    assert proc.returncode != 0
    log = tmp_path / "results" / "mine" / "logs" / "prepare_dataset" / "dataset.log"
    assert "nowhere.npz" in proc.stdout + (log.read_text() if log.exists() else "")
    assert not list(tmp_path.rglob("*.h5")) and not (tmp_path / "results" / "mine" / "logs" / "train").exists()


@pytest.mark.parametrize("value", [0, -4])
def test_non_positive_size_stops_before_any_job(tmp_path, smoke_config, value):
    cfg = copy.deepcopy(smoke_config)
    cfg["experiments"]["dataset_size"]["sizes"] = [16, value]
    out = refused_before_any_job(tmp_path, cfg)
    assert f"'experiments.dataset_size.sizes.1': {value} is out of range (minimum 1)" in out


def test_tables_of_a_run_hold_no_nan(tmp_path):
    """The finite-value check itself: every numeric column, named on failure."""
    from hiddengauss.tables import NonFiniteTableError, require_finite

    ok = pd.DataFrame({"sigma": [0.1, 1.0], "rmse": [0.5, 0.2], "run_id": ["a", "b"]})
    require_finite({"t": ok})
    with pytest.raises(NonFiniteTableError, match=r"table t: column 'rmse' has 1 non-finite value \(first at row 1: sigma=1\.0, run_id=b\)"):
        require_finite({"t": ok.assign(rmse=[0.5, np.nan])})


def test_workflow_scripts_import_this_checkouts_package_before_any_installed_copy(tmp_path):
    """Snakemake appends the parent's sys.path (site-packages, where an editable install of
    another checkout puts its src) before this checkout's src: _src must still put its own first."""
    other = tmp_path / "other_checkout" / "hiddengauss"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("WHERE = 'other checkout'\n")
    code = (f"import sys; sys.path[:0] = [{str(other.parent)!r}]; "
            f"sys.path.extend([{str(ROOT / 'src')!r}, {str(ROOT / 'workflow' / 'scripts')!r}]); "
            "import _src, hiddengauss; print(hiddengauss.__file__)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip().startswith(str(ROOT / "src")), out.stdout
