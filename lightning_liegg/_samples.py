"""The callback's sample cache: which loader, which tensor of a batch, how many samples.

A fixed set of inputs is collected once (on CPU) and analysed at every evaluation, so curves
compare like with like. :class:`SampleCache` works on any iterable of batches; its Lightning
part (:meth:`SampleCache.loader`, :meth:`SampleCache.has_validation`) only reads the Trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor

from ._checks import check_callable, check_positive_int, describe
from ._lightning import is_overridden
from .exceptions import LieGGError
from .functional.actions import Action
from .functional.analysis import map_tensors

__all__ = ["SampleCache", "TangentCache", "default_input_fn", "TANGENT_CACHE_MB"]

#: default memory (MB) for the cached samples' input tangents (see :class:`TangentCache`)
TANGENT_CACHE_MB = 256.0

_DICT_KEYS = ("x", "input", "inputs", "image", "images")


def default_input_fn(batch: Any) -> Tensor:
    """The model input in a batch.

    The batch itself if a tensor, ``batch[0]`` for tuples and lists, for dicts the ``"x"``,
    ``"input"``, ``"inputs"``, ``"image"`` or ``"images"`` entry, else the first tensor value.

    Raises:
        LieGGError: when no tensor can be found.
    """
    if isinstance(batch, Tensor):
        return batch
    if isinstance(batch, (tuple, list)) and batch:
        return default_input_fn(batch[0])
    if isinstance(batch, Mapping):
        for key in _DICT_KEYS:
            if key in batch and isinstance(batch[key], Tensor):
                return batch[key]
        for value in batch.values():
            if isinstance(value, Tensor):
                return value
    raise LieGGError(
        "Expected a batch that is a tensor, a tuple/list starting with the input tensor, or a "
        f"dict with an 'x'/'input'/'image' tensor, but got {describe(batch)}. Pass input_fn."
    )


def _concat(parts: list[Any]) -> Any:
    """Per-batch extras joined: tensors concatenated along dim 0, other values of batch 0."""
    first = parts[0]
    if isinstance(first, Tensor):
        return torch.cat(parts)
    if isinstance(first, Mapping):
        return {k: _concat([p[k] for p in parts]) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([p[i] for p in parts]) for i in range(len(first)))
    return first


def _first_loader(loaders: Any) -> Any:
    if loaders is None:
        return None
    if isinstance(loaders, Mapping):
        return next(iter(loaders.values()), None)
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders


class SampleCache:
    """The first ``num_samples`` inputs of a loader, detached, on CPU, collected once.

    Args:
        num_samples: how many samples to keep.
        input_fn: maps a batch to the model input; :func:`default_input_fn` by default. It
            may return ``(x, extra)``: ``x`` is analysed, ``extra`` (a tensor, or a dict,
            tuple or list of them, one row per sample) is kept with it in :attr:`extra`, row
            for row; non-tensor values in ``extra`` are taken from the first batch.

    Example:
        >>> import torch
        >>> cache = SampleCache(num_samples=5)
        >>> cache.collect([(torch.ones(3, 2), 0), (torch.zeros(3, 2), 1)]).shape
        torch.Size([5, 2])
    """

    def __init__(self, num_samples: int, input_fn: Callable[[Any], Any] | None = None) -> None:
        self.num_samples = check_positive_int("num_samples", num_samples)
        check_callable("input_fn", input_fn)
        self.input_fn = input_fn if input_fn is not None else default_input_fn
        self.samples: Tensor | None = None
        #: the samples' input tangents, kept between evaluations (see :class:`TangentCache`)
        self.tangents = TangentCache()
        self.extra: Any = None

    def _split(self, got: Any) -> tuple[Tensor, Any, bool]:
        """``input_fn``'s result as ``(x, extra, has_extra)``."""
        if isinstance(got, Tensor):
            return got, None, False
        if isinstance(got, tuple) and len(got) == 2 and isinstance(got[0], Tensor):
            x, extra = got
            bad: list[tuple[int, ...]] = []

            def check(t: Tensor) -> Tensor:
                if t.ndim == 0 or t.shape[0] != x.shape[0]:
                    bad.append(tuple(t.shape))
                return t

            map_tensors(check, extra)
            if bad:
                raise LieGGError(
                    "Expected every tensor in the extra part of input_fn's (x, extra) to hold "
                    f"one row per sample, shape ({x.shape[0]}, ...) for x of shape "
                    f"{tuple(x.shape)}, but got shape(s) {bad}."
                )
            return x, extra, True
        raise LieGGError(
            "Expected input_fn to return a tensor, or a tuple (x, extra) whose first item is "
            f"the analysed tensor, but got {describe(got)}."
        )

    def collect(self, loader: Iterable | None) -> Tensor | None:
        """Collect the samples from ``loader`` (None or empty: none) and return them.

        Iterating a loader draws a seed from the global RNG: the RNG is forked, so training
        sees the same random numbers as without the cache.
        """
        chunks: list[Tensor] = []
        extras: list[Any] = []
        has_extra = False
        count = 0
        if loader is not None:
            with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
                for batch in loader:
                    x, extra, has_extra = self._split(self.input_fn(batch))
                    keep = self.num_samples - count

                    def cpu(t: Tensor, keep: int = keep) -> Tensor:
                        return t.detach().to("cpu").clone()[:keep]

                    chunks.append(cpu(x))
                    extras.append(map_tensors(cpu, extra))
                    count += chunks[-1].shape[0]
                    if count >= self.num_samples:
                        break
        self.samples = torch.cat(chunks) if chunks else None
        self.tangents.clear()
        self.extra = _concat(extras) if chunks and has_extra else None
        return self.samples

    def ensure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Tensor | None:
        """Collect from the Trainer's loader (see :meth:`loader`) unless already done."""
        if self.samples is None:
            self.collect(self.loader(trainer, pl_module))
        return self.samples

    @staticmethod
    def has_validation(trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        """Whether fit runs a validation loop."""
        return trainer.limit_val_batches != 0 and is_overridden("validation_step", pl_module)

    @classmethod
    def loader(cls, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Iterable | None:
        """The first validation loader if there is one, else the first training loader."""
        if trainer.state.fn == "fit" and cls.has_validation(trainer, pl_module):
            if trainer.val_dataloaders is None:  # no sanity check ran: set the loader up now
                trainer.fit_loop.epoch_loop.val_loop.setup_data()
            loader = _first_loader(trainer.val_dataloaders)
            if loader is not None:
                return loader
        if trainer.state.fn == "validate":
            return _first_loader(trainer.val_dataloaders)
        return _first_loader(trainer.train_dataloader)


class TangentCache:
    """The input tangents A_j . x of a fixed sample set, computed once, used at every evaluation.

    The tangents (for images: image differences times coordinate fields) do not depend on the
    model, so an evaluation of the same samples only needs the model's passes. They are kept
    per chunk, in the dtype and on the device the analysis uses, while all of them together
    (``action.dim`` times the samples' size) fit ``max_mb``; above it the analysis computes
    them at each evaluation. A new sample set, another action, or chunks of another shape,
    dtype or device recompute them. They are not part of checkpoints.

    Args:
        max_mb: memory budget in megabytes (0: never keep them).

    Example:
        >>> import torch, lightning_liegg as lg
        >>> cache, x = TangentCache(), torch.rand(4, 1, 8, 8)
        >>> get = cache.for_samples(x, lg.ImageAction())
        >>> get(0, x).shape, get(0, x) is get(0, x)
        (torch.Size([4, 4, 1, 8, 8]), True)
    """

    def __init__(self, max_mb: float = TANGENT_CACHE_MB) -> None:
        self.max_mb = max_mb
        self._samples: Tensor | None = None
        self._action: Action | None = None
        self._chunks: dict[int, Tensor] = {}
        #: how many chunks' tangents were computed (recomputations included)
        self.computed = 0

    def clear(self) -> None:
        """Forget the tangents (new samples)."""
        self._samples, self._action, self._chunks = None, None, {}

    def for_samples(
        self, samples: Tensor, action: Action
    ) -> Callable[[int, Tensor], Tensor | None] | None:
        """A ``(start, chunk) -> tangents`` function for ``samples``, or None over budget."""
        if samples is not self._samples or action is not self._action:
            self.clear()
            self._samples, self._action = samples, action
        size = action.dim * samples.numel() * max(samples.element_size(), 4)
        if size > self.max_mb * 2**20:
            self._chunks = {}
            return None
        return self._get

    def _get(self, start: int, chunk: Tensor) -> Tensor:
        assert self._action is not None
        kept = self._chunks.get(start)
        if (
            kept is not None
            and kept.shape[1:] == chunk.shape
            and kept.dtype == chunk.dtype
            and kept.device == chunk.device
        ):
            return kept
        self._action.check_input(chunk)  # the analysis' own message for inputs that do not fit
        with torch.no_grad(), torch.inference_mode(False):
            kept = self._action.basis_tangents(chunk.detach())
        self._chunks[start] = kept
        self.computed += 1
        return kept

    @property
    def nbytes(self) -> int:
        """Memory held now, in bytes."""
        return sum(t.numel() * t.element_size() for t in self._chunks.values())
