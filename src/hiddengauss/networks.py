"""Denoiser backbones F(x; c_noise) of the paper: DDPM++ / NCSN++ (Song et al.) and ADM (Dhariwal & Nichol).

Written from the architecture descriptions in EDM (Karras et al. 2022, appendix F) so that the
layer structure, initialisation and parameter counts match the official networks:

* ``ddpmpp`` — SongUNet with positional noise embedding, standard encoder, [1,1] resampling (EDM-VP);
* ``ncsnpp`` — SongUNet with Fourier noise embedding, residual encoder, [1,3,3,1] FIR resampling (EDM-VE);
* ``adm`` — the ADM U-Net (EDM-ADM).

The capacity knob of the paper ("model scale") is ``model_channels``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _init(shape, mode: str, fan_in: int, fan_out: int) -> torch.Tensor:
    if mode == "xavier_uniform":
        return math.sqrt(6 / (fan_in + fan_out)) * (torch.rand(*shape) * 2 - 1)
    if mode == "kaiming_uniform":
        return math.sqrt(3 / fan_in) * (torch.rand(*shape) * 2 - 1)
    raise ValueError(f"unknown init mode {mode}")


class Dense(nn.Module):
    """Fully connected layer with EDM-style initialisation."""

    def __init__(self, cin: int, cout: int, bias=True, mode="xavier_uniform", w_scale=1.0, b_scale=0.0):
        super().__init__()
        self.weight = nn.Parameter(_init((cout, cin), mode, cin, cout) * w_scale)
        self.bias = nn.Parameter(_init((cout,), mode, cin, cout) * b_scale) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight.to(x.dtype), None if self.bias is None else self.bias.to(x.dtype))


class Conv(nn.Module):
    """k×k convolution with optional 2× up/down-sampling by a separable FIR filter.

    ``kernel=0`` gives a pure resampling layer. ``fused`` applies the filter and the
    convolution in one padded pass (the NCSN++ residual encoder branch).
    """

    def __init__(self, cin, cout, kernel, bias=True, up=False, down=False, fir=(1, 1), fused=False,
                 mode="xavier_uniform", w_scale=1.0, b_scale=0.0):  # fmt: skip
        super().__init__()
        self.cin, self.cout, self.up, self.down, self.fused = cin, cout, up, down, fused
        fan_in, fan_out = cin * kernel * kernel, cout * kernel * kernel
        self.weight = nn.Parameter(_init((cout, cin, kernel, kernel), mode, fan_in, fan_out) * w_scale) if kernel else None
        self.bias = nn.Parameter(_init((cout,), mode, fan_in, fan_out) * b_scale) if kernel and bias else None
        f = torch.as_tensor(fir, dtype=torch.float32)
        self.register_buffer("fir", (torch.outer(f, f) / f.sum() ** 2)[None, None] if up or down else None)

    def forward(self, x):
        w = None if self.weight is None else self.weight.to(x.dtype)
        f = None if self.fir is None else self.fir.to(x.dtype)
        w_pad = w.shape[-1] // 2 if w is not None else 0
        f_pad = (f.shape[-1] - 1) // 2 if f is not None else 0
        if self.fused and self.up and w is not None:
            x = F.conv_transpose2d(x, (f * 4).tile(self.cin, 1, 1, 1), groups=self.cin, stride=2, padding=max(f_pad - w_pad, 0))
            x = F.conv2d(x, w, padding=max(w_pad - f_pad, 0))
        elif self.fused and self.down and w is not None:
            x = F.conv2d(x, w, padding=w_pad + f_pad)
            x = F.conv2d(x, f.tile(self.cout, 1, 1, 1), groups=self.cout, stride=2)
        else:
            if self.up:
                x = F.conv_transpose2d(x, (f * 4).tile(self.cin, 1, 1, 1), groups=self.cin, stride=2, padding=f_pad)
            if self.down:
                x = F.conv2d(x, f.tile(self.cin, 1, 1, 1), groups=self.cin, stride=2, padding=f_pad)
            if w is not None:
                x = F.conv2d(x, w, padding=w_pad)
        if self.bias is not None:
            x = x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return x


class Norm(nn.GroupNorm):
    """GroupNorm with min(32, C/4) groups, so that widths down to 4 channels work."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__(num_groups=min(32, max(channels // 4, 1)), num_channels=channels, eps=eps)


class Block(nn.Module):
    """Residual block (GroupNorm–SiLU–conv ×2, noise-embedding modulation) with optional
    up/down-sampling and an optional self-attention layer after it."""

    def __init__(self, cin, cout, emb_channels, up=False, down=False, attention=False, heads=None,
                 channels_per_head=64, dropout=0.0, skip_scale=1.0, eps=1e-5, fir=(1, 1),
                 resample_proj=False, adaptive_scale=True, init=None, init_zero=None, init_attn=None):  # fmt: skip
        super().__init__()
        init = init or {}
        init_zero = init_zero or {"w_scale": 0.0}
        self.cin, self.cout = cin, cout
        self.heads = 0 if not attention else (heads if heads is not None else cout // channels_per_head)
        self.dropout, self.skip_scale, self.adaptive_scale = dropout, skip_scale, adaptive_scale
        self.norm0 = Norm(cin, eps)
        self.conv0 = Conv(cin, cout, 3, up=up, down=down, fir=fir, **init)
        self.affine = Dense(emb_channels, cout * (2 if adaptive_scale else 1), **init)
        self.norm1 = Norm(cout, eps)
        self.conv1 = Conv(cout, cout, 3, **init_zero)
        self.skip = None
        if cout != cin or up or down:
            k = 1 if resample_proj or cout != cin else 0
            self.skip = Conv(cin, cout, k, up=up, down=down, fir=fir, **init)
        if self.heads:
            self.norm2 = Norm(cout, eps)
            self.qkv = Conv(cout, cout * 3, 1, **(init_attn if init_attn is not None else init))
            self.proj = Conv(cout, cout, 1, **init_zero)

    def forward(self, x, emb):
        orig = x
        x = self.conv0(F.silu(self.norm0(x)))
        p = self.affine(emb)[:, :, None, None].to(x.dtype)
        if self.adaptive_scale:
            scale, shift = p.chunk(2, dim=1)
            x = F.silu(torch.addcmul(shift, self.norm1(x), scale + 1))
        else:
            x = F.silu(self.norm1(x + p))
        x = self.conv1(F.dropout(x, p=self.dropout, training=self.training))
        x = (x + (self.skip(orig) if self.skip is not None else orig)) * self.skip_scale
        if self.heads:
            n, c, h, w = x.shape
            q, k, v = self.qkv(self.norm2(x)).reshape(n * self.heads, c // self.heads, 3, h * w).unbind(2)
            logits = torch.einsum("ncq,nck->nqk", q.float(), k.float() / math.sqrt(q.shape[1]))
            a = torch.einsum("nqk,nck->ncq", logits.softmax(dim=2).to(v.dtype), v)
            x = (self.proj(a.reshape(n, c, h, w)) + x) * self.skip_scale
        return x


class PositionalEmbedding(nn.Module):
    """Transformer sinusoidal embedding of the noise label: [cos(c·ω_j), sin(c·ω_j)]."""

    def __init__(self, channels: int, max_positions: int = 10000, endpoint: bool = False):
        super().__init__()
        self.channels, self.max_positions, self.endpoint = channels, max_positions, endpoint

    def forward(self, x):
        half = self.channels // 2
        freqs = torch.arange(half, dtype=torch.float32, device=x.device) / (half - (1 if self.endpoint else 0))
        freqs = (1 / self.max_positions) ** freqs
        x = torch.outer(x, freqs.to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class FourierEmbedding(nn.Module):
    """Random Fourier features of the noise label: [cos(2π c f_j), sin(2π c f_j)], f_j ~ N(0, scale²)."""

    def __init__(self, channels: int, scale: float = 16):
        super().__init__()
        self.register_buffer("freqs", torch.randn(channels // 2) * scale)

    def forward(self, x):
        x = torch.outer(x, (2 * np.pi * self.freqs).to(x.dtype))
        return torch.cat([x.cos(), x.sin()], dim=1)


class SongUNet(nn.Module):
    """DDPM++ / NCSN++ U-Net (Song et al. 2021) as configured in EDM."""

    def __init__(self, img_resolution, in_channels, out_channels, augment_dim=0, model_channels=128,
                 channel_mult=(1, 2, 2, 2), channel_mult_emb=4, num_blocks=4, attn_resolutions=(16,),
                 dropout=0.10, embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                 fir=(1, 1)):  # fmt: skip
        super().__init__()
        self.img_resolution, self.in_channels = img_resolution, in_channels
        emb_ch, noise_ch = model_channels * channel_mult_emb, model_channels * channel_mult_noise
        init = {"mode": "xavier_uniform"}
        init_zero = {"mode": "xavier_uniform", "w_scale": 1e-5}
        kw = dict(emb_channels=emb_ch, heads=1, dropout=dropout, skip_scale=math.sqrt(0.5), eps=1e-6, fir=fir,
                  resample_proj=True, adaptive_scale=False, init=init, init_zero=init_zero,
                  init_attn={"mode": "xavier_uniform", "w_scale": math.sqrt(0.2)})  # fmt: skip
        self.map_noise = (PositionalEmbedding(noise_ch, endpoint=True) if embedding_type == "positional"
                          else FourierEmbedding(noise_ch))  # fmt: skip
        self.map_augment = Dense(augment_dim, noise_ch, bias=False, **init) if augment_dim else None
        self.map_layer0 = Dense(noise_ch, emb_ch, **init)
        self.map_layer1 = Dense(emb_ch, emb_ch, **init)

        self.enc = nn.ModuleDict()
        cout = caux = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cout, cin = model_channels, cout
                self.enc[f"{res}_conv"] = Conv(cin, cout, 3, **init)
            else:
                self.enc[f"{res}_down"] = Block(cout, cout, down=True, **kw)
                if encoder_type == "residual":
                    self.enc[f"{res}_aux_residual"] = Conv(caux, cout, 3, down=True, fir=fir, fused=True, **init)
                    caux = cout
            for i in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}_block{i}"] = Block(cin, cout, attention=res in attn_resolutions, **kw)
        skips = [m.cout for name, m in self.enc.items() if "aux" not in name]

        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}_in0"] = Block(cout, cout, attention=True, **kw)
                self.dec[f"{res}_in1"] = Block(cout, cout, **kw)
            else:
                self.dec[f"{res}_up"] = Block(cout, cout, up=True, **kw)
            for i in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}_block{i}"] = Block(cin, cout, attention=(i == num_blocks and res in attn_resolutions), **kw)
        self.out_norm = Norm(cout, eps=1e-6)
        self.out_conv = Conv(cout, out_channels, 3, **init_zero)

    def forward(self, x, noise_labels, augment_labels=None):
        emb = self.map_noise(noise_labels)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(emb.shape)  # sin/cos order as in NCSN++
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        skips, aux = [], x
        for name, block in self.enc.items():
            if "aux_residual" in name:
                x = skips[-1] = aux = (x + block(aux)) / math.sqrt(2)
            else:
                x = block(x, emb) if isinstance(block, Block) else block(x)
                skips.append(x)
        for block in self.dec.values():
            if x.shape[1] != block.cin:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


class DhariwalUNet(nn.Module):
    """ADM U-Net (Dhariwal & Nichol 2021) as configured in EDM."""

    def __init__(self, img_resolution, in_channels, out_channels, augment_dim=0, model_channels=192,
                 channel_mult=(1, 2, 3, 4), channel_mult_emb=4, num_blocks=3, attn_resolutions=(32, 16, 8),
                 dropout=0.10):  # fmt: skip
        super().__init__()
        self.img_resolution, self.in_channels = img_resolution, in_channels
        emb_ch = model_channels * channel_mult_emb
        s = math.sqrt(1 / 3)
        init = {"mode": "kaiming_uniform", "w_scale": s, "b_scale": s}
        init_zero = {"mode": "kaiming_uniform", "w_scale": 0.0, "b_scale": 0.0}
        kw = dict(emb_channels=emb_ch, channels_per_head=64, dropout=dropout, init=init, init_zero=init_zero)
        self.map_noise = PositionalEmbedding(model_channels)
        self.map_augment = Dense(augment_dim, model_channels, bias=False, **init_zero) if augment_dim else None
        self.map_layer0 = Dense(model_channels, emb_ch, **init)
        self.map_layer1 = Dense(emb_ch, emb_ch, **init)

        self.enc = nn.ModuleDict()
        cout = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}_conv"] = Conv(cin, cout, 3, **init)
            else:
                self.enc[f"{res}_down"] = Block(cout, cout, down=True, **kw)
            for i in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}_block{i}"] = Block(cin, cout, attention=res in attn_resolutions, **kw)
        skips = [m.cout for m in self.enc.values()]
        self.dec = nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}_in0"] = Block(cout, cout, attention=True, **kw)
                self.dec[f"{res}_in1"] = Block(cout, cout, **kw)
            else:
                self.dec[f"{res}_up"] = Block(cout, cout, up=True, **kw)
            for i in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}_block{i}"] = Block(cin, cout, attention=res in attn_resolutions, **kw)
        self.out_norm = Norm(cout)
        self.out_conv = Conv(cout, out_channels, 3, **init_zero)

    def forward(self, x, noise_labels, augment_labels=None):
        emb = self.map_noise(noise_labels)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels)
        emb = F.silu(self.map_layer1(F.silu(self.map_layer0(emb))))
        skips = []
        for block in self.enc.values():
            x = block(x, emb) if isinstance(block, Block) else block(x)
            skips.append(x)
        for block in self.dec.values():
            if x.shape[1] != block.cin:
                x = torch.cat([x, skips.pop()], dim=1)
            x = block(x, emb)
        return self.out_conv(F.silu(self.out_norm(x)))


ARCHS = ("ncsnpp", "ddpmpp", "adm")


def build_network(arch: str, *, img_resolution: int, in_channels: int, model_channels: int,
                  channel_mult: list[int], num_blocks: int, attn_resolutions: list[int],
                  dropout: float = 0.0, augment_dim: int = 0) -> nn.Module:  # fmt: skip
    """The backbone F for ``arch`` in {ncsnpp, ddpmpp, adm} (output channels = input channels)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; allowed: {', '.join(ARCHS)}")
    if model_channels < 4:
        raise ValueError(f"model_channels must be >= 4 (GroupNorm needs 4 channels per group), got {model_channels}")
    levels = len(channel_mult)
    if img_resolution % (2 ** (levels - 1)):
        raise ValueError(f"resolution {img_resolution} is not divisible by 2^{levels - 1} for channel_mult {list(channel_mult)}")
    common = dict(img_resolution=img_resolution, in_channels=in_channels, out_channels=in_channels,
                  augment_dim=augment_dim, model_channels=model_channels, channel_mult=list(channel_mult),
                  num_blocks=num_blocks, attn_resolutions=list(attn_resolutions), dropout=dropout)  # fmt: skip
    if arch == "adm":
        return DhariwalUNet(**common)
    if arch == "ncsnpp":
        return SongUNet(**common, embedding_type="fourier", channel_mult_noise=2, encoder_type="residual", fir=(1, 3, 3, 1))
    return SongUNet(**common, embedding_type="positional", channel_mult_noise=1, encoder_type="standard", fir=(1, 1))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
