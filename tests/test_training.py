"""Training: overfitting, exact resume, divergence, safe checkpoint loading."""

import os
import pickle

import numpy as np
import pytest
import torch

from hiddengauss.schedules import log_spaced_epochs
from hiddengauss.training import (
    CheckpointError,
    TrainingDivergedError,
    TrainSpec,
    checkpoint_name,
    load_checkpoint,
    load_ema_denoiser,
    train,
)


def tiny_images(n=4, seed=0):
    g = np.random.default_rng(seed)
    return g.integers(0, 256, size=(n, 1, 8, 8), dtype=np.uint8)


def tiny_spec(**kw):
    base = dict(
        arch="ddpmpp", model_scale=8, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[],
        dropout=0.0, img_resolution=8, img_channels=1, n_images=4, epochs=40, batch_size=4,
        lr=2e-3, checkpoint_epochs=[5, 20, 40], seed=0,
    )  # fmt: skip
    base.update(kw)
    return TrainSpec(**base)


def test_log_spaced_epochs():
    grid = log_spaced_epochs(64000, 8, first_epoch=100, extra=[921, 10**9])
    assert grid[0] == 100 and grid[-1] == 64000 and 921 in grid and len(grid) == 9
    assert log_spaced_epochs(3, 8) == [1, 2, 3]


def test_tiny_model_overfits_four_images(tmp_path):
    """Trained on 4 digits, the denoising loss on those digits at fixed σ and noise falls tenfold."""
    from hiddengauss.sources import load_source
    from hiddengauss.edm import edm_loss_weight

    images = load_source({"source": "digits", "limit": 4}).images
    spec = tiny_spec(epochs=800, checkpoint_epochs=[1, 800], lr=5e-3, ema_halflife_fraction=0.02)
    log = train(spec, images, tmp_path / "out", tmp_path / "state", progress=False)
    assert len(log) > 10 and all(np.isfinite(r["loss"]) for r in log)
    y = torch.from_numpy(images).float() / 127.5 - 1
    g = torch.Generator().manual_seed(0)
    probes = [(s, torch.randn(y.shape, generator=g)) for s in (0.2, 0.5, 1.0)]

    def loss(epoch):
        net, _ = load_ema_denoiser(tmp_path / "out" / checkpoint_name(epoch))
        with torch.no_grad():
            return sum(float((edm_loss_weight(torch.tensor(s)) * (net(y + s * n, s) - y) ** 2).sum()) for s, n in probes)

    assert loss(800) < loss(1) / 10, (loss(1), loss(800))


def test_resume_equals_uninterrupted(tmp_path):
    spec = tiny_spec(dropout=0.1)
    images = tiny_images()
    train(spec, images, tmp_path / "a" / "out", tmp_path / "a" / "state", progress=False)
    # interrupted after 12 steps (the epoch-5 checkpoint is at step 5), then resumed
    train(spec, images, tmp_path / "b" / "out", tmp_path / "b" / "state", progress=False, max_steps=12)
    assert (tmp_path / "b" / "state" / checkpoint_name(5)).exists()
    assert not (tmp_path / "b" / "state" / checkpoint_name(20)).exists()
    log_b = train(spec, images, tmp_path / "b" / "out", tmp_path / "b" / "state", progress=False)
    for e in (5, 20, 40):
        a = load_checkpoint(tmp_path / "a" / "out" / checkpoint_name(e))
        b = load_checkpoint(tmp_path / "b" / "out" / checkpoint_name(e))
        for key in ("ema", "model"):
            for name in a[key]:
                assert torch.equal(a[key][name], b[key][name]), (e, key, name)
        assert a["images_seen"] == b["images_seen"] == e * 4
    assert [r["loss"] for r in log_b] == [r["loss"] for r in load_checkpoint(tmp_path / "a" / "out" / checkpoint_name(40))["loss_log"]]


def test_a_checkpoint_from_another_kind_of_device_is_refused_by_name(tmp_path):
    """A CUDA generator's state is 16 bytes, a CPU one's 5056: resuming across them would crash
    in set_state; it stops first, naming the state folder."""
    from hiddengauss.training import save_checkpoint

    spec = tiny_spec()
    train(spec, tiny_images(), tmp_path / "out", tmp_path / "state", progress=False, max_steps=6)
    path = tmp_path / "state" / checkpoint_name(5)
    ckpt = load_checkpoint(path)
    ckpt["rng"]["noise"] = torch.zeros(16, dtype=torch.uint8)  # what a CUDA generator saves
    save_checkpoint(path, ckpt)
    with pytest.raises(CheckpointError, match="another kind of device.*delete .*state"):
        train(spec, tiny_images(), tmp_path / "out", tmp_path / "state", progress=False)


def test_changed_spec_does_not_resume(tmp_path):
    images = tiny_images()
    train(tiny_spec(epochs=5, checkpoint_epochs=[5]), images, tmp_path / "out", tmp_path / "state", progress=False)
    other = tiny_spec(epochs=5, checkpoint_epochs=[5], lr=1e-3)
    train(other, images, tmp_path / "out", tmp_path / "state", progress=False)
    assert load_checkpoint(tmp_path / "out" / checkpoint_name(5))["fingerprint"] == other.fingerprint()


def test_divergence_stops_with_clear_error_and_keeps_last_checkpoint(tmp_path):
    spec = tiny_spec(lr=1e6, epochs=200, checkpoint_epochs=[1, 200], warmup_fraction=0.0)
    with pytest.raises(TrainingDivergedError, match="loss became (nan|inf)"):
        train(spec, tiny_images(), tmp_path / "out", tmp_path / "state", progress=False)
    assert (tmp_path / "state" / checkpoint_name(1)).exists()
    assert torch.isfinite(torch.stack([v.float().sum() for v in load_checkpoint(tmp_path / "state" / checkpoint_name(1))["ema"].values()])).all()


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoint_with_code_payload_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.pt"
    torch.save({"format": 1, "ema": {}, "x": Payload()}, bad)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(bad)
    assert not (tmp_path / "PWNED").exists()
    with open(tmp_path / "plain.pt", "wb") as f:
        pickle.dump(Payload(), f)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "plain.pt")
    assert not (tmp_path / "PWNED").exists()


def test_ema_denoiser_loads_and_runs(tmp_path):
    spec = tiny_spec(epochs=2, checkpoint_epochs=[2])
    train(spec, tiny_images(), tmp_path / "out", tmp_path / "state", progress=False)
    net, ckpt = load_ema_denoiser(tmp_path / "out" / checkpoint_name(2))
    x = torch.randn(3, 1, 8, 8)
    out = net(x, torch.full((3,), 0.5))
    assert out.shape == x.shape and torch.isfinite(out).all() and not net.training


def test_augmentation_labels_and_determinism():
    from hiddengauss.augment import AUGMENT_DIM, augment

    x = torch.rand(64, 1, 8, 8) * 2 - 1
    same, labels = augment(x, 0.0, torch.Generator().manual_seed(0))
    assert torch.equal(same, x) and labels.shape == (64, AUGMENT_DIM) and not labels.any()
    out, labels = augment(x, 1.0, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and torch.isfinite(out).all() and not torch.allclose(out, x)
    assert (labels[:, 0] == 1).any() and (labels[:, 0] == 0).any()  # x-flip is a coin flip
    a, la = augment(x, 0.5, torch.Generator().manual_seed(3))
    b, lb = augment(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(la, lb)
    untouched = (la == 0).all(1)  # images without any transform are returned unchanged
    assert untouched.any() and torch.equal(a[untouched], x[untouched])


def test_augmentation_gates_like_edm():
    """EDM's AugmentPipe fires x-flip with probability min(1, 1e8·p)·½ (half of all images at any
    p > 0) and each other transform with probability p."""
    from hiddengauss.augment import augment

    _, labels = augment(torch.zeros(20000, 1, 4, 4), 0.15, torch.Generator().manual_seed(0))
    flipped = (labels[:, 0] != 0).double().mean()
    scaled = (labels[:, 2] != 0).double().mean()
    assert abs(flipped - 0.5) < 0.015 and abs(scaled - 0.15) < 0.01, (flipped, scaled)


def test_warp_geometry_is_exact_for_flips_and_half_turns():
    from hiddengauss.augment import augment_matrix, warp

    x = torch.rand(3, 2, 8, 8)
    z = torch.zeros(3)
    one = torch.ones(3)
    none = torch.zeros(3, 2)
    torch.testing.assert_close(warp(x, augment_matrix(one, z, z, z, z, z), none), x.flip(-1), atol=1e-6, rtol=0)
    torch.testing.assert_close(warp(x, augment_matrix(z, one, z, z, z, z), none), x.flip(-2), atol=1e-6, rtol=0)
    torch.testing.assert_close(warp(x, augment_matrix(z, z, z, torch.full((3,), torch.pi), z, z), none),
                               x.flip(-1).flip(-2), atol=1e-5, rtol=0)  # fmt: skip
    torch.testing.assert_close(warp(x, augment_matrix(z, z, z, z, z, z), none), x, atol=1e-6, rtol=0)


def test_training_with_augmentation_runs(tmp_path):
    spec = tiny_spec(epochs=3, checkpoint_epochs=[3], augment_p=0.5)
    train(spec, tiny_images(), tmp_path / "out", tmp_path / "state", progress=False)
    net, ckpt = load_ema_denoiser(tmp_path / "out" / checkpoint_name(3))
    assert ckpt["spec"]["augment_p"] == 0.5 and net.net.map_augment is not None
    out = net(torch.randn(2, 1, 8, 8), 1.0)  # sampling without labels = clean distribution
    assert torch.isfinite(out).all()
