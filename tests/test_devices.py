"""Every GPU rule's tensor work keeps its tensors on the model's device (tests/device_check.py:
the "GPU" is ``meta`` and CUDA's same-device rule is enforced), so CUDA-only device mixes fail
on the CPU. The teleportation latents were made on the CPU while the network sat on the GPU;
``test_teleportation_latents_follow_the_network`` fails on that bug."""

import numpy as np
import pytest
import torch
from device_check import GPU, DeviceMismatch, SameDevice

from hiddengauss.augment import augment
from hiddengauss.distill import CrossMoments, affine_least_squares, linear_denoiser, noisy_inputs
from hiddengauss.edm import EDMDenoiser, edm_loss
from hiddengauss.empirical import empirical_optimal_denoiser
from hiddengauss.gaussian import fit_gaussian
from hiddengauss.generation import teleportation_samples
from hiddengauss.memorization import max_cosine_mean_removed, nearest_neighbours, paired_centred_cosine
from hiddengauss.metrics import denoiser_distance_per_sample, fixed_noise, linearity_per_pair
from hiddengauss.networks import ARCHS, build_network
from hiddengauss.sampling import PRESETS, network_denoiser, sample
from hiddengauss.schedules import SamplerConfig

SHAPE, D = (1, 8, 8), 64


def gpu_net(arch="ncsnpp", augment_dim=0):
    net = build_network(arch, img_resolution=8, in_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
                        attn_resolutions=[4], augment_dim=augment_dim)  # fmt: skip
    return EDMDenoiser(net).to(GPU)


def gpu_gaussian(n=40):
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(n, D)))
    return fit_gaussian([x], SHAPE).to(GPU)


def test_the_check_catches_a_cpu_tensor_meeting_a_gpu_one():
    a = torch.ones(3, 3, device=GPU)
    with SameDevice():
        a @ a + torch.tensor(1.0)  # a CPU scalar is fine, as on CUDA
        a[torch.tensor([0, 2])]  # so is a CPU index
        with pytest.raises(DeviceMismatch, match="cpu, meta"):
            a @ torch.ones(3, 3)  # the meta kernel alone lets this through


def test_teleportation_latents_follow_the_network():
    net, gauss = network_denoiser(gpu_net(), SHAPE), gpu_gaussian()
    with SameDevice():
        xs = teleportation_samples(net, gauss, range(5), D, "euler10", [0, 3, 6], device=GPU, batch=2)
    assert set(xs) == {0, 3, 6} and all(x.device == GPU and x.shape == (5, D) for x in xs.values())


@pytest.mark.parametrize("arch", ARCHS)
def test_sampling_with_the_network_stays_on_its_device(arch):
    net = network_denoiser(gpu_net(arch), SHAPE)
    churn = SamplerConfig(steps=4, solver="heun", s_churn=10.0)
    with SameDevice():
        for cfg in (PRESETS["heun18"], churn):
            x, den = sample(net, range(3), D, cfg, batch_size=2, device=GPU, return_denoised=True)
            assert x.device == GPU and den.device == GPU


def test_a_training_step_stays_on_the_device():
    from hiddengauss.training import BatchStream

    model = gpu_net(augment_dim=9).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.zeros(10, *SHAPE, dtype=torch.uint8, device=GPU)
    stream = BatchStream(10, torch.Generator().manual_seed(0), GPU)
    with SameDevice():
        idx = stream.next(4) if stream.next(8) is not None else None  # crosses an epoch boundary
        y = data[idx].to(torch.float32) / 127.5 - 1
        y_aug, labels = augment(y, 0.5, None)
        loss = edm_loss(model, y_aug, None, augment_labels=labels).sum() / 4
        loss.backward()
        for p in model.parameters():
            torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
    assert loss.device == GPU


def until_values_are_read(fn) -> bool:
    """Run ``fn``; True if it finished, False if it stopped where it reads a value (a one-time
    host sync, legitimate on a GPU, impossible on ``meta``). A device mix still raises."""
    try:
        fn()
        return True
    except RuntimeError as err:
        if isinstance(err, DeviceMismatch) or not any(m in str(err) for m in ("meta tensors", "no data")):
            raise
        return False


def test_gaussian_maps_stay_on_the_device():
    g, x = gpu_gaussian(), torch.zeros(30, D, device=GPU, dtype=torch.float64)
    with SameDevice():
        assert g.denoise(x, 0.5).device == g.pf_ode(x, 80.0, 1.0).device == g.sample(x).device == GPU


@pytest.mark.parametrize("method, rows", [("gram", 30), ("covariance", 100)])
def test_gaussian_fits_stay_on_the_device_until_their_one_value_read(method, rows):
    with SameDevice():
        until_values_are_read(lambda: fit_gaussian([torch.zeros(rows, D, device=GPU)], SHAPE, device=GPU, method=method))


def test_distillation_linearity_distances_and_neighbours_stay_on_the_device():
    net = network_denoiser(gpu_net(), SHAPE)
    y = torch.zeros(10, D, device=GPU)
    train = torch.zeros(50, D, device=GPU)
    with SameDevice():
        mom = CrossMoments()
        for x in noisy_inputs(y, 0.5, 24, 8, seed=0):
            mom.update(x, net(x, 0.5))
        w, b = affine_least_squares(*mom.moments())
        lin = linear_denoiser(w, b)
        x1 = y + 0.5 * fixed_noise(10, D, 1).to(y)
        x2 = y + 0.5 * fixed_noise(10, D, 2).to(y)
        xm = (x1 + x2) / 2**0.5
        linearity_per_pair(x1, x2, xm, lin(x1, 0.5), lin(x2, 0.5), lin(xm, 0.5), 0.5, 0.5, "score")
        denoiser_distance_per_sample(net(x1, 0.5), lin(x1, 0.5))
        empirical_optimal_denoiser(x1, 0.5, train, chunk=16)
        nearest_neighbours(x1, train, k=2)
        max_cosine_mean_removed(x1, train, chunk=16), paired_centred_cosine(x1, x2)


def test_closed_form_denoisers_stay_on_the_device():
    from hiddengauss.closed_forms import (
        GaussianMixture,
        els_denoiser,
        fit_gaussian_mixture,
        gaussian_mixture_denoiser,
        local_denoiser,
        patch_denoiser,
    )

    cpu_train = torch.from_numpy(np.random.default_rng(1).normal(size=(12, D)))
    mix = fit_gaussian_mixture(cpu_train, SHAPE, 3)
    mix = GaussianMixture([g.to(GPU) for g in mix.components], mix.weights.to(GPU))
    x, train = torch.zeros(3, D, device=GPU, dtype=torch.float64), cpu_train.to(GPU)
    with SameDevice():
        outs = [gaussian_mixture_denoiser(x, 0.5, mix), local_denoiser(x, 0.5, train, torch.ones(D, D, device=GPU), chunk=5),
                patch_denoiser(x, 0.5, train, SHAPE, 3, chunk=5), els_denoiser(x, 0.5, train, SHAPE, 3, chunk=5)]  # fmt: skip
    assert all(o.device == GPU and o.shape == (3, D) for o in outs)
