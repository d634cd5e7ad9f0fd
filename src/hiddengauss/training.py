"""EDM training loop: Adam, lr warm-up and EMA as fractions of the run, epoch-grid checkpoints.

A run is fully described by a :class:`TrainSpec`. All its randomness (network init, batch
order, noise levels, noise, dropout) comes from its seed, and the complete training state is
saved in every checkpoint, so a killed run resumes from its last checkpoint and ends with
the same weights as an uninterrupted one (bit-for-bit on CPU).

Checkpoints are plain dicts of tensors and numbers, written with ``torch.save`` and read
back with ``torch.load(weights_only=True)``: loading never executes code.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .augment import AUGMENT_DIM, augment
from .edm import EDMDenoiser, edm_loss
from .io import atomic_path
from .networks import build_network, count_parameters
from .schedules import log_spaced_epochs  # noqa: F401  (re-exported)

log = logging.getLogger("hiddengauss")

CHECKPOINT_FORMAT = 1


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or Inf."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, unsafe or from another run."""


@dataclass
class TrainSpec:
    """Everything that determines a training run's result."""

    arch: str
    model_scale: int  # EDM's model_channels (--cbase): the width of the first level
    channel_mult: list[int]
    num_blocks: int
    attn_resolutions: list[int]
    dropout: float
    img_resolution: int
    img_channels: int
    n_images: int
    epochs: int
    batch_size: int
    lr: float
    warmup_fraction: float = 0.05
    ema_halflife_fraction: float = 0.05
    ema_rampup_ratio: float = 0.05
    sigma_data: float = 0.5
    p_mean: float = -1.2
    p_std: float = 1.2
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    seed: int = 0
    checkpoint_epochs: list[int] = field(default_factory=list)
    augment_p: float = 0.0

    @property
    def total_images(self) -> int:
        return self.epochs * self.n_images

    def fingerprint(self) -> str:
        """Hash of the spec: a checkpoint is resumed only by the run that wrote it. The model
        width is hashed under its former key ``model_channels``, so checkpoints written before
        the field was renamed still resume."""
        spec = dataclasses.asdict(self)
        spec["model_channels"] = spec.pop("model_scale")
        blob = json.dumps(spec, sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class Hardware:
    """How (not what) to compute: never changes the result on CPU."""

    device: str = "cpu"
    tf32: bool = False
    bf16: bool = False
    compile: bool = False


def checkpoint_name(epoch: int) -> str:
    return f"epoch{epoch:07d}.pt"


def build_denoiser(spec: TrainSpec) -> EDMDenoiser:
    net = build_network(
        spec.arch, img_resolution=spec.img_resolution, in_channels=spec.img_channels,
        model_channels=spec.model_scale, channel_mult=list(spec.channel_mult),
        num_blocks=spec.num_blocks, attn_resolutions=list(spec.attn_resolutions), dropout=spec.dropout,
        augment_dim=AUGMENT_DIM if spec.augment_p > 0 else 0,
    )  # fmt: skip
    return EDMDenoiser(net, sigma_data=spec.sigma_data)


def lr_at(spec: TrainSpec, images_seen: int) -> float:
    """Linear warm-up over the first ``warmup_fraction`` of the run: lr·min(seen/warm-up, 1)."""
    warm = spec.warmup_fraction * spec.total_images
    return spec.lr * (min(images_seen / warm, 1.0) if warm > 0 else 1.0)


def ema_beta(spec: TrainSpec, images_seen: int) -> float:
    """EMA decay per step: β = 0.5^(batch / h), h = min(half-life, ramp-up ratio · images seen)."""
    half_life = spec.ema_halflife_fraction * spec.total_images
    if spec.ema_rampup_ratio:
        half_life = min(half_life, spec.ema_rampup_ratio * images_seen)
    return 0.5 ** (spec.batch_size / max(half_life, 1e-8))


class BatchStream:
    """Endless stream of batch indices: one seeded permutation per epoch, batches cross epochs.

    The permutation is drawn on the CPU (the same on any device) and moved to ``device`` once
    per epoch, so a batch's indices need no host-to-device copy."""

    def __init__(self, n: int, generator: torch.Generator, device="cpu"):
        self.n, self.gen, self.device = n, generator, torch.device(device)
        self.perm = torch.randperm(n, generator=generator).to(self.device)
        self.pos = 0

    def next(self, batch: int) -> torch.Tensor:
        out = []
        while batch > 0:
            if self.pos == self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen).to(self.device), 0
            take = min(batch, self.n - self.pos)
            out.append(self.perm[self.pos : self.pos + take])
            self.pos += take
            batch -= take
        return torch.cat(out)

    def state(self) -> dict:
        return {"perm": self.perm.cpu().clone(), "pos": self.pos}

    def load(self, state: dict) -> None:
        self.perm, self.pos = state["perm"].clone().to(self.device), int(state["pos"])


def save_checkpoint(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint without executing code (``weights_only=True``).

    A file that carries a pickled code payload (or anything but tensors, numbers, strings,
    lists and dicts) is refused with CheckpointError.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=str(map_location) == "cpu")
    except Exception as err:  # torch raises UnpicklingError for unsafe globals
        raise CheckpointError(f"refusing to load {path}: not a plain weights checkpoint ({err.__class__.__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a hiddengauss checkpoint (format {CHECKPOINT_FORMAT})")
    return ckpt


def load_ema_denoiser(path: str | Path, device="cpu") -> tuple[EDMDenoiser, dict]:
    """The EMA denoiser stored in a checkpoint (the network every analysis uses), in eval mode."""
    ckpt = load_checkpoint(path)
    if "network" in ckpt:  # a network trained elsewhere (hiddengauss.convert.import_checkpoint)
        from .convert import build_backbone

        model = EDMDenoiser(build_backbone(ckpt["network"]), sigma_data=ckpt["network"]["sigma_data"])
        model.load_state_dict(ckpt["ema"])
        return model.to(device).eval().requires_grad_(False), ckpt
    spec = dict(ckpt["spec"], adam_betas=tuple(ckpt["spec"]["adam_betas"]))
    if "model_channels" in spec:  # checkpoints written before the field was named model_scale
        spec["model_scale"] = spec.pop("model_channels")
    spec = TrainSpec(**spec)
    model = build_denoiser(spec)
    model.load_state_dict(ckpt["ema"])
    return model.to(device).eval().requires_grad_(False), ckpt


def checkpoint_denoiser(checkpoints_dir, epoch: int, device="cpu"):
    """The EMA network of a run's checkpoint as a denoiser of flattened batches, and the checkpoint."""
    from .sampling import network_denoiser

    net, ckpt = load_ema_denoiser(Path(checkpoints_dir) / checkpoint_name(int(epoch)), device=device)
    shape = (ckpt["spec"]["img_channels"], ckpt["spec"]["img_resolution"], ckpt["spec"]["img_resolution"])
    return network_denoiser(net, shape), ckpt


def _rng_state(gen: torch.Generator, stream: BatchStream, device: torch.device) -> dict:
    state = {"generator": gen.get_state(), "torch": torch.get_rng_state(), "stream": stream.state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def train(
    spec: TrainSpec,
    images: np.ndarray,
    out_dir: str | Path,
    state_dir: str | Path,
    hardware: Hardware | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> list[dict]:
    """Train one run; write a checkpoint for every epoch of ``spec.checkpoint_epochs``.

    ``images``: uint8 (N, C, H, W) training subset. Checkpoints are written to ``state_dir``
    (kept when the job dies, so the next attempt resumes from the newest one) and hard-linked
    into ``out_dir`` (the job's declared output). ``max_steps`` stops early (tests of
    interruption). Returns the loss log (one row per logged interval).
    """
    from tqdm.auto import tqdm

    hardware = hardware or Hardware()
    device = torch.device(hardware.device)
    out_dir, state_dir = Path(out_dir), Path(state_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"training images must be uint8 (N, C, H, W), got {images.dtype} {images.shape}")
    if len(images) != spec.n_images:
        raise ValueError(f"spec says {spec.n_images} images but {len(images)} were given")
    grid = sorted(set(spec.checkpoint_epochs) | {spec.epochs})
    fingerprint = spec.fingerprint()

    if hardware.tf32 and device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    torch.manual_seed(spec.seed)
    model = build_denoiser(spec).to(device).train()
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr, betas=spec.adam_betas, eps=spec.adam_eps)
    gen = torch.Generator(device="cpu").manual_seed(spec.seed + 1)
    noise_gen = torch.Generator(device=device).manual_seed(spec.seed + 2)
    stream = BatchStream(spec.n_images, gen, device)
    data = torch.from_numpy(images).to(device)
    images_seen, step, loss_log = 0, 0, []

    resume = _find_resume(state_dir, fingerprint, grid)
    if resume is not None:
        # on the CPU: RNG states must stay CPU byte tensors (a GPU copy makes set_state fail) and
        # Adam's step counters CPU scalars; load_state_dict moves weights and moments to the device
        ckpt = load_checkpoint(resume)
        if ckpt["rng"]["noise"].numel() != noise_gen.get_state().numel():
            raise CheckpointError(
                f"{resume} was written by a job on another kind of device than {device} (its noise generator's "
                f"state does not fit this one's): resume it on the same kind of device, or delete {state_dir} to start over"
            )  # fmt: skip
        model.load_state_dict(ckpt["model"])
        ema.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["rng"]["generator"])
        noise_gen.set_state(ckpt["rng"]["noise"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if "cuda" in ckpt["rng"] and device.type == "cuda":
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"], device)
        stream.load(ckpt["rng"]["stream"])
        images_seen, step, loss_log = int(ckpt["images_seen"]), int(ckpt["step"]), list(ckpt["loss_log"])
        log.info("resuming from %s (epoch %d, %d images seen)", resume.name, ckpt["epoch"], images_seen)
        del ckpt
    n_params = count_parameters(model)
    log.info(
        "run: %s c%d, %d images of %s, %d epochs = %d images, batch %d, %d parameters, device %s",
        spec.arch, spec.model_scale, spec.n_images, tuple(images.shape[1:]), spec.epochs,
        spec.total_images, spec.batch_size, n_params, device,
    )  # fmt: skip

    step_fn = torch.compile(model) if hardware.compile else model
    pending = [e for e in grid if e * spec.n_images > images_seen]
    for e in grid:  # re-link checkpoints written before an interruption
        if e * spec.n_images <= images_seen and (state_dir / checkpoint_name(e)).exists():
            _link(state_dir / checkpoint_name(e), out_dir / checkpoint_name(e))

    import sys

    interval = 1.0 if sys.stderr.isatty() else 30.0  # keep log files short
    bar = tqdm(total=spec.total_images, initial=images_seen, unit="img", unit_scale=True, disable=not progress, mininterval=interval)
    # no host sync per step: the loss sum and the first non-finite loss stay on the device and are
    # read at log points and before every checkpoint (so a checkpoint is only written while finite)
    window, window_n, t0 = torch.zeros((), dtype=torch.float64, device=device), 0, time.time()
    bad_step = torch.full((), -1, dtype=torch.int64, device=device)
    bad_loss = torch.zeros((), dtype=torch.float32, device=device)
    log_every = max(1, spec.total_images // (200 * spec.batch_size))
    steps_run = 0
    while pending:
        if max_steps is not None and steps_run >= max_steps:
            break
        batch = min(spec.batch_size, pending[0] * spec.n_images - images_seen)
        idx = stream.next(batch)
        y = data[idx].to(torch.float32) / 127.5 - 1
        labels = None
        if spec.augment_p > 0:
            y, labels = augment(y, spec.augment_p, noise_gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(spec, images_seen)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=hardware.bf16):
            loss = edm_loss(step_fn, y, generator=noise_gen, p_mean=spec.p_mean, p_std=spec.p_std,
                            augment_labels=labels, sigma_data=spec.sigma_data)  # fmt: skip
        loss = loss.float().sum() / batch
        first_bad = (bad_step < 0) & ~torch.isfinite(loss.detach())
        bad_step = torch.where(first_bad, step, bad_step)
        bad_loss = torch.where(first_bad, loss.detach(), bad_loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in model.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        images_seen += batch
        step += 1
        steps_run += 1
        beta = ema_beta(spec, images_seen)
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.copy_(pm.detach().lerp(pe, beta))
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        window += loss.detach().double() * batch
        window_n += batch
        bar.update(batch)
        if step % log_every == 0 or images_seen == pending[0] * spec.n_images:
            if int(bad_step) >= 0:
                raise TrainingDivergedError(
                    f"loss became {float(bad_loss)} at step {int(bad_step)} (checked at step {step - 1}, {images_seen} "
                    f"images seen, lr {lr_at(spec, images_seen):.3g}); the last good checkpoint is kept in {state_dir}. "
                    f"Lower training.lr or check the data."
                )  # fmt: skip
            mean_loss = float(window) / window_n
            rate = window_n / max(time.time() - t0, 1e-9)
            loss_log.append({"step": step, "images_seen": images_seen, "epoch": images_seen / spec.n_images,
                             "loss": mean_loss, "lr": lr_at(spec, images_seen)})  # fmt: skip
            bar.set_postfix(loss=f"{mean_loss:.4f}", img_s=f"{rate:.0f}", refresh=False)
            window, window_n, t0 = torch.zeros_like(window), 0, time.time()
        if images_seen == pending[0] * spec.n_images:
            epoch = pending.pop(0)
            payload = {
                "format": CHECKPOINT_FORMAT, "spec": dataclasses.asdict(spec), "fingerprint": fingerprint,
                "epoch": epoch, "images_seen": images_seen, "step": step, "n_params": n_params,
                "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "rng": {**_rng_state(gen, stream, device), "noise": noise_gen.get_state()},
                "loss_log": loss_log, "final_loss": loss_log[-1]["loss"] if loss_log else float("nan"),
            }  # fmt: skip
            save_checkpoint(state_dir / checkpoint_name(epoch), payload)
            _link(state_dir / checkpoint_name(epoch), out_dir / checkpoint_name(epoch))
            log.info("checkpoint epoch %d (%d images seen), loss %.4f", epoch, images_seen, payload["final_loss"])
    bar.close()
    return loss_log


def _link(src: Path, dst: Path) -> None:
    """Hard-link (or copy, across file systems) a finished checkpoint into the output folder."""
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        import shutil

        shutil.copyfile(src, dst)


def _find_resume(state_dir: Path, fingerprint: str, grid: list[int]) -> Path | None:
    """Newest checkpoint in ``state_dir`` written by this same run spec, if any.

    Checkpoints of a different spec (the config changed) are deleted, never resumed.
    """
    best, best_epoch = None, -1
    for path in sorted(state_dir.glob("epoch*.pt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as err:
            log.warning("ignoring unreadable checkpoint %s: %s", path, err)
            path.unlink()
            continue
        if ckpt.get("fingerprint") != fingerprint or ckpt["epoch"] not in grid:
            log.info("discarding %s: written by a different run configuration", path.name)
            path.unlink()
            continue
        if ckpt["epoch"] > best_epoch:
            best, best_epoch = path, int(ckpt["epoch"])
    return best
