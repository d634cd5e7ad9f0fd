"""Networks trained elsewhere (hiddengauss.convert): EDM snapshot pickles read without running
their code, plain state dicts loaded weights_only, every name and shape checked.

The snapshots are built here with the record layout of EDM's torch_utils/persistence.py
(``_reconstruct_persistent_obj(meta)``, meta = {type, version, module_src, class_name, state},
state = the module's __dict__), around this package's networks renamed to EDM's parameter
names, so no network access and no EDM code are needed."""

import copyreg
import os
import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

from hiddengauss.convert import (
    NetworkMismatchError,
    UnsafePickleError,
    edm_key,
    edm_network,
    load_external,
    main,
    read_snapshot,
)
from hiddengauss.edm import EDMDenoiser
from hiddengauss.networks import build_network

TINY = dict(img_resolution=8, in_channels=1, model_channels=4, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])


# --------------------------------------------------------------------------- EDM's layout, written here


def _reconstruct_persistent_obj(meta):  # the name a snapshot's records call; never called here
    raise AssertionError("the loader must not call the snapshot's reconstruct function")


class EasyDict(dict):
    pass


@pytest.fixture
def edm_modules(monkeypatch):
    """Stand-ins for EDM's modules, so that pickle writes the globals a real snapshot names."""
    tu, pers, dn, util = (types.ModuleType(n) for n in ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"))
    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    pers._reconstruct_persistent_obj = _reconstruct_persistent_obj
    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    for name, mod in (("torch_utils", tu), ("torch_utils.persistence", pers), ("dnnlib", dn), ("dnnlib.util", util)):
        monkeypatch.setitem(sys.modules, name, mod)


class Persistent:
    """Pickles as EDM's persistent classes do: _reconstruct_persistent_obj(meta)."""

    def __init__(self, class_name, state, module_src="# the class's source"):
        self.meta = dict(type="class", version=6, module_src=module_src, class_name=class_name, state=state)

    def __reduce__(self):
        return _reconstruct_persistent_obj, (self.meta,)


class Container:
    """Pickles as a torch.nn.ModuleDict does (NEWOBJ of the real class, then BUILD of its state)."""

    def __init__(self, state):
        self.state = state

    @property
    def __class__(self):  # pickle checks that NEWOBJ's class is the object's
        return torch.nn.ModuleDict

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (torch.nn.ModuleDict,), self.state


def module_state(params=None, buffers=None, modules=None, kwargs=None, **attrs):
    return {"training": False, "_parameters": OrderedDict(params or {}), "_buffers": OrderedDict(buffers or {}),
            "_non_persistent_buffers_set": set(), "_modules": OrderedDict(modules or {}), "_init_args": (),
            "_init_kwargs": EasyDict(kwargs or {}), **attrs}  # fmt: skip


def edm_name(key: str, arch: str, top_res: int) -> str:
    """EDM's name of one of this package's backbone parameters (the inverse of edm_key, written
    from EDM's layer grammar: {res}x{res}_{layer}, aux_residual, aux_norm/aux_conv, norm2/qkv/proj)."""
    parts = key.split(".")
    if parts[0] in ("enc", "dec", "enc_aux"):
        res, layer = parts[1][1:].split("_", 1)
        side = "enc" if parts[0] == "enc_aux" else parts[0]
        layer = "aux_residual" if parts[0] == "enc_aux" else layer
        parts = [side, f"{res}x{res}_{layer}"] + parts[2:]
    elif parts[0] in ("out_norm", "out_conv") and arch != "adm":
        parts = ["dec", f"{top_res}x{top_res}_aux_{parts[0][4:]}"] + parts[1:]
    if "attn" in parts:
        i = parts.index("attn")
        parts = parts[:i] + [{"norm": "norm2"}.get(parts[i + 1], parts[i + 1])] + parts[i + 2 :]
    if parts[-1] == "fir":
        parts[-1] = "resample_filter"
    return "model." + ".".join(parts)


def edm_records(weights: dict[str, torch.Tensor]):
    """A record tree with EDM's module nesting from dotted EDM names."""
    tree: dict = {}
    for name, value in weights.items():
        *path, leaf = name.split(".")
        node = tree
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = value

    def build(name, node):
        params = {k: torch.nn.Parameter(v.clone(), requires_grad=False) for k, v in node.items()
                  if isinstance(v, torch.Tensor) and k not in ("resample_filter", "freqs")}  # fmt: skip
        buffers = {k: v.clone() for k, v in node.items() if k in ("resample_filter", "freqs")}
        subs = {k: build(k, v) for k, v in node.items() if isinstance(v, dict)}
        state = module_state(params, buffers, subs, skip_scale=np.sqrt(0.5), eps=1e-6)
        return Container(state) if name in ("enc", "dec") else Persistent("UNetBlock" if "block" in name else "Layer", state)

    return {k: build(k, v) for k, v in tree.items()}


EDM_OPTIONS = {
    "ncsnpp": ("SongUNet", dict(embedding_type="fourier", channel_mult_noise=2, encoder_type="residual", resample_filter=[1, 3, 3, 1])),
    "ddpmpp": ("SongUNet", dict(embedding_type="positional", channel_mult_noise=1, encoder_type="standard", resample_filter=[1, 1])),
    "adm": ("DhariwalUNet", {}),
}  # fmt: skip


def edm_snapshot(arch="ncsnpp", augment_dim=9, precond="EDMPrecond", module_src="# source", **overrides):
    """(the network, a snapshot dict like EDM's training loop writes) for one of this package's networks."""
    torch.manual_seed(0)
    net = build_network(arch, **TINY, augment_dim=augment_dim)
    with torch.no_grad():  # non-zero weights everywhere (EDM zero-initialises some layers)
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    names = {edm_name(k, arch, TINY["img_resolution"]): v for k, v in net.state_dict().items()}
    model_records = edm_records(names)["model"]
    cls, options = EDM_OPTIONS[arch]
    model_kwargs = dict(img_resolution=8, in_channels=1, out_channels=1, label_dim=0, augment_dim=augment_dim,
                        model_channels=4, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.13,
                        **options) | overrides  # fmt: skip
    model_records.meta["class_name"] = cls
    model_records.meta["state"]["_init_kwargs"] = EasyDict(model_kwargs)
    pre_kwargs = dict(img_resolution=8, img_channels=1, label_dim=0, use_fp16=False, sigma_data=0.5, model_type=cls,
                      **{k: v for k, v in model_kwargs.items() if k not in ("img_resolution", "in_channels", "out_channels", "label_dim")})  # fmt: skip
    ema = Persistent(precond, module_state(modules={"model": model_records}, kwargs=pre_kwargs, sigma_data=0.5), module_src)
    loss = Persistent("EDMLoss", {"P_mean": -1.2, "P_std": 1.2, "sigma_data": 0.5})
    return net, {"ema": ema, "loss_fn": loss, "augment_pipe": None, "dataset_kwargs": EasyDict(path="ffhq.zip")}


def write(tmp_path, obj, name="snapshot.pkl"):
    path = tmp_path / name
    path.write_bytes(pickle.dumps(obj))
    return path


# --------------------------------------------------------------------------- tests


def test_edm_parameter_names_follow_edms_layer_grammar():
    """The names of EDM's SongUNet (training/networks.py): the test's inverse mapping agrees with
    EDM's grammar, and edm_key undoes it for every parameter of every backbone."""
    net = build_network("ncsnpp", **TINY, augment_dim=9)
    names = {edm_name(k, "ncsnpp", 8) for k in net.state_dict()}
    for expected in ("model.enc.8x8_conv.weight", "model.enc.4x4_down.conv0.resample_filter", "model.enc.4x4_down.skip.weight",
                     "model.enc.4x4_aux_residual.weight", "model.enc.4x4_aux_residual.resample_filter",
                     "model.enc.4x4_block0.norm2.weight", "model.enc.4x4_block0.qkv.weight", "model.dec.4x4_in0.proj.bias",
                     "model.dec.8x8_up.conv0.resample_filter", "model.dec.8x8_block1.affine.weight", "model.dec.8x8_aux_norm.weight",
                     "model.dec.8x8_aux_conv.bias", "model.map_noise.freqs", "model.map_augment.weight", "model.map_layer1.bias"):  # fmt: skip
        assert expected in names, expected
    for arch in ("ncsnpp", "ddpmpp", "adm"):
        sd = build_network(arch, **TINY).state_dict()
        assert {edm_key(edm_name(k, arch, 8)) for k in sd} == set(sd), arch
    assert edm_key("model.out_norm.weight") == "out_norm.weight"  # DhariwalUNet keeps out_norm / out_conv
    with pytest.raises(NetworkMismatchError, match="aux_skip"):
        edm_key("model.enc.4x4_aux_skip.weight")  # the 'skip' encoder is not supported


@pytest.mark.parametrize("arch", ["ncsnpp", "ddpmpp", "adm"])
def test_edm_snapshot_rebuilds_the_same_denoiser(tmp_path, edm_modules, arch):
    net, snap = edm_snapshot(arch)
    path = write(tmp_path, snap)
    ext = load_external(path, "edm_pickle")
    assert ext.network["arch"] == arch and ext.network["augment_dim"] == 9 and ext.network["model_channels"] == 4
    assert ext.source["precond"] == "EDMPrecond" and ext.source["p_mean"] == -1.2 and len(ext.source["sha256"]) == 64
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    sigma = torch.tensor([0.02, 1.0, 40.0])
    ref = EDMDenoiser(net.eval(), 0.5)(x, sigma)
    assert torch.equal(ext.denoiser()(x, sigma), ref)
    aug = torch.randn(3, 9)
    assert torch.equal(ext.denoiser()(x, sigma, aug), EDMDenoiser(net, 0.5)(x, sigma, aug))


def test_convert_cli_writes_the_safe_format(tmp_path, edm_modules, capsys):
    net, snap = edm_snapshot("ncsnpp")
    out = tmp_path / "net.pt"
    assert main([str(write(tmp_path, snap)), str(out)]) == 0
    assert "EDMPrecond/SongUNet as ncsnpp" in capsys.readouterr().out
    torch.load(out, weights_only=True)  # nothing but tensors, numbers, strings and containers
    ext = load_external(out, "converted")
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(ext.denoiser()(x, 0.5), EDMDenoiser(net.eval(), 0.5)(x, 0.5))


def test_a_hidden_call_is_refused_before_anything_runs(tmp_path, edm_modules):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    _, snap = edm_snapshot("ncsnpp")
    snap["ema"].meta["state"]["_init_kwargs"]["hook"] = Evil()  # buried deep inside a record
    path = write(tmp_path, snap)
    with pytest.raises(UnsafePickleError, match=rf"{path}.*global (posix|nt|os)\.system"):
        read_snapshot(path)
    assert not marker.exists()
    assert main([str(path), str(tmp_path / "out.pt")]) == 2 and not (tmp_path / "out.pt").exists()
    for fn in (eval, exec, getattr):  # any other global too
        class Other:
            def __reduce__(self, fn=fn):
                return fn, ("1",)

        with pytest.raises(UnsafePickleError, match=f"builtins.{fn.__name__}"):
            read_snapshot(write(tmp_path, {"ema": Other()}, "other.pkl"))
    assert not marker.exists()


def test_the_records_source_code_is_never_executed(tmp_path, edm_modules):
    marker = tmp_path / "ran"
    _, snap = edm_snapshot("ncsnpp", module_src=f"import os\nos.system('touch {marker}')\nclass EDMPrecond: pass\n")
    ext = load_external(write(tmp_path, snap), "edm_pickle")
    ext.denoiser()
    assert not marker.exists()


def test_unsupported_networks_are_refused_with_the_reason(tmp_path, edm_modules):
    _, snap = edm_snapshot("ncsnpp", precond="VPPrecond")
    with pytest.raises(NetworkMismatchError, match="preconditioning 'VPPrecond' is not supported"):
        load_external(write(tmp_path, snap), "edm_pickle")
    _, snap = edm_snapshot("ncsnpp", encoder_type="skip")
    with pytest.raises(NetworkMismatchError, match="neither EDM-VE.*nor EDM-VP"):
        load_external(write(tmp_path, snap, "b.pkl"), "edm_pickle")
    _, snap = edm_snapshot("ncsnpp", label_dim=10)
    with pytest.raises(NetworkMismatchError, match="label_dim=10"):
        load_external(write(tmp_path, snap, "c.pkl"), "edm_pickle")


def test_a_record_of_another_layout_is_refused_by_parameter_name(tmp_path, edm_modules):
    _, snap = edm_snapshot("ncsnpp")
    snap["ema"].meta["state"]["_init_kwargs"]["model_channels"] = 4
    snap["ema"].meta["state"]["_modules"]["model"].meta["state"]["_init_kwargs"]["num_blocks"] = 2  # the file has 1
    ext = load_external(write(tmp_path, snap), "edm_pickle")
    with pytest.raises(NetworkMismatchError, match=r"missing parameter enc\.r8_block1\."):
        ext.denoiser()


def test_plain_state_dicts_load_weights_only_and_mismatches_name_the_parameter(tmp_path):
    torch.manual_seed(0)
    net = build_network("ddpmpp", **TINY)
    network = {"arch": "ddpmpp", **{k: v for k, v in TINY.items()}, "sigma_data": 0.5}
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), path)
    x = torch.randn(2, 1, 8, 8)
    ext = load_external(path, "state_dict", network)
    assert ext.network["augment_dim"] == 0
    assert torch.equal(ext.denoiser()(x, 2.0), EDMDenoiser(net.eval(), 0.5)(x, 2.0))
    # EDM's names (an EDMPrecond's state dict) are mapped too
    torch.save({edm_name(k, "ddpmpp", 8): v for k, v in net.state_dict().items()}, path)
    assert torch.equal(load_external(path, "state_dict", network).denoiser()(x, 2.0), EDMDenoiser(net, 0.5)(x, 2.0))
    bad = dict(net.state_dict())
    bad["dec.r8_block0.conv1.weight"] = torch.zeros(4, 4, 1, 1)
    torch.save(bad, path)
    with pytest.raises(NetworkMismatchError, match=r"shape mismatch of dec\.r8_block0\.conv1\.weight: file \(4, 4, 1, 1\)"):
        load_external(path, "state_dict", network).denoiser()
    del bad["dec.r8_block0.conv1.weight"]
    torch.save(bad, path)
    with pytest.raises(NetworkMismatchError, match=r"missing parameter dec\.r8_block0\.conv1\.weight"):
        load_external(path, "state_dict", network).denoiser()
    torch.save({"weight": torch.zeros(1), "hook": os.system}, path)
    with pytest.raises(UnsafePickleError, match="weights_only=True"):
        load_external(path, "state_dict", network)
