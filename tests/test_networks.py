"""Backbones: parameter counts of the official EDM networks, shapes, init, determinism, validation."""

import math

import pytest
import torch

from hiddengauss.networks import ARCHS, DhariwalUNet, FourierEmbedding, Norm, SongUNet, build_network, count_parameters

SCALES = (4, 8, 16, 32, 64, 128)
# paper_spec §2.2: EDM-VE (NCSN++, augment_dim 9) measured by instantiating the official network.
PUBLISHED = {
    "ffhq64": (64, [1, 2, 2, 2], (64.6e3, 252e3, 993e3, 3.94e6, 15.7e6, 62.8e6)),
    "cifar32": (32, [2, 2, 2], (58.2e3, 226e3, 892e3, 3.54e6, 14.1e6, 56.4e6)),
}
# Exact counts of this implementation (identical to NVlabs' SongUNet with the same settings).
EXACT = {
    "ffhq64": (64583, 251531, 992531, 3942947, 15717443, 62761091),
    "cifar32": (58179, 226307, 892419, 3544067, 14125059, 56397827),
}


def _sig3(n: float) -> float:
    """n rounded to 3 significant figures."""
    return float(f"{n:.3g}")


def _count(arch: str, **cfg) -> int:
    with torch.device("meta"):  # shapes only: no memory, no random init cost
        return count_parameters(build_network(arch, **cfg))


@pytest.mark.parametrize("dataset", sorted(PUBLISHED))
def test_ncsnpp_parameter_counts_match_official(dataset):
    res, mult, published = PUBLISHED[dataset]
    counts = [
        _count("ncsnpp", img_resolution=res, in_channels=3, model_channels=c, channel_mult=mult, num_blocks=4,
               attn_resolutions=[16], augment_dim=9)  # fmt: skip
        for c in SCALES
    ]
    for c, n, ref in zip(SCALES, counts, published):
        assert abs(n - ref) <= 0.1 * ref, f"c{c}: {n} vs {ref}"
        assert _sig3(n) == ref, f"c{c}: {n} does not round to {ref}"
    assert tuple(counts) == EXACT[dataset]
    # parameters scale ≈ cbase²
    assert 3.8 < counts[-1] / counts[-2] < 4.1


def test_meta_and_real_construction_agree():
    cfg = dict(img_resolution=32, in_channels=3, model_channels=8, channel_mult=[2, 2, 2], num_blocks=4,
               attn_resolutions=[16], augment_dim=9)  # fmt: skip
    assert count_parameters(build_network("ncsnpp", **cfg)) == _count("ncsnpp", **cfg) == EXACT["cifar32"][1]


def test_other_archs_parameter_counts():
    # ADM at EDM's ImageNet-64 widths (unconditional: no label embedding); EDM quotes 296M with labels.
    adm = _count("adm", img_resolution=64, in_channels=3, model_channels=192, channel_mult=[1, 2, 3, 4], num_blocks=3,
                 attn_resolutions=[32, 16, 8])  # fmt: skip
    assert adm == 295_131_267
    # DDPM++ CIFAR-10 (EDM-VP, cres 2,2,2, augment_dim 9): EDM quotes 56M.
    vp = _count("ddpmpp", img_resolution=32, in_channels=3, model_channels=128, channel_mult=[2, 2, 2], num_blocks=4,
                attn_resolutions=[16], augment_dim=9)  # fmt: skip
    assert 55e6 < vp < 57e6


def _tiny_cfg(res, channels, mc, arch):
    mult = [1, 2] if res == 8 else [1, 2, 2]
    return dict(img_resolution=res, in_channels=channels, model_channels=mc, channel_mult=mult, num_blocks=1,
                attn_resolutions=[res // 2], augment_dim=9 if arch != "ddpmpp" else 0)  # fmt: skip


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res,channels", [(8, 1), (8, 3), (16, 1), (16, 3)])
@pytest.mark.parametrize("mc", [4, 8])
def test_forward_shape_finite_and_near_zero_at_init(arch, res, channels, mc):
    torch.manual_seed(0)
    net = build_network(arch, **_tiny_cfg(res, channels, mc, arch)).eval()
    x = torch.randn(2, channels, res, res)
    c_noise = torch.log(torch.tensor([0.02, 20.0])) / 4
    aug = torch.randn(2, 9) if arch != "ddpmpp" else None
    with torch.no_grad():
        y = net(x, c_noise, aug)
    assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()
    if arch == "adm":
        assert float(y.abs().max()) == 0.0  # zero-initialised output conv
    else:
        assert 0 < float(y.abs().max()) < 1e-3  # output conv scaled by 1e-5


def test_song_unet_uses_noise_and_augment_labels():
    torch.manual_seed(0)
    net = build_network("ncsnpp", **_tiny_cfg(8, 3, 8, "ncsnpp"))
    with torch.no_grad():
        net.out_conv.weight.normal_()  # undo the near-zero init so differences are visible
        x = torch.randn(2, 3, 8, 8)
        c = torch.zeros(2)
        base = net(x, c)
        assert not torch.allclose(base, net(x, c + 0.5))
        assert not torch.allclose(base, net(x, c, torch.randn(2, 9)))
        torch.testing.assert_close(base, net(x, c, torch.zeros(2, 9)))  # zero labels = no augmentation


def test_adm_attention_heads_and_forward():
    torch.manual_seed(0)
    net = build_network("adm", img_resolution=8, in_channels=3, model_channels=32, channel_mult=[2, 4], num_blocks=1,
                        attn_resolutions=[8, 4])  # fmt: skip
    heads = {name: blk.attn.heads for name, blk in [*net.enc.items(), *net.dec.items()] if getattr(blk, "attn", None)}
    assert heads["r8_block0"] == 1 and heads["r4_block0"] == 2 and heads["r4_in0"] == 2 and "r4_in1" not in heads
    with torch.no_grad():
        net.out_conv.weight.normal_()
        y = net(torch.randn(2, 3, 8, 8), torch.zeros(2))
    assert y.shape == (2, 3, 8, 8) and torch.isfinite(y).all()


def test_song_unet_structure():
    ve = build_network("ncsnpp", img_resolution=16, in_channels=3, model_channels=8, channel_mult=[1, 2, 2],
                       num_blocks=2, attn_resolutions=[])  # fmt: skip
    vp = build_network("ddpmpp", img_resolution=16, in_channels=3, model_channels=8, channel_mult=[1, 2, 2],
                       num_blocks=2, attn_resolutions=[8])  # fmt: skip
    assert isinstance(ve, SongUNet) and isinstance(vp, SongUNet)
    assert isinstance(ve.map_noise, FourierEmbedding) and "map_noise.freqs" in ve.state_dict()
    assert ve.map_noise.freqs.shape == (8,)  # noise channels 2·8, half of them frequencies
    assert ve.map_layer0.weight.shape == (32, 16) and vp.map_layer0.weight.shape == (32, 8)
    assert list(ve.enc_aux) == ["r8_down", "r4_down"] and len(vp.enc_aux) == 0
    assert ve.enc["r8_down"].conv0.fir.flatten().tolist() == pytest.approx([v / 64 for v in (1, 3, 3, 1, 3, 9, 9, 3, 3, 9, 9, 3, 1, 3, 3, 1)])
    assert vp.enc["r8_down"].conv0.fir.flatten().tolist() == [0.25] * 4
    # bottleneck attention always present; attention at 8 only in encoder blocks and the last decoder block
    assert ve.dec["r4_in0"].attn is not None and ve.dec["r4_in1"].attn is None
    assert all(b.attn is None for n, b in ve.enc.items() if n.endswith(("block0", "block1")))
    assert vp.enc["r8_block0"].attn is not None and vp.dec["r8_block2"].attn is not None and vp.dec["r8_block0"].attn is None
    assert vp.dec["r8_block0"].attn is None and vp.enc["r16_block0"].attn is None
    assert ve.out_norm.eps == 1e-6 and ve.enc["r16_block0"].norm0.eps == 1e-6
    adm = build_network("adm", img_resolution=8, in_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
                        attn_resolutions=[])  # fmt: skip
    assert isinstance(adm, DhariwalUNet) and adm.out_norm.eps == 1e-5 and adm.enc["r8_conv"].cout == 8
    assert adm.map_layer0.weight.shape == (32, 8) and adm.map_augment is None


def test_norm_groups():
    assert Norm(4).num_groups == 1 and Norm(24).num_groups == 6 and Norm(128).num_groups == 32
    assert Norm(256).num_groups == 32 and Norm(12).num_groups == 3
    assert Norm(132).num_groups == 22  # 32 does not divide 132: next divisor ≤ 32 with ≥ 4 channels per group


def test_same_seed_same_weights_including_fourier_frequencies():
    cfg = _tiny_cfg(16, 3, 8, "ncsnpp")
    torch.manual_seed(123)
    a = build_network("ncsnpp", **cfg).state_dict()
    torch.manual_seed(123)
    b = build_network("ncsnpp", **cfg).state_dict()
    torch.manual_seed(124)
    c = build_network("ncsnpp", **cfg).state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["map_noise.freqs"], c["map_noise.freqs"])
    assert not torch.equal(a["map_layer0.weight"], c["map_layer0.weight"])
    # frequencies are N(0, 16²)
    freqs = build_network("ncsnpp", img_resolution=8, in_channels=1, model_channels=512, channel_mult=[1], num_blocks=1,
                          attn_resolutions=[]).map_noise.freqs  # fmt: skip
    assert 12 < float(freqs.std()) < 20


@torch.no_grad()
def test_init_scales():
    torch.manual_seed(0)
    net = build_network("ddpmpp", img_resolution=16, in_channels=3, model_channels=16, channel_mult=[1, 2],
                        num_blocks=1, attn_resolutions=[8])  # fmt: skip
    blk = net.enc["r8_block0"]
    w = net.map_layer1.weight  # xavier_uniform: bound √(6/(fan_in+fan_out))
    assert float(w.abs().max()) <= math.sqrt(6 / (2 * 64)) and float(w.abs().max()) > 0.9 * math.sqrt(6 / (2 * 64))
    assert float(blk.conv1.weight.abs().max()) < 1e-5 and float(blk.conv1.weight.abs().max()) > 0
    assert float(blk.attn.proj.weight.abs().max()) < 1e-5
    bound_qkv = math.sqrt(0.2) * math.sqrt(6 / (32 + 96))
    assert 0.9 * bound_qkv < float(blk.attn.qkv.weight.abs().max()) <= bound_qkv
    assert all(float(p.abs().max()) == 0 for n, p in net.named_parameters() if n.endswith("bias") and "norm" not in n)
    adm = build_network("adm", img_resolution=8, in_channels=1, model_channels=8, channel_mult=[1, 2], num_blocks=1,
                        attn_resolutions=[], augment_dim=9)  # fmt: skip
    assert float(adm.map_augment.weight.abs().max()) == 0 and float(adm.out_conv.weight.abs().max()) == 0
    bound = math.sqrt(1 / 3) * math.sqrt(3 / 8)  # kaiming_uniform·√⅓, fan_in 8
    assert 0.8 * bound < float(adm.map_layer0.bias.abs().max()) <= bound


@pytest.mark.parametrize("arch", ARCHS)
def test_single_level_network(arch):
    """channel_mult of length 1: no resampling, the only level is the bottleneck."""
    torch.manual_seed(0)
    net = build_network(arch, img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1], num_blocks=1,
                        attn_resolutions=[])  # fmt: skip
    x = torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert net(x, torch.zeros(2)).shape == x.shape


def test_autocast_forward_keeps_shape():
    torch.manual_seed(0)
    net = build_network("ncsnpp", **_tiny_cfg(8, 3, 8, "ncsnpp"))
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x, torch.zeros(2))
    assert y.shape == x.shape and torch.isfinite(y.float()).all()


def test_float64_forward():
    torch.manual_seed(0)
    net = build_network("ncsnpp", **_tiny_cfg(8, 1, 4, "ncsnpp")).double()
    y = net(torch.randn(2, 1, 8, 8, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    assert y.dtype == torch.float64 and torch.isfinite(y).all()


def test_validation_errors():
    cfg = _tiny_cfg(8, 1, 4, "ddpmpp")
    with pytest.raises(ValueError, match="ncsnpp_xl"):
        build_network("ncsnpp_xl", **cfg)
    with pytest.raises(ValueError, match="img_resolution=12"):
        build_network("ddpmpp", **{**cfg, "img_resolution": 12, "channel_mult": [1, 2, 2, 2]})
    with pytest.raises(ValueError, match="model_channels"):
        build_network("adm", **{**cfg, "model_channels": 2})
