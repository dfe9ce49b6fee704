"""Sub-batches that keep the analysis' temporaries small on CPU.

Forward mode pushes ``m`` tangents at once, reverse mode ``K`` cotangents: every activation of
the model exists ``m`` (or ``K``) times over. On CPU, tensors of tens of megabytes are not
kept by the memory allocator between operations: each one is mapped fresh from the operating
system and page-faulted in, and on a ResNet or a ViT at 64 x 64 pixels, 512 samples, the
kernel's page faults took 40% of the analysis (measured with ``getrusage``: 1.2 to 1.9 million
minor faults per call). Batches whose temporaries pass twice :data:`BUDGET_BYTES` are split
into sub-batches within it, which are served from memory the allocator keeps and fault
nothing (:func:`sub_batch`).

The size of the largest temporary per sample comes from one probe: the model's forward on one
sample under a dispatch mode that records the largest tensor any op returns. It is remembered
per model and input shape (activations' sizes do not depend on the weights).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

__all__ = [
    "BUDGET_BYTES",
    "LargestTensor",
    "probe",
    "remembered",
    "remember",
    "run_one",
    "sub_batch",
]

#: the largest temporary a sub-batch may make (bytes). On the architectures benchmark (1
#: thread, ``"none"`` against the floor) 8, 16 and 32 MB gave 1.48, 1.51, 2.08x on the ResNet
#: (64 KB per sample: sub-batches of 32, 64, 128) and 2.35, 2.43, 2.54x on the ViT; the
#: benchmark MLP stays one batch (see :func:`sub_batch`)
BUDGET_BYTES = 16 << 20

_SEEN: weakref.WeakKeyDictionary[Any, dict[tuple, int]] = weakref.WeakKeyDictionary()


def _storage(t: Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):  # a tensor without storage
        return None


class LargestTensor(TorchDispatchMode):
    """Records the size in bytes of the largest tensor any op allocates while active.

    Views (outputs that share an input's storage, such as a transposed weight) allocate
    nothing and are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        inputs = {_storage(t) for t in tree_leaves((args, kwargs)) if isinstance(t, Tensor)}
        for t in tree_leaves(out):
            if isinstance(t, Tensor) and _storage(t) not in inputs:
                self.largest = max(self.largest, t.numel() * t.element_size())
        return out


def _key(x: Tensor) -> tuple:
    return (tuple(x.shape[1:]), x.dtype)


def remembered(model: Any, x: Tensor) -> int | None:
    """The largest temporary per sample recorded for ``model`` on inputs like ``x``, if any."""
    model = getattr(model, "_liegg_key", model)
    try:
        return _SEEN.get(model, {}).get(_key(x))
    except TypeError:  # not weak-referenceable
        return None


def remember(model: Any, x: Tensor, largest: int) -> None:
    """Keep ``largest`` (bytes per sample) for ``model`` on inputs like ``x``."""
    model = getattr(model, "_liegg_key", model)
    try:
        _SEEN.setdefault(model, {})[_key(x)] = largest
    except TypeError:  # not weak-referenceable: probe again next time
        pass


def probe(run: Callable[[Tensor], Any], x1: Tensor) -> tuple[Any, int]:
    """``run(x1)`` on one sample, and the largest tensor (bytes) it made (at least ``x1``)."""
    mode = LargestTensor()
    with mode:
        out = run(x1)
    return out, max(mode.largest, x1.numel() * x1.element_size())


def run_one(model: Any, x: Tensor, run: Callable[[Tensor], Any]) -> tuple[Any, int | None]:
    """``run`` on a copy of the first sample of ``x``, and the largest temporary per sample.

    On CPU the run is a :func:`probe` the first time for ``model`` and inputs like ``x``, and
    its result is remembered; later runs are plain. A probe that raises remembers 0 (one batch,
    no second probe) and lets the error through. Off CPU the size is None.
    """
    one = x[:1].clone()  # a copy: the model may write into its input
    if x.device.type != "cpu":
        return run(one), None
    largest = remembered(model, x)
    if largest is not None:
        return run(one), largest
    try:
        out, largest = probe(run, one)
    except Exception:  # an interrupt is not the model's failure: probe again next time
        remember(model, x, 0)
        raise
    remember(model, x, largest)
    return out, largest


def sub_batch(
    n: int, device: torch.device, directions: int, largest: int | None, compiled: bool = False
) -> int:
    """Samples per sub-batch (all ``n`` on GPUs or when ``largest`` is unknown).

    On CPU, a batch whose ``directions`` copies of the largest temporary (``largest`` bytes per
    sample) pass twice :data:`BUDGET_BYTES` is split into sub-batches that keep them within it.
    Smaller batches stay whole: each sub-batch costs a fixed overhead, which the benchmark MLP
    (2,048 images, 26 MB of tangents) paid as 15% more time in 2 sub-batches.

    ``compiled``: sub-batches for the compiled graph, up to twice :data:`BUDGET_BYTES` (it
    writes fewer temporaries; measured with ``benchmarks/bench_compiled.py``: the ViT's
    analysis took 8.1-8.3 s in sub-batches of 64-72 images, 8.9 s in sub-batches of 37 and
    10.7 s in sub-batches of 128, eager 8.9-9.3 s).
    """
    if device.type != "cpu" or not largest or n <= 1:
        return n
    per_sample = max(1, directions) * largest
    if per_sample * n <= 2 * BUDGET_BYTES:
        return n
    return max(1, min(n, (2 if compiled else 1) * BUDGET_BYTES // per_sample))
