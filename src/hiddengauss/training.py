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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .augment import AUGMENT_DIM, augment
from .edm import EDMDenoiser, edm_loss, training_noise
from .io import atomic_path
from .networks import build_network, count_parameters
from .schedules import log_spaced_epochs  # noqa: F401  (re-exported)

log = logging.getLogger("hiddengauss")

CHECKPOINT_FORMAT = 1


class TrainingError(RuntimeError):
    """A rank of a data-parallel training job failed or died (its rank and error in the message)."""


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
    gpus: int = 1  # data-parallel processes (one per GPU; gloo processes on the CPU)


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
    log_file: str | Path | None = None,
) -> list[dict]:
    """Train one run; write a checkpoint for every epoch of ``spec.checkpoint_epochs``.

    ``images``: uint8 (N, C, H, W) training subset. Checkpoints are written to ``state_dir``
    (kept when the job dies, so the next attempt resumes from the newest one) and hard-linked
    into ``out_dir`` (the job's declared output). ``max_steps`` stops early (tests of
    interruption). With ``hardware.gpus`` > 1 the run is data-parallel
    (:func:`train_data_parallel`; rank 0 also logs to ``log_file``). Returns the loss log (one
    row per logged interval).
    """
    hardware = hardware or Hardware()
    if hardware.gpus > 1:
        return train_data_parallel(spec, images, out_dir, state_dir, hardware, progress, max_steps, log_file)
    return _train_process(spec, images, out_dir, state_dir, hardware, progress, max_steps)


def rank_rows(batch: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of a global batch that ``rank`` of ``world`` computes (contiguous, sizes
    differing by at most one; empty when the batch has fewer rows than ranks)."""
    base, extra = divmod(batch, world)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def train_data_parallel(spec: TrainSpec, images: np.ndarray, out_dir, state_dir, hardware: Hardware,
                        progress: bool = True, max_steps: int | None = None, log_file=None) -> list[dict]:  # fmt: skip
    """One run on ``hardware.gpus`` processes (torch.multiprocessing, one per GPU: NCCL; on the
    CPU: gloo), each a rank of :class:`~torch.nn.parallel.DistributedDataParallel`.

    Every rank draws the same global batch (indices, augmentation, σ and noise from the same
    generators) and computes the rows :func:`rank_rows` gives it; the gradient is that of the
    global batch's loss, so the learning rate, EMA and σ draws mean what they do on one
    process, and the run differs from it only in the order of floating-point reductions (and,
    with dropout, in the dropout masks). Rank 0 writes the checkpoints and the loss log. A rank
    that fails or dies stops the job with TrainingError naming the rank and its error (the
    other ranks are terminated; the last good checkpoint stays)."""
    import socket

    import torch.multiprocessing as mp

    world = int(hardware.gpus)
    if hardware.device.startswith("cuda") and torch.cuda.device_count() < world:
        raise ValueError(f"training.gpus is {world} but {torch.cuda.device_count()} CUDA device(s) are visible")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with socket.socket() as sock:  # a free port for the process group's rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = state_dir / f".loss_log-{os.getpid()}.json"
    shared = torch.from_numpy(np.ascontiguousarray(images)).share_memory_()  # one copy for every rank
    threads = max(1, torch.get_num_threads() // world)
    args = (world, port, threads, spec, shared, str(out_dir), str(state_dir), hardware, progress, max_steps, str(result),
            None if log_file is None else str(log_file))  # fmt: skip
    try:
        mp.spawn(_rank_main, args=args, nprocs=world, join=True)
    except mp.ProcessRaisedException as err:
        cls = TrainingDivergedError if "TrainingDivergedError" in str(err) else TrainingError
        raise cls(f"training rank {err.error_index} of {world} failed (the last good checkpoint is kept in "
                  f"{state_dir}):\n{str(err).strip()}") from None  # fmt: skip
    except mp.ProcessExitedException as err:
        raise TrainingError(f"training rank {err.error_index} of {world} died: {err} (the last good checkpoint "
                            f"is kept in {state_dir})") from None  # fmt: skip
    loss_log = json.loads(result.read_text())
    result.unlink()
    return loss_log


def _rank_main(rank, world, port, threads, spec, images, out_dir, state_dir, hardware, progress, max_steps, result,
               log_file) -> None:  # fmt: skip
    """One rank of :func:`train_data_parallel` (a spawned process)."""
    import torch.distributed as dist

    if log_file is not None:  # append to the job's log (rank 0's progress bar too), each line marked with the rank
        stream = open(log_file, "a", buffering=1)  # noqa: SIM115  (open for the process's lifetime)
        sys.stderr = stream
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s [rank {rank}] %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO if rank == 0 else logging.WARNING)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    cuda = hardware.device.startswith("cuda")
    device = f"cuda:{rank}" if cuda else hardware.device
    if cuda:
        torch.cuda.set_device(rank)
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    try:
        loss_log = _train_process(spec, images.numpy(), out_dir, state_dir, dataclasses.replace(hardware, device=device),
                                  progress and rank == 0, max_steps, rank=rank, world=world)  # fmt: skip
        if rank == 0:
            Path(result).write_text(json.dumps(loss_log))
    finally:
        dist.destroy_process_group()


def _train_process(spec: TrainSpec, images: np.ndarray, out_dir, state_dir, hardware: Hardware, progress: bool,
                   max_steps: int | None, rank: int = 0, world: int = 1) -> list[dict]:  # fmt: skip
    """The training loop of one process: the whole run (``world`` = 1), or one rank of it."""
    from tqdm.auto import tqdm

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
    if world > 1:  # the same initial weights on every rank; each its own dropout masks
        import torch.distributed as dist

        torch.manual_seed(spec.seed + 1_000_003 * (rank + 1))
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
        rng = ckpt["rng"]
        ranks = rng.get("ranks") if world > 1 and len(rng.get("ranks", ())) == world else None
        torch.set_rng_state(rng["torch"] if ranks is None else ranks[rank]["torch"])
        if "cuda" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"] if ranks is None else ranks[rank]["cuda"], device)
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

    step_fn = model
    if world > 1:  # gradients all-reduced (averaged) over the ranks during the backward pass
        step_fn = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    step_fn = torch.compile(step_fn) if hardware.compile else step_fn
    pending = [e for e in grid if e * spec.n_images > images_seen]
    for e in grid:  # re-link checkpoints written before an interruption
        if rank == 0 and e * spec.n_images <= images_seen and (state_dir / checkpoint_name(e)).exists():
            _link(state_dir / checkpoint_name(e), out_dir / checkpoint_name(e))

    interval = 1.0 if sys.stderr.isatty() else 30.0  # keep log files short
    bar = tqdm(total=spec.total_images, initial=images_seen, unit="img", unit_scale=True, disable=not progress or rank > 0,
               mininterval=interval)  # fmt: skip
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
        # the global batch's draws on every rank; this rank's rows of it (a rank with none
        # computes one row with weight 0, so that every rank joins the gradient all-reduce)
        sigma, noise = training_noise(y.shape, noise_gen, spec.p_mean, spec.p_std, device, y.dtype)
        lo, hi = rank_rows(batch, rank, world)
        weight = 1.0 if hi > lo else 0.0
        lo, hi = (lo, hi) if hi > lo else (0, 1)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=hardware.bf16):
            per_image = edm_loss(step_fn, y[lo:hi], augment_labels=None if labels is None else labels[lo:hi],
                                 sigma_data=spec.sigma_data, draws=(sigma[lo:hi], noise[lo:hi]))  # fmt: skip
        local = per_image.float().sum() * weight / batch
        loss = local
        if world > 1:  # the global batch's loss (for the log and the divergence check)
            loss = local.detach().clone()
            dist.all_reduce(loss)
        first_bad = (bad_step < 0) & ~torch.isfinite(loss.detach())
        bad_step = torch.where(first_bad, step, bad_step)
        bad_loss = torch.where(first_bad, loss.detach(), bad_loss)
        opt.zero_grad(set_to_none=True)
        (local * world).backward()  # DDP averages the ranks' gradients: the sum is the global batch's
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
            rng = {**_rng_state(gen, stream, device), "noise": noise_gen.get_state()}
            if world > 1:  # every rank's dropout RNG (CPU and GPU), so that a resumed run continues each
                ranks = [None] * world
                mine = {"torch": torch.get_rng_state()}
                if device.type == "cuda":
                    mine["cuda"] = torch.cuda.get_rng_state(device)
                dist.all_gather_object(ranks, mine)
                rng["ranks"] = ranks
            if rank > 0:
                continue
            payload = {
                "format": CHECKPOINT_FORMAT, "spec": dataclasses.asdict(spec), "fingerprint": fingerprint,
                "epoch": epoch, "images_seen": images_seen, "step": step, "n_params": n_params,
                "model": model.state_dict(), "ema": ema.state_dict(), "optimizer": opt.state_dict(),
                "rng": rng,
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
