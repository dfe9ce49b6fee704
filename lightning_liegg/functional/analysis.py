"""The one analysis path: ``_update`` (model, x -> Grams, n) and ``_compute`` (Gram, n -> report).

:func:`liegg` calls both; the :class:`~lightning_liegg.LieGG` metric calls ``_update`` per
batch and ``_compute`` on the synced state; the callback calls ``_update`` on its cached
samples and ``_compute`` on the all-reduced sum. ``_update`` takes the options as one
:class:`~lightning_liegg.functional.options.AnalysisOptions` and gets its rows, for the output
and any layers alike, from the one row engine
(:func:`~lightning_liegg.functional.polarization.polarization_rows`). So all three give the
same report on the same samples (tested to 1e-10 in float64, on one and on two processes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import LieGGError, check_basis, describe
from . import algebras
from .actions import Action
from .layers import OUTPUT, resolve_layers
from .layerwise_report import LayerwiseReport
from .options import AnalysisOptions
from .polarization import check_finite_rows, polarization_rows, user_call
from .report import SymmetryReport

__all__ = ["liegg", "gram_update", "check_reference", "map_tensors", "OUTPUT"]


def check_reference(reference: Any, action: Action) -> Tensor | None:
    """Check a reference algebra against ``action`` and return its basis.

    ``reference`` may be ``None``, an algebra name (resolved by :func:`algebras.from_name`), or
    a ``(k, p, q)`` basis (a tensor or nested lists) whose generator shape fits the action.
    """
    if reference is None:
        return None
    if isinstance(reference, (list, tuple)):  # nested lists, e.g. from a YAML config
        try:
            reference = torch.tensor(reference, dtype=torch.float64)
        except (TypeError, ValueError) as err:
            raise LieGGError(
                "Expected reference as nested lists of numbers of shape (k, p, q), but got "
                f"{describe(reference)} ({err})."
            ) from err
    if isinstance(reference, str):
        n = (
            action.generator_shape[0]
            if action.generator_shape[0] == action.generator_shape[1]
            else None
        )
        affine = action.generator_shape[1] == action.generator_shape[0] + 1  # [A | b]
        reference = algebras.from_name(reference, n=n, affine=affine)
    embed = getattr(action, "embed_reference", None)
    if embed is not None and isinstance(reference, Tensor):
        # e.g. so(2) as the rotation field of a VectorFieldAction, rotation2d on the projective
        # image plane
        reference = embed(reference)
    return check_basis(reference, action.generator_shape, "reference", f"for {action!r}")


def gram_update(rows: Tensor) -> Tensor:
    """E^T E in float64 for rows ``(N, K, m)``: ``(m, m)``.

    No copy of rows that are views of ``(m, N, K)`` (forward mode) either.
    """
    flat = rows.reshape(-1, rows.shape[-1]).to(torch.float64)
    return flat.T @ flat


def map_tensors(fn: Callable[[Tensor], Any], tree: Any) -> Any:
    """``tree`` with ``fn`` applied to every tensor in it (dicts, tuples and lists walked)."""
    if isinstance(tree, Tensor):
        return fn(tree)
    if isinstance(tree, Mapping):
        return {k: map_tensors(fn, v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(map_tensors(fn, v) for v in tree)
    return tree


class BoundForward(nn.Module):
    """The model as a function of the analysed input alone, the rest held fixed per sample.

    ``forward(x)`` calls ``forward_fn(module, x, extra)`` with the first ``len(x)`` rows of
    every tensor in ``extra``, so each sample keeps its own second input, mask or metadata;
    ``forward_fn(module, x)`` when there is no ``extra``; ``module(x, extra)`` without a
    ``forward_fn``. ``module`` is a submodule, so the analysis sees its parameters and sets its
    train/eval mode as for the bare model. An exception inside ``forward_fn`` reaches the
    caller of the analysis as a :class:`LieGGError` that names it (see
    :func:`~lightning_liegg.functional.polarization.user_call`).
    """

    def __init__(
        self,
        module: Callable[..., Any],
        forward_fn: Callable[..., Any] | None,
        extra: Any,
    ) -> None:
        super().__init__()
        self.module = module
        self.forward_fn = forward_fn
        self.extra = extra

    @property
    def _liegg_key(self) -> Any:
        """What the analysis remembers per model (auto mode's fallback): the wrapped model."""
        return self.module

    def _liegg_narrow(self, start: int, stop: int) -> BoundForward:
        """The same model bound to samples ``start:stop`` of ``extra`` (a sub-batch)."""
        part = BoundForward(
            self.module, self.forward_fn, map_tensors(lambda t: t[start:stop], self.extra)
        )
        part.training = self.training
        return part

    def forward(self, x: Tensor) -> Any:
        if self.extra is None:  # a forward_fn without an extra part: (module, x)
            return user_call("forward_fn", _FORWARD_FN_PLAIN, self.forward_fn, self.module, x)
        n = x.shape[0]
        extra = map_tensors(lambda t: t[:n], self.extra)
        if self.forward_fn is None:
            return self.module(x, extra)
        return user_call("forward_fn", _FORWARD_FN_EXTRA, self.forward_fn, self.module, x, extra)


#: how ``forward_fn`` is called, without and with an extra part (for error messages)
_FORWARD_FN_PLAIN = "forward_fn(module, x) -> outputs (no extra part)"
_FORWARD_FN_EXTRA = "forward_fn(module, x, extra) -> outputs (with an extra part)"


def _chunks(
    model: Callable[[Tensor], Any],
    x: Tensor,
    chunk_size: int | None,
    prepare: Callable[[Tensor], Tensor] | None,
    forward_fn: Callable[..., Any] | None,
    extra: Any,
) -> Iterator[tuple[int, Callable[[Tensor], Any], Tensor]]:
    """``(start, model, chunk)`` for each chunk of ``x`` (prepared), in order.

    The fields of :class:`~lightning_liegg.functional.options.AnalysisOptions` of the same
    names (also for callers without an action, such as the discrete transform errors). With
    ``forward_fn`` or ``extra`` the model comes bound to the chunk's own rows of ``extra`` (a
    :class:`BoundForward`), so each sample keeps its fixed rest of the input.
    """
    n = int(x.shape[0])
    step = max(n if chunk_size is None else chunk_size, 1)
    for start in range(0, n, step):
        chunk = x[start : start + step]
        if prepare is not None:
            chunk = prepare(chunk)
        net = model
        if forward_fn is not None or extra is not None:
            part = map_tensors(lambda t, a=start: t[a : a + step], extra)
            if prepare is not None:
                part = map_tensors(prepare, part)
            net = BoundForward(model, forward_fn, part)
        yield start, net, chunk


def _update(
    model: Callable[[Tensor], Any], x: Tensor, opts: AnalysisOptions
) -> tuple[dict[str, Tensor], int]:
    """The float64 Gram matrices E^T E ``(m, m)`` of ``model`` on ``x``, and the sample count.

    One Gram matrix per analysed representation, from the same passes: every layer of
    ``opts.layers`` in forward order, then ``"output"`` (only ``"output"`` without layers).
    ``x`` is analysed in chunks of ``opts.chunk_size`` samples (the result does not depend on
    it beyond rounding), each prepared by ``opts.prepare``, with its own rows of
    ``opts.extra``, and its tangents from ``opts.tangents`` (see
    :class:`~lightning_liegg.functional.options.AnalysisOptions`). Layer names refer to
    ``model``'s own submodules, also when a ``forward_fn`` wraps it.

    Args:
        model: ``nn.Module`` or callable, as in :func:`liegg`.
        x: inputs ``(N, ...)`` for ``opts.action`` (checked per chunk).
        opts: the analysis options.

    Returns:
        ``({name: gram}, n)``; sums of these over batches or processes are again a valid state.
    """
    m = opts.action.dim
    where = opts.device if opts.device is not None else x.device
    layered = opts.layers is not None
    if layered:  # resolved once here, against the user's model
        opts = opts.replace(layers=resolve_layers(model, opts.layers, opts.action, opts.reduction))
    grams: dict[str, Tensor] = {}
    chunks = _chunks(model, x, opts.chunk_size, opts.prepare, opts.forward_fn, opts.extra)
    for start, net, chunk in chunks:
        tangents = None if opts.tangents is None else opts.tangents(start, chunk)
        rows = polarization_rows(net, chunk, opts, tangents, root=model, check_finite=False)
        for name, r in rows.items():
            if name not in grams:
                grams[name] = torch.zeros(m, m, dtype=torch.float64, device=where)
            g = gram_update(r)
            if not bool(torch.isfinite(g).all()):  # NaN/inf rows show in the Gram matrix
                check_finite_rows(name, r, layered)
            grams[name] += g.to(where)
    return grams, int(x.shape[0])


def _compute_layers(
    grams: dict[str, Tensor],
    n: int,
    action: Action,
    reference: Tensor | None = None,
    num_generators: int = 4,
) -> LayerwiseReport:
    """The :class:`LayerwiseReport` of summed per-layer states ``{name: (m, m)}``."""
    return LayerwiseReport(
        {name: _compute(g, n, action, reference, num_generators) for name, g in grams.items()}
    )


def _compute(
    gram: Tensor,
    n: int,
    action: Action,
    reference: Tensor | None = None,
    num_generators: int = 4,
) -> SymmetryReport:
    """The report of a summed state: Gram matrix ``(m, m)`` over ``n`` samples."""
    if n < 1:
        raise LieGGError(f"Expected at least one analysed sample, but got n={n}.")
    return SymmetryReport(
        gram,
        n,
        action.basis,
        reference,
        num_generators,
        describe=getattr(action, "format_generator", None),
    )


def liegg(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    reference: Tensor | str | None = None,
    chunk_size: int | None = None,
    ad_mode: str = "auto",
    output_action: Action | None = None,
    layers: Any = None,
    *,
    compile: bool = False,
) -> SymmetryReport | LayerwiseReport:
    """Find the symmetries ``model`` has on the inputs ``x``.

    Args:
        model: ``nn.Module`` or callable, outputs ``(N,)``, ``(N, K)`` or ``(N, ...)``.
        x: inputs ``(N, ...)`` for ``action``; not modified.
        action: ``VectorAction``, ``ImageAction`` or another :class:`Action`.
        reduction: ``"none"`` (one row per output) or ``"sum"`` (the paper's behaviour).
        output_transform: applied to the outputs first (e.g. L2-normalised logits).
        reference: optional ``(k, p, q)`` algebra to measure symmetry bias against, or its
            name (``"so(3)"``, ``"rotation2d"``, ...; see ``algebras.from_name``).
        chunk_size: analyse ``x`` in chunks of this many samples (memory stays flat); the
            result is the same as in one go.
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` differentiation (see
            :func:`lightning_liegg.polarization_matrix`).
        output_action: for equivariant models, how the same generators act on the outputs
            (``VectorAction``, ``ImageAction``, ``TensorAction``, ``DirectSum``, ...); see
            :func:`lightning_liegg.polarization_matrix`. ``None`` (default): invariance.
        layers: also analyse intermediate representations (``model`` must be an
            ``nn.Module``): a list of submodule names as in ``model.named_modules()``, a dict
            name -> output action for that layer's output (``None``: invariance of that
            representation; ``ImageAction()`` for a feature map ``(N, C, H', W')``:
            equivariance), or ``"auto"`` (the model's top-level children, or the leaf modules
            of its single ``Sequential`` child; modules that never run are dropped). A layer
            outputting a tuple is represented by its first tensor. All layers come from the
            same passes as the output in forward mode (reverse mode: one vector-Jacobian
            product per feature of each layer). ``output_transform`` and ``output_action``
            concern the final output, analysed under the name ``"output"``.
        compile: run the row computation under ``torch.compile``: the first call per model,
            shape, dtype and setting compiles (seconds to minutes on a CPU), later ones reuse
            it with the new weights; the eager path answers, with one ``LieGGWarning``, where
            the model does not compile as one graph (see ``docs/compiled.md``). Not used with
            ``layers``.

    The names ``chunk_size`` and ``ad_mode`` are those of :class:`LieGGCallback`.

    Returns:
        A :class:`SymmetryReport`; with ``layers``, a
        :class:`~lightning_liegg.functional.layerwise_report.LayerwiseReport` mapping each
        layer (forward order) and ``"output"`` to its report.

    Raises:
        LieGGError: on inputs, options or a reference that do not fit the action.
        NonFiniteError: when outputs or gradients are not finite.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = lambda x: x.reshape(-1, 2, 3).norm(dim=2)   # rotation invariant
        >>> rep = lg.liegg(model, torch.randn(64, 6, dtype=torch.float64),
        ...                lg.VectorAction(dim=3, channels=2), reference=lg.algebras.so(3))
        >>> rep.symmetry_dim, round(rep.subspace_distance(), 6)
        (3, 0.0)
    """
    opts = AnalysisOptions(
        action,
        reduction,
        output_transform,
        ad_mode,
        output_action,
        chunk_size,
        layers,
        compile=compile,
    )
    ref = check_reference(reference, action)
    action.check_input(x)
    grams, n = _update(model, x, opts)
    if layers is None:
        return _compute(grams[OUTPUT], n, action, ref)
    return _compute_layers(grams, n, action, ref)
