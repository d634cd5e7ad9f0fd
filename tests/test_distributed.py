"""Data-parallel training (training.gpus > 1) on the CPU with gloo: the same run as one process
up to floating-point reduction order, exact resume, and a dying rank that stops the job."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from hiddengauss.training import Hardware, TrainSpec, checkpoint_name, load_checkpoint, load_ema_denoiser, rank_rows, train

# Measured on the project's CPU VM (2026-12-03, spec(): 40 epochs, 175 steps): the 2-process
# run's weights differ from the 1-process run's by a median 3.5e-6 and at most 2.4e-5 of each
# tensor's largest entry, its denoiser outputs by at most 5e-6, its losses by < 1e-5 relative:
# the order of the gradient all-reduce's sums. One exception: the key third of an attention
# layer's qkv bias, whose exact gradient is 0 (softmax ignores a constant added to every key),
# so Adam turns rounding noise into full-size steps there (2.3e-3); it does not change the
# network's function.
WEIGHT_TOL, OUTPUT_TOL, LOSS_RTOL = 1e-4, 1e-4, 1e-5


def comparable(state: dict) -> dict:
    """The weights that determine the network's output: the key bias of attention left out."""
    out = dict(state)
    for name, v in state.items():
        if name.endswith("attn.qkv.bias"):
            out[name] = torch.cat([v[0::3], v[2::3]])  # (channel, q/k/v) interleaved: drop the k entries
    return out


def images(n=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8)


def spec(**kw):
    # 30 images, batch 7: each epoch ends on a short batch (2 rows), and the batches before a
    # checkpoint are cut to land on it, so uneven rank shares and a 1-row batch are exercised
    base = dict(arch="ddpmpp", model_scale=4, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[], dropout=0.0,
                img_resolution=8, img_channels=1, n_images=30, epochs=40, batch_size=7, lr=2e-3, augment_p=0.3,
                checkpoint_epochs=[10, 20, 40], seed=3)  # fmt: skip
    return TrainSpec(**(base | kw))


def weights(path):
    return load_checkpoint(path)["ema"]


def test_rank_rows_split_a_batch_into_contiguous_near_equal_parts():
    for batch in range(0, 12):
        for world in (1, 2, 3, 4):
            rows = [rank_rows(batch, r, world) for r in range(world)]
            assert rows[0][0] == 0 and rows[-1][1] == batch and all(a[1] == b[0] for a, b in zip(rows, rows[1:]))
            assert max(h - lo for lo, h in rows) - min(h - lo for lo, h in rows) <= 1


def test_two_gloo_processes_train_the_same_run_as_one(tmp_path):
    s, x = spec(), images()
    log1 = train(s, x, tmp_path / "one" / "out", tmp_path / "one" / "state", progress=False)
    log2 = train(s, x, tmp_path / "two" / "out", tmp_path / "two" / "state", Hardware(gpus=2), progress=False)
    steps = s.epochs * 30 // 7 + 3  # about 175 optimizer steps
    assert steps > 150 and [r["step"] for r in log1] == [r["step"] for r in log2]
    np.testing.assert_allclose([r["loss"] for r in log2], [r["loss"] for r in log1], rtol=LOSS_RTOL)
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for e in (10, 20, 40):
        one, two = tmp_path / "one/out" / checkpoint_name(e), tmp_path / "two/out" / checkpoint_name(e)
        a, b = comparable(weights(one)), comparable(weights(two))
        worst = max(float((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-12)) for k in a)
        assert worst < WEIGHT_TOL, (e, worst)
        (n1, _), (n2, _) = load_ema_denoiser(one), load_ema_denoiser(two)
        for sigma in (0.02, 1.0, 40.0):
            o1, o2 = n1(x, sigma), n2(x, sigma)
            assert float((o1 - o2).abs().max() / o1.abs().max()) < OUTPUT_TOL, (e, sigma)
    ckpt = load_checkpoint(tmp_path / "two/out" / checkpoint_name(40))
    assert ckpt["images_seen"] == 40 * 30 and len(ckpt["rng"]["ranks"]) == 2


def test_an_interrupted_two_process_run_resumes_to_the_same_weights(tmp_path):
    s, x, hw = spec(dropout=0.1, epochs=12, checkpoint_epochs=[5, 10, 12]), images(), Hardware(gpus=2)
    train(s, x, tmp_path / "a" / "out", tmp_path / "a" / "state", hw, progress=False)
    train(s, x, tmp_path / "b" / "out", tmp_path / "b" / "state", hw, progress=False, max_steps=30)  # past epoch 5
    assert (tmp_path / "b/state" / checkpoint_name(5)).exists() and not (tmp_path / "b/state" / checkpoint_name(10)).exists()
    train(s, x, tmp_path / "b" / "out", tmp_path / "b" / "state", hw, progress=False)
    for e in (5, 10, 12):
        a, b = load_checkpoint(tmp_path / "a/out" / checkpoint_name(e)), load_checkpoint(tmp_path / "b/out" / checkpoint_name(e))
        for key in ("ema", "model"):
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), (e, key, name)
        assert [r["loss"] for r in a["loss_log"]] == [r["loss"] for r in b["loss_log"]]


def test_a_dying_rank_stops_the_job_naming_it_and_the_run_resumes(tmp_path):
    """SIGKILL one rank of a 2-process run after its first checkpoint: the job ends (no hang)
    with the rank in the message, the checkpoint stays, and running the job again resumes from it
    to the weights of an uninterrupted 2-process run."""
    src = os.path.join(os.path.dirname(__file__), os.pardir, "src")
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys, numpy as np
        sys.path.insert(0, {src!r})
        from hiddengauss.training import Hardware, TrainSpec, train
        spec = TrainSpec(arch="ddpmpp", model_scale=4, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[], dropout=0.1,
                         img_resolution=8, img_channels=1, n_images=30, epochs=60, batch_size=7, lr=2e-3,
                         checkpoint_epochs=[2, 60], seed=0)
        x = np.random.default_rng(0).integers(0, 256, size=(30, 1, 8, 8), dtype=np.uint8)
        if __name__ == "__main__":  # each rank imports this file again
            train(spec, x, sys.argv[1] + "/out", sys.argv[1] + "/state", Hardware(gpus=2), progress=False)
    """))
    run = lambda name: subprocess.Popen([sys.executable, str(script), str(tmp_path / name)], stdout=subprocess.PIPE,  # noqa: E731
                                        stderr=subprocess.STDOUT, text=True)  # fmt: skip
    proc = run("b")
    try:
        first = tmp_path / "b/state" / checkpoint_name(2)
        deadline = time.time() + 120
        while not first.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert first.exists(), f"the first checkpoint was never written: {proc.poll()}"
        ranks = subprocess.run(["pgrep", "-f", "-P", str(proc.pid), "multiprocessing.spawn"], capture_output=True, text=True)
        pids = [int(p) for p in ranks.stdout.split()]
        assert len(pids) == 2, ranks.stdout
        os.kill(pids[1], signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)  # never a hang
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0
    assert "TrainingError: training rank" in out and "of 2 died" in out and "SIGKILL" in out, out[-2000:]
    assert not (tmp_path / "b/state" / checkpoint_name(60)).exists() and load_checkpoint(first)["epoch"] == 2
    for name in ("b", "a"):  # the killed run resumed, and an uninterrupted one
        p = run(name)
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out[-2000:]
    a, b = (load_checkpoint(tmp_path / n / "out" / checkpoint_name(60)) for n in ("a", "b"))
    for key in ("ema", "model"):
        for name in a[key]:
            assert torch.equal(a[key][name], b[key][name]), (key, name)


@pytest.mark.skipif(torch.cuda.device_count() > 0, reason="checks the message on a machine without GPUs")
def test_more_gpus_than_visible_is_refused_before_spawning(tmp_path):
    with pytest.raises(ValueError, match="training.gpus is 4 but 0 CUDA device"):
        train(spec(), images(), tmp_path / "out", tmp_path / "state", Hardware(device="cuda", gpus=4), progress=False)
