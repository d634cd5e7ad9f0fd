"""Networks trained elsewhere (issue 21): NVlabs EDM snapshot pickles and plain state dicts,
read without running any code they carry, rebuilt as this package's own networks.

**EDM snapshots** (``network-snapshot-*.pkl``, NVlabs' published ``edm-*.pkl``) are pickles of
``torch_utils.persistence`` records: every network class is stored as a call
``_reconstruct_persistent_obj(meta)`` with ``meta = {type: 'class', version, module_src,
class_name, state}``, where ``module_src`` is the source code of the class's module and
``state`` the object's ``__dict__`` (``_parameters``, ``_buffers``, ``_modules``, the
constructor's ``_init_args`` / ``_init_kwargs``). ``pickle.load`` would execute ``module_src``.
:class:`SnapshotUnpickler` resolves only the globals of :data:`SAFE_GLOBALS`: that call becomes
a :class:`Record` holding the class name and state (``module_src`` is never run), tensors and
parameters are rebuilt from their bytes with ``torch.load(weights_only=True)``, and any other
global is refused with the file and the global's name before anything is called.

From the records, :func:`edm_network` takes the preconditioning class (EDMPrecond only), the
backbone class and its constructor keyword arguments, maps them to this package's backbone
(:data:`SUPPORTED`), maps EDM's parameter names to this package's (:func:`edm_key`) and
checks every name and shape (:func:`check_weights`).

**Plain state dicts** (``torch.save(net.state_dict())``, either this package's names or EDM's)
are loaded with ``weights_only=True``; their architecture comes from the config.

``python -m hiddengauss.convert SNAPSHOT.pkl OUT.pt`` writes the safe format once (a
``torch.save`` of tensors, numbers and strings), so a cluster job never opens the pickle.
"""

from __future__ import annotations

import argparse
import io
import math
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .io import file_sha256

CONVERTED_FORMAT = "hiddengauss-network-1"
FORMATS = ("edm_pickle", "converted", "state_dict")


class UnsafePickleError(pickle.UnpicklingError):
    """A snapshot pickle asks for a global outside :data:`SAFE_GLOBALS`."""


class NetworkMismatchError(ValueError):
    """A network's class, options or weights do not fit this package's networks."""


# --------------------------------------------------------------------------- the unpickler


@dataclass
class Record:
    """An EDM persistence record or a torch container, never instantiated: its class name and
    state (the object's ``__dict__``)."""

    class_name: str
    state: dict = field(default_factory=dict)

    def __setstate__(self, state) -> None:  # BUILD of a torch container (protocol 2+ NEWOBJ)
        self.state = state if isinstance(state, dict) else {}

    @property
    def kwargs(self) -> dict:
        return dict(self.state.get("_init_kwargs") or {})


class EasyDict(dict):
    """Stands in for ``dnnlib.util.EasyDict`` (a dict with attribute access)."""


def _persistent_record(meta) -> Record:
    """Stands in for ``torch_utils.persistence._reconstruct_persistent_obj``: the record's class
    name and state; its ``module_src`` is dropped unread."""
    if not isinstance(meta, dict) or meta.get("type") != "class" or not isinstance(meta.get("class_name"), str):
        raise UnsafePickleError(f"not an EDM persistence record: {type(meta).__name__}")
    return Record(meta["class_name"], dict(meta.get("state") or {}))


def _container(name: str) -> type:
    """A :class:`Record` class standing in for the torch container ``name`` (ModuleDict …): the
    pickle creates it with NEWOBJ and fills its state with BUILD."""

    def new(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.class_name, obj.state = name, {}
        return obj

    return type(name, (Record,), {"__new__": new})


def _storage_from_bytes(data: bytes):
    """Stands in for ``torch.storage._load_from_bytes``: the bytes are a ``torch.save`` of one
    storage, loaded with ``weights_only=True`` onto the CPU."""
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


_NUMPY_KINDS = "biuf"  # bool, int, unsigned, float: the only numpy scalars a network's options hold


def _numpy_dtype(name, align=False, copy=False):
    dt = np.dtype(name)
    if dt.kind not in _NUMPY_KINDS:
        raise UnsafePickleError(f"numpy dtype {name!r} is not a plain number type")
    return dt


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.kind not in _NUMPY_KINDS or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar of a non-numeric type")
    return np.frombuffer(data, dtype=dtype)[0]


_TORCH_DTYPES = ("float16", "float32", "float64", "bfloat16", "int64", "int32", "uint8", "bool")

# (module, name) -> what it resolves to. Nothing here runs code from the file.
SAFE_GLOBALS = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _persistent_record,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("numpy", "dtype"): _numpy_dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    **{("torch.nn.modules.container", n): _container(n) for n in ("ModuleDict", "ModuleList", "Sequential")},
    **{("torch", n): getattr(torch, n) for n in _TORCH_DTYPES},
}


class SnapshotUnpickler(pickle.Unpickler):
    """Unpickler of EDM snapshots that resolves only :data:`SAFE_GLOBALS` (the check happens
    when the pickle names a global, before anything is called) and refuses persistent ids."""

    def __init__(self, file, where: str):
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str):
        try:
            return SAFE_GLOBALS[module, name]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load {self.where}: it asks for the global {module}.{name}, which is not a tensor, "
                "a container or an EDM persistence record (nothing was executed)"
            ) from None

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing to load {self.where}: persistent id {pid!r} (not an EDM snapshot)")


def read_snapshot(path: str | Path):
    """The object an EDM snapshot pickle holds, its records as :class:`Record` (no code run)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        raise NetworkMismatchError(f"{path} is a torch.save file, not an EDM snapshot pickle (use format: state_dict or converted)")
    with open(path, "rb") as f:
        return SnapshotUnpickler(f, str(path)).load()


# --------------------------------------------------------------------------- EDM -> this package

# EDM's backbone defaults (training/networks.py of NVlabs/edm), for keyword arguments a record omits
EDM_DEFAULTS = {
    "SongUNet": dict(label_dim=0, augment_dim=0, model_channels=128, channel_mult=[1, 2, 2, 2], channel_mult_emb=4,
                     num_blocks=4, attn_resolutions=[16], dropout=0.10, label_dropout=0, embedding_type="positional",
                     channel_mult_noise=1, encoder_type="standard", decoder_type="standard", resample_filter=[1, 1]),
    "DhariwalUNet": dict(label_dim=0, augment_dim=0, model_channels=192, channel_mult=[1, 2, 3, 4], channel_mult_emb=4,
                         num_blocks=3, attn_resolutions=[32, 16, 8], dropout=0.10, label_dropout=0),
}  # fmt: skip
# backbone class and the options that select this package's arch (everything else must be as here)
SUPPORTED = {
    "ncsnpp": ("SongUNet", dict(embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                                decoder_type="standard", resample_filter=[1, 3, 3, 1])),
    "ddpmpp": ("SongUNet", dict(embedding_type="positional", channel_mult_noise=1, encoder_type="standard",
                                decoder_type="standard", resample_filter=[1, 1])),
    "adm": ("DhariwalUNet", {}),
}  # fmt: skip
PRECONDITIONINGS = {"edm": "EDMPrecond"}
_BUILD_KEYS = ("model_channels", "channel_mult", "num_blocks", "attn_resolutions", "augment_dim")


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def backbone_network(class_name: str, kwargs: dict, where: str) -> dict:
    """This package's network description (``arch``, img_resolution, in_channels and the keys
    of ``build_network``) of an EDM backbone record; anything unsupported raises
    NetworkMismatchError naming the class or option."""
    if class_name not in EDM_DEFAULTS:
        raise NetworkMismatchError(f"{where}: backbone class {class_name!r} is not supported (SongUNet or DhariwalUNet)")
    kw = {**EDM_DEFAULTS[class_name], **{k: _plain(v) for k, v in kwargs.items()}}
    unknown = set(kw) - set(EDM_DEFAULTS[class_name]) - {"img_resolution", "in_channels", "out_channels"}
    if unknown:
        raise NetworkMismatchError(f"{where}: {class_name} options {sorted(unknown)} are not supported")
    if kw["label_dim"]:
        raise NetworkMismatchError(f"{where}: class-conditional networks (label_dim={kw['label_dim']}) are not supported")
    if kw["channel_mult_emb"] != 4 or kw.get("out_channels") != kw.get("in_channels"):
        raise NetworkMismatchError(f"{where}: channel_mult_emb={kw['channel_mult_emb']}, out_channels={kw.get('out_channels')} "
                                   f"(supported: 4, and as many output as input channels)")  # fmt: skip
    for arch, (cls, options) in SUPPORTED.items():
        if cls == class_name and all(kw[k] == v for k, v in options.items()):
            return {"arch": arch, "img_resolution": int(kw["img_resolution"]), "in_channels": int(kw["in_channels"]),
                    **{k: kw[k] for k in _BUILD_KEYS}}  # fmt: skip
    got = {k: kw[k] for k in SUPPORTED["ncsnpp"][1]}
    raise NetworkMismatchError(f"{where}: SongUNet with {got} is neither EDM-VE (ncsnpp: {SUPPORTED['ncsnpp'][1]}) "
                               f"nor EDM-VP (ddpmpp: {SUPPORTED['ddpmpp'][1]})")  # fmt: skip


_LEVEL_KEY = re.compile(r"(enc|dec)\.(\d+)x\2_([A-Za-z0-9_]+?)\.(.+)")
_ATTN_NAMES = {"norm2": "norm", "qkv": "qkv", "proj": "proj"}


def edm_key(key: str) -> str:
    """This package's name of an EDM backbone parameter or buffer (``model.`` prefix dropped):

    enc.{R}x{R}_{conv,down,blockI} → enc.r{R}_…;  enc.{R}x{R}_aux_residual → enc_aux.r{R}_down;
    dec.{R}x{R}_{in0,in1,up,blockI} → dec.r{R}_…;  dec.{R}x{R}_aux_{norm,conv} → out_{norm,conv};
    a block's norm2 / qkv / proj → attn.norm / attn.qkv / attn.proj;  resample_filter → fir.
    """
    k = key.removeprefix("model.")
    m = _LEVEL_KEY.fullmatch(k)
    if m:
        side, res, name, rest = m.groups()
        heads = {("enc", "aux_residual"): f"enc_aux.r{res}_down", ("dec", "aux_norm"): "out_norm",
                 ("dec", "aux_conv"): "out_conv"}  # fmt: skip
        if (side, name) in heads:
            head = heads[side, name]
        elif name.startswith("aux"):
            raise NetworkMismatchError(f"EDM layer {side}.{res}x{res}_{name} (a 'skip' encoder or decoder) is not supported")
        else:
            head = f"{side}.r{res}_{name}"
        attn = re.match(r"(norm2|qkv|proj)\.(.+)", rest)  # the attention layers of a UNetBlock
        k = f"{head}.attn.{_ATTN_NAMES[attn[1]]}.{attn[2]}" if attn else f"{head}.{rest}"
    return re.sub(r"(^|\.)resample_filter$", r"\1fir", k)


def record_weights(rec: Record, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every parameter and persistent buffer of a record tree, by dotted name (state-dict order)."""
    if not isinstance(rec, Record):
        raise NetworkMismatchError(f"module {prefix.rstrip('.') or '<root>'} is a {type(rec).__name__}, not a network record")
    st = rec.state
    skip = set(st.get("_non_persistent_buffers_set") or ())
    out = {prefix + k: v.detach() for k, v in (st.get("_parameters") or {}).items() if v is not None}
    out |= {prefix + k: v for k, v in (st.get("_buffers") or {}).items() if v is not None and k not in skip}
    for name, sub in (st.get("_modules") or {}).items():
        if sub is not None:
            out |= record_weights(sub, f"{prefix}{name}.")
    return out


@dataclass
class ExternalNetwork:
    """A network trained elsewhere in this package's terms: ``network`` (arch, img_resolution,
    in_channels, the ``build_network`` keys, sigma_data), the backbone ``weights`` under this
    package's names, and ``source`` (file, format, sha256, classes, the EDM loss's P_mean/P_std)."""

    network: dict
    weights: dict[str, torch.Tensor]
    source: dict

    def denoiser(self):
        """The EDM denoiser with these weights, every name and shape checked, in eval mode."""
        from .edm import EDMDenoiser

        net = build_backbone(self.network)
        check_weights(net.state_dict(), self.weights, self.source.get("file", "<weights>"))
        net.load_state_dict(self.weights)
        return EDMDenoiser(net, sigma_data=self.network["sigma_data"]).eval().requires_grad_(False)


def build_backbone(network: dict) -> torch.nn.Module:
    from .networks import build_network

    return build_network(network["arch"], img_resolution=network["img_resolution"], in_channels=network["in_channels"],
                         **{k: network[k] for k in _BUILD_KEYS if k != "augment_dim"},
                         augment_dim=network.get("augment_dim", 0))  # fmt: skip


def check_weights(expected: dict, got: dict, where: str) -> None:
    """Name by name and shape by shape: raise NetworkMismatchError naming the first parameters
    missing from ``got``, left over in it, or of another shape."""
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    shapes = [f"{k}: file {tuple(got[k].shape)}, network {tuple(v.shape)}" for k, v in expected.items()
              if k in got and tuple(got[k].shape) != tuple(v.shape)]  # fmt: skip
    problems = ([f"missing parameter {k}" for k in missing[:5]] + [f"unexpected parameter {k}" for k in extra[:5]]
                + [f"shape mismatch of {s}" for s in shapes[:5]])  # fmt: skip
    if problems:
        raise NetworkMismatchError(f"{where}: the weights do not fit the network ({len(missing)} missing, {len(extra)} "
                                   f"unexpected, {len(shapes)} of another shape):\n  - " + "\n  - ".join(problems))  # fmt: skip


def edm_network(obj, where: str, key: str = "ema") -> ExternalNetwork:
    """The network of an unpickled EDM snapshot (a dict whose ``key`` is the EDMPrecond record,
    or that record itself): classes and options checked, weights under this package's names."""
    loss = None
    if isinstance(obj, dict):
        if key not in obj:
            raise NetworkMismatchError(f"{where}: no {key!r} entry (entries: {sorted(map(str, obj))})")
        loss = obj.get("loss_fn")
        obj = obj[key]
    if not isinstance(obj, Record):
        raise NetworkMismatchError(f"{where}: the network is a {type(obj).__name__}, not an EDM persistence record")
    if obj.class_name not in PRECONDITIONINGS.values():
        raise NetworkMismatchError(f"{where}: preconditioning {obj.class_name!r} is not supported "
                                   f"(supported: {', '.join(PRECONDITIONINGS.values())}; VP, VE and iDDPM are not)")  # fmt: skip
    pre = {k: _plain(v) for k, v in obj.kwargs.items()}
    if pre.get("label_dim", 0):
        raise NetworkMismatchError(f"{where}: class-conditional networks (label_dim={pre['label_dim']}) are not supported")
    model = (obj.state.get("_modules") or {}).get("model")
    if not isinstance(model, Record):
        raise NetworkMismatchError(f"{where}: {obj.class_name} has no backbone record 'model'")
    network = backbone_network(model.class_name, model.kwargs, where) | {"sigma_data": float(pre.get("sigma_data", 0.5))}
    weights = {edm_key(k): v for k, v in record_weights(model).items()}
    source = {"file": where, "format": "edm_pickle", "precond": obj.class_name, "backbone": model.class_name,
              "use_fp16": bool(pre.get("use_fp16", False))}  # fmt: skip
    if isinstance(loss, Record):
        source |= {"loss": loss.class_name, **{k.lower(): float(loss.state[k]) for k in ("P_mean", "P_std") if k in loss.state}}
    return ExternalNetwork(network, weights, source)


def _state_dict_weights(sd: dict, where: str) -> dict[str, torch.Tensor]:
    """A loaded state dict's backbone weights under this package's names: EDM names (an
    EDMPrecond's ``model.…`` or a bare backbone's) are mapped, a denoiser's ``net.`` prefix dropped."""
    if not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise NetworkMismatchError(f"{where}: not a flat state dict of tensors")
    edm = any(_LEVEL_KEY.fullmatch(k.removeprefix("model.")) for k in sd)
    return {(edm_key(k) if edm else k.removeprefix("net.")): v for k, v in sd.items()}


def load_external(path: str | Path, fmt: str, network: dict | None = None, key: str = "ema") -> ExternalNetwork:
    """A network file of format ``fmt`` (:data:`FORMATS`). ``network`` (the description of
    :class:`ExternalNetwork`) is required for a plain state dict; ``augment_dim`` is then read
    from the weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"network file {path} does not exist")
    where = str(path)
    if fmt == "edm_pickle":
        ext = edm_network(read_snapshot(path), where, key)
    elif fmt in ("converted", "state_dict"):
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises UnpicklingError for any global it does not allow
            raise UnsafePickleError(f"refusing to load {path} with weights_only=True ({err.__class__.__name__}: "
                                    f"{str(err).splitlines()[0]})") from None  # fmt: skip
        if fmt == "converted":
            if not isinstance(obj, dict) or obj.get("format") != CONVERTED_FORMAT:
                raise NetworkMismatchError(f"{path} is not a converted network ({CONVERTED_FORMAT}; "
                                           "write one with python -m hiddengauss.convert)")  # fmt: skip
            ext = ExternalNetwork(dict(obj["network"]), dict(obj["weights"]), dict(obj["source"]))
        else:
            if network is None:
                raise ValueError("a plain state dict needs its network description (arch, widths) from the config")
            weights = _state_dict_weights(obj if isinstance(obj, dict) else {}, where)
            aug = weights.get("map_augment.weight")
            network = {**network, "augment_dim": 0 if aug is None else int(aug.shape[1])}
            ext = ExternalNetwork(network, weights, {"file": where, "format": "state_dict"})
    else:
        raise ValueError(f"unknown network format {fmt!r}; expected one of {', '.join(FORMATS)}")
    ext.source["sha256"] = file_sha256(path)
    return ext


def write_converted(ext: ExternalNetwork, out: str | Path) -> None:
    """The safe format: ``torch.save`` of the description, the weights and the source record."""
    from .io import atomic_path

    with atomic_path(out) as tmp:
        torch.save({"format": CONVERTED_FORMAT, "network": ext.network, "weights": ext.weights, "source": ext.source}, tmp)


def import_checkpoint(ext: ExternalNetwork, out_dir: str | Path, epoch: int, images_seen: int, expect: dict) -> Path:
    """Write ``ext`` as the single checkpoint of an external run (``out_dir/epochNNNNNNN.pt``,
    this package's checkpoint format with its ``network`` description), after checking it is
    the run's network: every key of ``expect`` (arch, model_channels, img_resolution,
    in_channels) must equal the file's, else NetworkMismatchError names both values."""
    from .training import CHECKPOINT_FORMAT, checkpoint_name, save_checkpoint

    where = ext.source.get("file", "<network>")
    wrong = [f"{k}: config {v!r}, file {ext.network.get(k)!r}" for k, v in expect.items() if ext.network.get(k) != v]
    if wrong:
        raise NetworkMismatchError(f"{where} is not the network the config names:\n  - " + "\n  - ".join(wrong))
    model = ext.denoiser()  # checks every name and shape
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / checkpoint_name(epoch)
    spec = {"img_resolution": ext.network["img_resolution"], "img_channels": ext.network["in_channels"],
            "arch": ext.network["arch"], "model_scale": ext.network["model_channels"]}  # fmt: skip
    save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "network": ext.network, "spec": spec, "source": ext.source,
                           "ema": model.state_dict(), "epoch": int(epoch), "images_seen": int(images_seen),
                           "n_params": sum(p.numel() for p in model.parameters()), "final_loss": math.nan})  # fmt: skip
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hiddengauss.convert",
                                description="Write an EDM snapshot pickle in the safe format (torch.save of tensors, "
                                            "numbers and strings), read without running any code it carries.")  # fmt: skip
    p.add_argument("snapshot", help="network-snapshot-*.pkl or NVlabs' edm-*.pkl")
    p.add_argument("out", help="output .pt (analyse it with format: converted)")
    p.add_argument("--key", default="ema", help="entry of the snapshot dict that holds the network (default: ema)")
    args = p.parse_args(argv)
    try:
        ext = load_external(args.snapshot, "edm_pickle", key=args.key)
        ext.denoiser()  # every name and shape checked before anything is written
    except (UnsafePickleError, NetworkMismatchError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    write_converted(ext, args.out)
    n = ext.network
    print(f"{args.out}: {ext.source['precond']}/{ext.source['backbone']} as {n['arch']}, model_channels "
          f"{n['model_channels']}, {n['img_resolution']}x{n['img_resolution']}x{n['in_channels']}, augment_dim "
          f"{n['augment_dim']}, {len(ext.weights)} tensors, sha256 {ext.source['sha256'][:12]}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
