"""CUDA's device rule on a CPU-only machine: the "GPU" is torch's ``meta`` device.

A model and its inputs moved to ``meta`` behave like ones on a GPU for shapes, dtypes and
autograd, without data. :class:`SameDevice` enforces what a CUDA kernel enforces and ``meta``
kernels do not always check (``meta @ cpu`` passes on meta, fails on CUDA): every tensor
argument of an operator on one device, except 0-d CPU tensors (scalars) and CPU index tensors
of indexing operators; copies (``.to``) are the only way across. A tensor created on the CPU
by code that should have put it on its inputs' device then fails here as it would on a GPU.
Values cannot be read (``float(meta)`` raises), so the checks run the tensor work of each rule,
not the summaries computed from it.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

GPU = torch.device("meta")
aten = torch.ops.aten
CROSSING = {aten._to_copy.default, aten.copy_.default, aten.to.device, aten.to.dtype_layout, aten._copy_from.default}
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}


class DeviceMismatch(RuntimeError):
    pass


class SameDevice(TorchDispatchMode):
    """Raise :class:`DeviceMismatch` on an operator whose tensor arguments sit on two devices."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func not in CROSSING:
            flat, _ = tree_flatten((args, kwargs))
            tensors = [t for t in flat if isinstance(t, torch.Tensor)]
            if func in INDEXING:  # CUDA accepts CPU integer/bool indices
                tensors = [tensors[0]] + [t for t in tensors[1:] if t.dtype.is_floating_point or t.device != torch.device("cpu")]
            devices = {t.device for t in tensors if not (t.device.type == "cpu" and t.dim() == 0)}
            if len(devices) > 1:
                raise DeviceMismatch(f"{func}: tensors on {', '.join(sorted(map(str, devices)))}")
        return func(*args, **kwargs)
