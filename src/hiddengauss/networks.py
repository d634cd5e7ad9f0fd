"""Denoiser backbones F(x_in; c_noise) of the paper's three EDM models.

* ``ncsnpp`` (EDM-VE): Song et al.'s U-Net with random-Fourier noise embedding, a residual
  encoder branch and [1,3,3,1] FIR resampling;
* ``ddpmpp`` (EDM-VP): the same U-Net with sinusoidal noise embedding, a plain encoder and
  [1,1] (box) resampling;
* ``adm`` (EDM-ADM): Dhariwal & Nichol's U-Net.

Written from the architecture descriptions (EDM paper appendix F and the Song / Dhariwal papers),
not from EDM's source. Layer widths, layer order, initialisation and parameter counts follow the
NVlabs EDM networks, so that the paper's "model scale" (``model_channels``, EDM's ``--cbase``)
means the same network: NCSN++ at 64×64, [1,2,2,2], 4 blocks, attention at 16, augment_dim 9 has
64,583 parameters at model_channels 4 and 62,761,091 at 128, as the official network.

Every backbone has the call signature ``net(x_in, c_noise, augment_labels=None)`` with
x_in of shape (B, C, H, W) and c_noise of shape (B,), and returns a tensor shaped like x_in.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

ARCHS = ("ncsnpp", "ddpmpp", "adm")

# The network each --arch of EDM's train.py builds by default (model_channels is the paper's
# "model scale", --cbase): SongUNet for DDPM++/NCSN++ (cres [2,2,2], 4 blocks, attention at 16),
# DhariwalUNet for ADM (192 channels, [1,2,3,4], 3 blocks, attention at 32/16/8, 64 channels per
# head). FFHQ-64 runs override channel_mult with --cres=1,2,2,2 (config/ffhq64.yaml).
EDM_PRESETS = {
    "ddpmpp": {"model_channels": 128, "channel_mult": [2, 2, 2], "num_blocks": 4, "attn_resolutions": [16]},
    "ncsnpp": {"model_channels": 128, "channel_mult": [2, 2, 2], "num_blocks": 4, "attn_resolutions": [16]},
    "adm": {"model_channels": 192, "channel_mult": [1, 2, 3, 4], "num_blocks": 3, "attn_resolutions": [32, 16, 8]},
}


# ----------------------------------------------------------------------------------------------
# Initialisation and primitive layers


def _init_tensor(shape: Sequence[int], mode: str, fan_in: int, fan_out: int, scale: float) -> torch.Tensor:
    """U(−b, b)·scale with b = √(6/(fan_in+fan_out)) (xavier_uniform) or √(3/fan_in) (kaiming_uniform)."""
    bound = {"xavier_uniform": math.sqrt(6 / (fan_in + fan_out)), "kaiming_uniform": math.sqrt(3 / fan_in)}[mode]
    return (torch.rand(*shape) * 2 - 1) * (bound * scale)


class Dense(nn.Module):
    """Fully connected layer y = W·x + b; W is initialised by ``mode``·w_scale, b by ``mode``·b_scale."""

    def __init__(self, cin: int, cout: int, bias: bool = True, mode: str = "xavier_uniform",
                 w_scale: float = 1.0, b_scale: float = 0.0):  # fmt: skip
        super().__init__()
        self.weight = nn.Parameter(_init_tensor((cout, cin), mode, cin, cout, w_scale))
        self.bias = nn.Parameter(_init_tensor((cout,), mode, cin, cout, b_scale)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


def fir_filter(taps: Sequence[float]) -> torch.Tensor:
    """Separable 2-D FIR kernel f·fᵀ/(Σf)², shape (1, 1, k, k)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    return (torch.outer(f, f) / f.sum() ** 2)[None, None]


def fir_upsample(x: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """2× up-sampling: depthwise transposed convolution (stride 2) with the filter ×4."""
    c = x.shape[1]
    return F.conv_transpose2d(x, (fir * 4).repeat(c, 1, 1, 1), stride=2, padding=(fir.shape[-1] - 1) // 2, groups=c)


def fir_downsample(x: torch.Tensor, fir: torch.Tensor, padding: int | None = None) -> torch.Tensor:
    """2× down-sampling: depthwise strided convolution (stride 2) with the filter."""
    c = x.shape[1]
    pad = (fir.shape[-1] - 1) // 2 if padding is None else padding
    return F.conv2d(x, fir.repeat(c, 1, 1, 1), stride=2, padding=pad, groups=c)


class Conv(nn.Module):
    """k×k convolution (k = 0: none), optionally preceded by FIR 2× up- or down-sampling.

    ``fused_down`` applies the convolution first, zero-padded by the filter's half-width as
    well, and then the strided filter, i.e. the down-sampling and the convolution act as one
    larger strided kernel (used by NCSN++'s residual encoder branch).
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True, resample: str | None = None,
                 fir: Sequence[float] = (1, 1), fused_down: bool = False, mode: str = "xavier_uniform",
                 w_scale: float = 1.0, b_scale: float = 0.0):  # fmt: skip
        super().__init__()
        assert resample in (None, "up", "down") and not (fused_down and resample != "down")
        self.cin, self.cout, self.kernel, self.resample, self.fused_down = cin, cout, kernel, resample, fused_down
        fan_in, fan_out = cin * kernel**2, cout * kernel**2
        self.weight = nn.Parameter(_init_tensor((cout, cin, kernel, kernel), mode, fan_in, fan_out, w_scale)) if kernel else None
        self.bias = nn.Parameter(_init_tensor((cout,), mode, fan_in, fan_out, b_scale)) if kernel and bias else None
        self.register_buffer("fir", fir_filter(fir) if resample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fir = None if self.fir is None else self.fir.to(x.dtype)
        weight = None if self.weight is None else self.weight.to(x.dtype)
        if self.fused_down and self.kernel:
            x = F.conv2d(x, weight, padding=self.kernel // 2 + (fir.shape[-1] - 1) // 2)
            x = fir_downsample(x, fir, padding=0)
        else:
            if self.resample == "up":
                x = fir_upsample(x, fir)
            elif self.resample == "down":
                x = fir_downsample(x, fir)
            if self.kernel:
                x = F.conv2d(x, weight, padding=self.kernel // 2)
        return x if self.bias is None else x + self.bias.to(x.dtype)[:, None, None]


class Norm(nn.GroupNorm):
    """GroupNorm with min(32, C/4) groups (≥ 4 channels per group, so widths down to 4 work).

    If that group count does not divide C (where the EDM layer would fail) the next smaller
    divisor is used; the parameter count (2C) is the same either way.
    """

    def __init__(self, channels: int, eps: float = 1e-5):
        groups = max(min(32, channels // 4), 1)
        while channels % groups:
            groups -= 1
        super().__init__(num_groups=groups, num_channels=channels, eps=eps)


# ----------------------------------------------------------------------------------------------
# U-Net blocks


class SelfAttention(nn.Module):
    """Multi-head self-attention over pixels: x + proj(softmax(qᵀk/√c)·v), times ``skip_scale``.

    q, k, v come from one 1×1 convolution of the group-normalised input; the logits and the
    softmax are evaluated in float32 (autocast is switched off for them).
    """

    def __init__(self, channels: int, heads: int, eps: float, qkv_init: dict, proj_init: dict, skip_scale: float):
        super().__init__()
        self.heads, self.skip_scale = heads, skip_scale
        self.norm = Norm(channels, eps)
        self.qkv = Conv(channels, channels * 3, 1, **qkv_init)
        self.proj = Conv(channels, channels, 1, **proj_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b * self.heads, c // self.heads, 3, h * w).unbind(2)
        no_autocast = (torch.autocast(x.device.type, enabled=False) if torch.amp.is_autocast_available(x.device.type)
                       else contextlib.nullcontext())  # fmt: skip
        with no_autocast:  # float32 logits and softmax even under autocast
            logits = torch.einsum("ncq,nck->nqk", q.float(), k.float()) / math.sqrt(q.shape[1])
            weights = logits.softmax(dim=2)
        out = torch.einsum("nqk,nck->ncq", weights.to(v.dtype), v)
        return (x + self.proj(out.reshape(b, c, h, w))) * self.skip_scale


class ResBlock(nn.Module):
    """Residual block conditioned on the embedding, with optional resampling and attention.

    h = conv0(SiLU(GN(x)))  (conv0 also up/down-samples), then the embedding enters either as an
    additive bias (h = SiLU(GN(h + A·emb))) or, with ``adaptive_scale``, as a scale and shift
    (h = SiLU(GN(h)·(1 + s) + t)); h = conv1(dropout(h)); out = (h + skip(x))·skip_scale, where
    skip is the identity, or a 1×1 conv (a pure resampling if ``resample_proj`` is off and the
    width is kept) when the width or resolution changes. A :class:`SelfAttention` follows if
    ``heads`` > 0.
    """

    def __init__(self, cin: int, cout: int, emb_channels: int, *, resample: str | None = None, heads: int = 0,
                 dropout: float = 0.0, skip_scale: float = 1.0, eps: float = 1e-5, fir: Sequence[float] = (1, 1),
                 resample_proj: bool = False, adaptive_scale: bool = True, init: dict, init_zero: dict,
                 init_attn: dict | None = None):  # fmt: skip
        super().__init__()
        self.cin, self.cout = cin, cout
        self.dropout, self.skip_scale, self.adaptive_scale = dropout, skip_scale, adaptive_scale
        self.norm0 = Norm(cin, eps)
        self.conv0 = Conv(cin, cout, 3, resample=resample, fir=fir, **init)
        self.affine = Dense(emb_channels, cout * (2 if adaptive_scale else 1), **init)
        self.norm1 = Norm(cout, eps)
        self.conv1 = Conv(cout, cout, 3, **init_zero)
        self.skip = None
        if cout != cin or resample:
            kernel = 1 if (resample_proj or cout != cin) else 0
            self.skip = Conv(cin, cout, kernel, resample=resample, fir=fir, **init)
        self.attn = SelfAttention(cout, heads, eps, init_attn or init, init_zero, skip_scale) if heads else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv0(F.silu(self.norm0(x)))
        e = self.affine(emb)[:, :, None, None].to(h.dtype)
        if self.adaptive_scale:
            scale, shift = e.chunk(2, dim=1)
            h = F.silu(self.norm1(h) * (scale + 1) + shift)
        else:
            h = F.silu(self.norm1(h + e))
        h = self.conv1(F.dropout(h, p=self.dropout, training=self.training))
        h = (h + (x if self.skip is None else self.skip(x))) * self.skip_scale
        return h if self.attn is None else self.attn(h)


# ----------------------------------------------------------------------------------------------
# Noise-level embeddings


class SinusoidalEmbedding(nn.Module):
    """Transformer-style embedding of c_noise: cos(c·ω_j) and sin(c·ω_j), ω_j = (1/max_positions)^(j/(J−e)).

    j = 0…J−1 with J = channels/2 and e = 1 if ``endpoint`` else 0. ``sin_first`` puts the sine
    half first (the order the NCSN++/DDPM++ mapping network sees).
    """

    def __init__(self, channels: int, max_positions: int = 10000, endpoint: bool = False, sin_first: bool = False):
        super().__init__()
        self.channels, self.max_positions, self.endpoint, self.sin_first = channels, max_positions, endpoint, sin_first

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        half = self.channels // 2
        exponent = torch.arange(half, dtype=torch.float32, device=c.device) / (half - int(self.endpoint))
        arg = torch.outer(c, ((1 / self.max_positions) ** exponent).to(c.dtype))
        return torch.cat([arg.sin(), arg.cos()] if self.sin_first else [arg.cos(), arg.sin()], dim=1)


class FourierEmbedding(nn.Module):
    """Random Fourier features of c_noise: sin(2π·f_j·c) and cos(2π·f_j·c), f_j ~ N(0, scale²).

    The frequencies are a buffer drawn once at construction (so they are saved with the weights).
    """

    def __init__(self, channels: int, scale: float = 16.0):
        super().__init__()
        self.register_buffer("freqs", torch.randn(channels // 2) * scale)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        arg = torch.outer(c, (2 * math.pi * self.freqs).to(c.dtype))
        return torch.cat([arg.sin(), arg.cos()], dim=1)


# ----------------------------------------------------------------------------------------------
# U-Nets


class _UNet(nn.Module):
    """Shared skeleton: noise mapping network, encoder with skip connections, decoder, output head.

    Mapping: emb = SiLU(map_layer1(SiLU(map_layer0(embed(c_noise) [+ map_augment(aug)])))).
    Encoder level ℓ (resolution res/2^ℓ, width model_channels·mult_ℓ): level 0 starts with a 3×3
    conv, later levels with a down-sampling block; then ``num_blocks`` blocks. Every encoder output
    is kept as a skip. Decoder, from the lowest resolution up: two blocks ``in0`` (with attention)
    and ``in1`` at the bottom, an up-sampling block elsewhere; then ``num_blocks + 1`` blocks that
    each concatenate one skip. Output: GroupNorm → SiLU → 3×3 conv.
    """

    def _build(self, *, img_resolution: int, in_channels: int, out_channels: int, model_channels: int,
               channel_mult: Sequence[int], num_blocks: int, first_width: int, block: dict,
               enc_heads: Callable[[int, int], int], dec_heads: Callable[[int, int, int], int],
               bottom_heads: Callable[[int], int], residual_aux: dict | None, out_eps: float,
               out_init: dict) -> None:  # fmt: skip
        """Create the layers. ``block`` holds the network-wide :class:`ResBlock` settings; the
        ``*_heads`` callables give the attention heads of an encoder block (res, width), a decoder
        block (res, index, width) and the bottleneck block ``in0`` (width); ``residual_aux`` is the
        init of NCSN++'s input-pyramid convs (None: no such branch)."""
        self.img_resolution, self.in_channels, self.out_channels = img_resolution, in_channels, out_channels
        self.enc, self.enc_aux, self.dec = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        self.dec_takes_skip: set[str] = set()
        widths, c, c_aux = [], in_channels, in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                self.enc[f"r{res}_conv"] = Conv(c, first_width, 3, **block["init"])
                c = first_width
            else:
                self.enc[f"r{res}_down"] = self._block(block, c, c, resample="down")
                if residual_aux is not None:  # image-pyramid branch: fused FIR-down 3×3 conv
                    self.enc_aux[f"r{res}_down"] = Conv(c_aux, c, 3, resample="down", fused_down=True, **residual_aux)
                    c_aux = c
            widths.append(c)
            for i in range(num_blocks):
                cout = model_channels * mult
                self.enc[f"r{res}_block{i}"] = self._block(block, c, cout, heads=enc_heads(res, cout))
                widths.append(c := cout)
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"r{res}_in0"] = self._block(block, c, c, heads=bottom_heads(c))
                self.dec[f"r{res}_in1"] = self._block(block, c, c)
            else:
                self.dec[f"r{res}_up"] = self._block(block, c, c, resample="up")
            for i in range(num_blocks + 1):
                cout = model_channels * mult
                name = f"r{res}_block{i}"
                self.dec[name] = self._block(block, c + widths.pop(), cout, heads=dec_heads(res, i, cout))
                self.dec_takes_skip.add(name)
                c = cout
        self.out_norm = Norm(c, eps=out_eps)
        self.out_conv = Conv(c, out_channels, 3, **out_init)

    @staticmethod
    def _block(block: dict, cin: int, cout: int, **kw) -> ResBlock:
        """A :class:`ResBlock` with the network-wide settings ``block`` and per-block ``kw``."""
        return ResBlock(cin, cout, **{**block, **kw})

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.map_noise(c_noise)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels.to(emb.dtype))
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        skips, aux = [], x
        for name, layer in self.enc.items():
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
            if name in self.enc_aux:  # NCSN++ residual encoder: (x + aux_conv(aux))/√2 feeds both paths
                x = aux = (x + self.enc_aux[name](aux)) / math.sqrt(2)
            skips.append(x)
        for name, layer in self.dec.items():
            if name in self.dec_takes_skip:
                x = torch.cat([x, skips.pop()], dim=1)
            x = layer(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


class SongUNet(_UNet):
    """DDPM++ / NCSN++ U-Net (Song et al. 2021) in EDM's configuration.

    Xavier-uniform init (biases 0), 1e-5-scaled init of every block's second conv, of the attention
    output projection and of the output conv, √0.2-scaled QKV; single-head attention at
    ``attn_resolutions`` (last decoder block of a level only) and at the bottleneck; blocks without
    adaptive scale, skip scale √½, GroupNorm eps 1e-6, 1×1 projection on resampling skips.
    Noise embedding of width model_channels·channel_mult_noise, either sinusoidal (endpoint, sine
    half first) or random Fourier (scale 16); embedding width model_channels·channel_mult_emb.
    ``encoder_type='residual'`` adds NCSN++'s input-pyramid branch.
    """

    def __init__(self, img_resolution: int, in_channels: int, out_channels: int, augment_dim: int = 0,
                 model_channels: int = 128, channel_mult: Sequence[int] = (1, 2, 2, 2), channel_mult_emb: int = 4,
                 num_blocks: int = 4, attn_resolutions: Sequence[int] = (16,), dropout: float = 0.10,
                 embedding_type: str = "positional", channel_mult_noise: int = 1, encoder_type: str = "standard",
                 resample_filter: Sequence[float] = (1, 1)):  # fmt: skip
        super().__init__()
        if embedding_type not in ("positional", "fourier") or encoder_type not in ("standard", "residual"):
            raise ValueError(f"unsupported embedding_type {embedding_type!r} / encoder_type {encoder_type!r}")
        emb_ch, noise_ch = model_channels * channel_mult_emb, model_channels * channel_mult_noise
        init = {"mode": "xavier_uniform"}
        init_zero = {"mode": "xavier_uniform", "w_scale": 1e-5}
        block = dict(emb_channels=emb_ch, dropout=dropout, skip_scale=math.sqrt(0.5), eps=1e-6, fir=tuple(resample_filter),
                     resample_proj=True, adaptive_scale=False, init=init, init_zero=init_zero,
                     init_attn={"mode": "xavier_uniform", "w_scale": math.sqrt(0.2)})  # fmt: skip
        self.map_noise = (SinusoidalEmbedding(noise_ch, endpoint=True, sin_first=True) if embedding_type == "positional"
                          else FourierEmbedding(noise_ch))  # fmt: skip
        self.map_augment = Dense(augment_dim, noise_ch, bias=False, **init) if augment_dim else None
        self.map_layer0 = Dense(noise_ch, emb_ch, **init)
        self.map_layer1 = Dense(emb_ch, emb_ch, **init)
        attn = set(attn_resolutions)
        self._build(
            img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels,
            model_channels=model_channels, channel_mult=channel_mult, num_blocks=num_blocks,
            first_width=model_channels, block=block,
            enc_heads=lambda res, c: int(res in attn), dec_heads=lambda res, i, c: int(i == num_blocks and res in attn),
            bottom_heads=lambda c: 1, residual_aux=(dict(init, fir=tuple(resample_filter)) if encoder_type == "residual" else None),
            out_eps=1e-6, out_init=init_zero,
        )  # fmt: skip


class DhariwalUNet(_UNet):
    """ADM U-Net (Dhariwal & Nichol 2021) in EDM's configuration.

    Kaiming-uniform init scaled by √⅓ (weights and biases); zero init of every block's second conv,
    the attention output projection, the augmentation mapping and the output conv. Blocks with
    adaptive scale/shift from the embedding, skip scale 1, GroupNorm eps 1e-5, box-filter
    resampling without skip projection; attention with 64 channels per head at every encoder and
    decoder block whose resolution is in ``attn_resolutions``, and at the bottleneck. As in EDM,
    a width below 64 gives 0 heads, i.e. no attention layer. Noise embedding: sinusoidal of width
    model_channels (no endpoint, cosine half first).
    """

    def __init__(self, img_resolution: int, in_channels: int, out_channels: int, augment_dim: int = 0,
                 model_channels: int = 192, channel_mult: Sequence[int] = (1, 2, 3, 4), channel_mult_emb: int = 4,
                 num_blocks: int = 3, attn_resolutions: Sequence[int] = (32, 16, 8), dropout: float = 0.10,
                 channels_per_head: int = 64):  # fmt: skip
        super().__init__()
        emb_ch = model_channels * channel_mult_emb
        s = math.sqrt(1 / 3)
        init = {"mode": "kaiming_uniform", "w_scale": s, "b_scale": s}
        init_zero = {"mode": "kaiming_uniform", "w_scale": 0.0, "b_scale": 0.0}
        block = dict(emb_channels=emb_ch, dropout=dropout, init=init, init_zero=init_zero)
        self.map_noise = SinusoidalEmbedding(model_channels)
        self.map_augment = Dense(augment_dim, model_channels, bias=False, **init_zero) if augment_dim else None
        self.map_layer0 = Dense(model_channels, emb_ch, **init)
        self.map_layer1 = Dense(emb_ch, emb_ch, **init)
        attn = set(attn_resolutions)
        heads = lambda c: c // channels_per_head  # noqa: E731
        self._build(
            img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels,
            model_channels=model_channels, channel_mult=channel_mult, num_blocks=num_blocks,
            first_width=model_channels * channel_mult[0], block=block,
            enc_heads=lambda res, c: heads(c) if res in attn else 0, dec_heads=lambda res, i, c: heads(c) if res in attn else 0,
            bottom_heads=heads, residual_aux=None, out_eps=1e-5, out_init=init_zero,
        )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Factory


def build_network(arch: str, *, img_resolution: int, in_channels: int, model_channels: int,
                  channel_mult: Sequence[int], num_blocks: int, attn_resolutions: Sequence[int],
                  dropout: float = 0.0, augment_dim: int = 0) -> nn.Module:  # fmt: skip
    """The backbone F for ``arch`` (output channels = input channels).

    * ``ncsnpp``: SongUNet, Fourier embedding, channel_mult_noise 2, residual encoder, filter [1,3,3,1];
    * ``ddpmpp``: SongUNet, sinusoidal embedding, channel_mult_noise 1, standard encoder, filter [1,1];
    * ``adm``: DhariwalUNet with the given widths.
    """
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {', '.join(ARCHS)}")
    if model_channels < 4:
        raise ValueError(f"model_channels={model_channels} is too small: GroupNorm needs at least 4 channels")
    if not channel_mult or num_blocks < 1:
        raise ValueError(f"need a non-empty channel_mult and num_blocks >= 1, got {list(channel_mult)} and {num_blocks}")
    levels = len(channel_mult) - 1
    if img_resolution < 2**levels or img_resolution % 2**levels:
        raise ValueError(
            f"img_resolution={img_resolution} is not divisible by 2^{levels} = {2**levels} "
            f"(channel_mult {list(channel_mult)} has {levels + 1} levels)"
        )
    common = dict(img_resolution=img_resolution, in_channels=in_channels, out_channels=in_channels,
                  augment_dim=augment_dim, model_channels=model_channels, channel_mult=list(channel_mult),
                  num_blocks=num_blocks, attn_resolutions=list(attn_resolutions), dropout=dropout)  # fmt: skip
    if arch == "adm":
        return DhariwalUNet(**common)
    if arch == "ncsnpp":
        return SongUNet(**common, embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                        resample_filter=(1, 3, 3, 1))  # fmt: skip
    return SongUNet(**common, embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                    resample_filter=(1, 1))  # fmt: skip


def count_parameters(module: nn.Module) -> int:
    """Number of trainable-parameter entries (buffers such as Fourier frequencies excluded)."""
    return sum(p.numel() for p in module.parameters())
