"""The network polarization matrix E = J_F(x) T(x), without side effects.

Row (b, k), column j of E is the Lie derivative of output k at sample b along basis element j:
dF_k/dx(x_b) . (A_j . x_b). Two ways give the same numbers:

* reverse mode: one vector-Jacobian product per output (vmapped), then ``action.coordinates``;
* forward mode: one Jacobian-vector product per basis element (vmapped ``torch.func.jvp``).

``ad_mode="auto"`` picks the one with fewer passes (m JVPs against K VJPs; an output action adds
no pass), and falls back to reverse mode (once, with a ``LieGGWarning``, remembered per
model) when forward mode meets an op without a forward-AD rule. With an ``output_action``
the rows become the Lie derivatives of an equivariance,
dF_k/dx(x_b) . (A_j . x_b) - (A_j . F(x_b))_k, the second term computed from the outputs alone.

The caller's model, input, parameter gradients, train/eval modes and RNG state are left as
they were.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .._deprecation import renamed_argument
from . import _constant_weights, _memory
from ._checks import (
    LieGGError,
    LieGGWarning,
    NonFiniteError,
    describe,
    output_transform_hint,
    shown,
)
from ._fallback import _missing_forward_rule, _reverse_only, fall_back_to_reverse
from ._isolation import isolated
from ._output_term import subtract_output_term
from .actions import Action

__all__ = [
    "polarization_matrix",
    "polarization_rows",
    "isolated",
    "l2_normalize",
    "check_output_action",
    "check_tangents",
    "contract_tangents",
]

REDUCTIONS = ("none", "sum")
MODES = ("auto", "forward", "reverse")


def check_options(action: Any, reduction: Any, mode: Any = "auto") -> None:
    """Validate the arguments shared by every entry point.

    Raises:
        LieGGError: when ``action`` is not an :class:`Action` or an option is unknown.
    """
    if not isinstance(action, Action):
        raise LieGGError(
            "Expected action to be an Action such as lightning_liegg.VectorAction(dim=...) or "
            f"ImageAction(), but got {describe(action)}."
        )
    if getattr(action, "generator_shape", None) is None:
        raise LieGGError(
            f"Expected an input action with a generator shape, but got {action!r}, which adopts "
            "its partner's: pass generator_shape=(p, q) to use it on inputs."
        )
    if reduction not in REDUCTIONS:
        raise LieGGError(
            f"Expected reduction to be one of {REDUCTIONS}, but got {shown(reduction)}."
        )
    if mode not in MODES:
        raise LieGGError(f"Expected ad_mode to be one of {MODES}, but got {shown(mode)}.")


def check_output_action(action: Action, output_action: Any, reduction: str) -> None:
    """Check that ``output_action`` can pair with ``action`` (same generator shape, no sum).

    Raises:
        LieGGError: on a non-Action, a different generator shape, or ``reduction="sum"``.
    """
    if output_action is None:
        return
    if not isinstance(output_action, Action):
        raise LieGGError(
            "Expected output_action to be None (invariance) or an Action such as "
            f"lightning_liegg.VectorAction(dim=...), but got {describe(output_action)}."
        )
    shape = getattr(output_action, "generator_shape", None)
    if shape is not None and tuple(shape) != tuple(action.generator_shape):
        raise LieGGError(
            f"Expected output_action to take generators of the input action's shape "
            f"{tuple(action.generator_shape)} ({action!r}), but {output_action!r} takes "
            f"{tuple(shape)}: the same generator h must act on inputs and outputs."
        )
    if reduction == "sum":
        raise LieGGError(
            f"Expected reduction='none' with output_action={output_action!r}, but got "
            "reduction='sum': the sum of a vector's components is not equivariant (only "
            "generators that keep (1, ..., 1) fixed would leave it unchanged), so an "
            "equivariance is analysed one output at a time."
        )


def l2_normalize(outputs: Tensor) -> Tensor:
    """L2-normalise outputs ``(N, K)`` along K, as the LieGG paper does for classifier logits.

    Usable as ``output_transform``, also by import path from a LightningCLI YAML file
    (``output_transform: lightning_liegg.l2_normalize``).
    """
    return torch.nn.functional.normalize(outputs.reshape(outputs.shape[0], -1), dim=1)


def _outputs(
    model: Callable[[Tensor], Any],
    x: Tensor,
    reduction: str,
    output_transform: Callable[[Any], Tensor] | None,
    actions: tuple[Action, Action] | None = None,
    seen: dict[str, Any] | None = None,
) -> Tensor:
    out = model(x)
    if output_transform is not None:
        out = output_transform(out)
    if not isinstance(out, Tensor):
        raise LieGGError(
            "Expected the model (after output_transform) to return a tensor of shape (N,), "
            f"(N, K) or (N, ...), but got {describe(out)}. {output_transform_hint(out)}"
        )
    n = x.shape[0]
    if out.ndim == 0 or out.shape[0] != n:
        raise LieGGError(
            f"Expected model outputs with the batch size first, shape ({n}, ...), for inputs of "
            f"shape {tuple(x.shape)}, but got shape {tuple(out.shape)}."
        )
    if actions is not None:  # (input action, output action)
        try:
            actions[1].check_input(out, "model outputs")
        except LieGGError as err:
            raise LieGGError(
                f"Expected model outputs (after output_transform) of a shape that the output "
                f"action {actions[1]!r} accepts, for inputs of shape {tuple(x.shape)} under the "
                f"input action {actions[0]!r}, but got outputs of shape {tuple(out.shape)}. "
                f"({err})"
            ) from err
    if seen is not None:
        seen["shape"] = tuple(out.shape)
    out = out.reshape(n, -1)
    if reduction == "sum":
        out = out.sum(dim=1, keepdim=True)
    return out


def _all_finite(t: Tensor) -> bool:
    """Whether every entry of ``t`` is finite, by one reduction and one host sync.

    NaN and inf propagate into the sum. A sum that overflows reads as not finite: callers then
    run the exact per-row check, so this may only be too cautious, never wrong.
    """
    total = t.sum(dtype=torch.float32) if t.element_size() < 4 else t.sum()
    return bool(torch.isfinite(total))


def _check_finite_outputs(out: Tensor) -> None:
    if _all_finite(out):
        return
    bad = ~torch.isfinite(out).all(dim=1)
    if bool(bad.any()):
        count = int(bad.sum())
        first = int(bad.nonzero()[0, 0])
        raise NonFiniteError(
            f"Expected finite model outputs, but {count} of {out.shape[0]} samples gave NaN or "
            f"inf (first: sample {first})."
        )


def check_tangents(tangents: Any, x: Tensor, action: Action) -> None:
    """Check precomputed tangents: ``(action.dim, *x.shape)``, x's dtype and device.

    Raises:
        LieGGError: saying the expected and the received shape, dtype or device.
    """
    expected = (action.dim, *x.shape)
    if not isinstance(tangents, Tensor) or tuple(tangents.shape) != expected:
        got = tuple(tangents.shape) if isinstance(tangents, Tensor) else describe(tangents)
        raise LieGGError(
            f"Expected tangents of shape {expected} (action.dim = {action.dim} basis tangents "
            f"of inputs {tuple(x.shape)} under {action!r}), but got {got}."
        )
    if tangents.dtype != x.dtype or tangents.device != x.device:
        raise LieGGError(
            f"Expected tangents of the inputs' dtype {x.dtype} on {x.device}, but got "
            f"{tangents.dtype} on {tangents.device}."
        )


def contract_tangents(grads: Tensor, tangents: Tensor) -> Tensor:
    """Rows from input gradients ``(N, K, ...)`` and tangents ``(m, N, ...)``: ``(N, K, m)``.

    Entry [b, k, j] = grads[b, k] . tangents[j, b], one batched matrix product over the
    samples. For one output (reduction "sum") the product runs on the tangents' own layout,
    ``(N, m, size) @ (N, size, 1)``: no temporary (a broadcast product and a sum wrote one as
    big as the tangents and took 1.8x as long on the benchmark MLP's 2,048 images).
    """
    n, k = grads.shape[:2]
    m = tangents.shape[0]
    g = grads.reshape(n, k, -1)
    t = tangents.reshape(m, n, -1)
    if k == 1:
        return torch.bmm(t.transpose(0, 1), g.transpose(1, 2)).transpose(1, 2)
    return torch.bmm(g, t.permute(1, 2, 0))


def _reverse_one_output(f: Callable[[Tensor], Tensor], xd: Tensor) -> tuple[Tensor, Tensor] | None:
    """Outputs ``(N, 1)`` and input gradients ``(N, 1, ...)`` by one autograd backward pass.

    No copy of the input: the model sees a leaf that requires grad, which autograd refuses to
    modify in place (the error sends the caller to ``torch.func``, on a copy).

    For one output this is about 10% faster than ``torch.func.vjp`` (no functorch wrappers),
    and like it, accumulates nothing in ``.grad`` (``torch.autograd.grad`` with respect to the
    input only). Returns None where plain autograd cannot run (an in-place op on the input,
    an output that does not depend on it, ...); the caller then uses ``torch.func``.
    """
    leaf = xd.detach().requires_grad_(True)
    try:
        with torch.enable_grad():
            out = f(leaf)
            if not out.requires_grad:
                return None
            _check_finite_outputs(out.detach())
            (grads,) = torch.autograd.grad(out, leaf, torch.ones_like(out))
    except (RuntimeError, TypeError):
        return None
    return out.detach(), grads.unsqueeze(1)


def _push_constant_weights(
    model: Any, push: Callable[[Tensor], tuple[Tensor, Tensor]], tangents: Tensor, x: Tensor
) -> tuple[Tensor, Tensor] | None:
    """Vmapped JVPs with lean rules for the model's own linear layers and convolutions.

    PyTorch's forward-AD rule for a linear layer also multiplies the input by the (zero) tangent
    of the weight, an extra matmul per layer; :mod:`._constant_weights` skips it (same values).
    Returns None where that does not apply or anything goes wrong; the caller then runs the
    generic path, which also reports real errors.
    """
    if not isinstance(model, nn.Module) or not _constant_weights.usable(x):
        return None
    constants = [*model.parameters(), *model.buffers()]
    if not constants:
        return None
    try:
        with _constant_weights.ConstantWeights(constants):
            return torch.func.vmap(push, out_dims=(None, 0))(tangents)
    except Exception:  # an unusual model: the generic path decides
        return None


def _warn_sum(shape: tuple[int, ...] | None) -> None:
    if shape is None or math.prod(shape[1:]) <= 1:
        return
    warnings.warn(
        f"reduction='sum' adds up {math.prod(shape[1:])} outputs per sample (shape "
        f"{tuple(shape[1:])}) before "
        "differentiating: a symmetry of the sum is not one of the outputs (for vector outputs, "
        "a rotation about (1, ..., 1) keeps the sum of the components). If the outputs "
        "transform with the input (vectors, images, tensors), pass output_action= (e.g. "
        "lightning_liegg.VectorAction(dim=...)) with reduction='none'.",
        LieGGWarning,
        stacklevel=3,
    )


def _forward_rows(
    model: Any,
    f: Callable[[Tensor], Tensor],
    xd: Tensor,
    action: Action,
    tangents: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Rows ``(N, K, m)`` by one vmapped JVP per basis element, and the outputs ``(N, K)``.

    ``tangents``: the basis tangents of ``xd`` if the caller has them.
    """
    if tangents is None:
        tangents = action.basis_tangents(xd)  # (m, N, ...)

    def push(t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.func.jvp(f, (xd,), (t,))

    pushed = _push_constant_weights(model, push, tangents, xd)
    if pushed is not None:
        out, jt = pushed
    else:
        try:
            out, jt = torch.func.vmap(push, out_dims=(None, 0))(tangents)  # (N,K), (m,N,K)
        except RuntimeError as err:  # an op without a batching rule (or under autocast): loop
            if _missing_forward_rule(err) is not None:
                raise
            looped = [push(t) for t in tangents]
            out, jt = looped[0][0], torch.stack([p[1] for p in looped])
    _check_finite_outputs(out)
    return jt.permute(1, 2, 0).to(torch.float64), out


def _contract(grads: Tensor, xd: Tensor, action: Action, tangents: Tensor | None) -> Tensor:
    """Rows ``(N, K, m)`` in float64 from input gradients ``(N, K, ...)``."""
    work = torch.promote_types(xd.dtype, torch.float32)
    if tangents is None:
        return action.coordinates(grads.to(work), xd.to(work)).to(torch.float64)
    return contract_tangents(grads.to(work), tangents.to(work)).to(torch.float64)


def _reverse_rows(
    f: Callable[[Tensor], Tensor],
    xd: Tensor,
    action: Action,
    tangents: Tensor | None = None,
    one_output: bool = False,
) -> tuple[Tensor, Tensor]:
    """Rows ``(N, K, m)`` by one vmapped VJP per output, contracted with the tangents; outputs.

    ``one_output``: the outputs are known to be ``(N, 1)``; plain autograd is tried first.
    ``xd`` is the caller's input (detached): the passes that could write into it get a copy.
    """
    one = _reverse_one_output(f, xd) if one_output else None
    if one is not None:
        out, grads = one
        return _contract(grads, xd, action, tangents), out
    out, vjp_fn = torch.func.vjp(f, xd.clone())  # the model may write into its input
    _check_finite_outputs(out)
    k = out.shape[1]
    if k == 1:
        grads = vjp_fn(torch.ones_like(out))[0].unsqueeze(1)
    else:
        eye = torch.eye(k, dtype=out.dtype, device=out.device)
        cot = eye[:, None, :].expand(k, out.shape[0], k)
        try:
            grads = torch.func.vmap(vjp_fn)(cot)[0]  # (K, N, ...)
        except RuntimeError:  # an op without a batching rule (or under autocast): loop
            grads = torch.stack([vjp_fn(c)[0] for c in cot])
        grads = grads.transpose(0, 1)  # (N, K, ...)
    return _contract(grads, xd, action, tangents), out


def _autograd_rows(
    f: Callable[[Tensor], Tensor], xd: Tensor, action: Action, tangents: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Rows ``(N, K, m)`` and outputs ``(N, K)`` by regular autograd, one backward per output.

    For models torch.func cannot differentiate: custom autograd Functions in the old style
    (without ``setup_context``), or kernels that pick their path by the outer grad mode (the
    CPU LSTM drops the workspace its backward needs under ``no_grad``). Gradients go to a
    private leaf copy of ``x`` only (``torch.autograd.grad`` with ``inputs``), so nothing
    accumulates in parameters' ``.grad``.
    """
    with torch.enable_grad():
        leaf = xd.clone().requires_grad_(True)
        out = f(leaf)
        _check_finite_outputs(out.detach())
        k = out.shape[1]
        grads = torch.stack(
            [
                torch.autograd.grad(out[:, j].sum(), leaf, retain_graph=j < k - 1)[0]
                for j in range(k)
            ],
            dim=1,
        )  # (N, K, ...)
    return _contract(grads, xd, action, tangents), out.detach()


def _sub_batches(
    model: Any, xd: Tensor, tangents: Tensor | None, step: int
) -> Iterator[tuple[Any, Tensor, Tensor | None]]:
    """``(model, inputs, tangents)`` for each sub-batch of ``step`` samples (see :mod:`._memory`).

    One sub-batch is the caller's own tensors. Several are copies, not views (forward AD would
    give a view a tangent as big as its base); a bound model (``_liegg_narrow``) slices its
    fixed rest with them.
    """
    n = int(xd.shape[0])
    if step >= n:
        yield model, xd, tangents
        return
    narrow = getattr(model, "_liegg_narrow", None)
    for start in range(0, n, step):
        stop = start + step
        net = model if narrow is None else narrow(start, stop)
        part_t = None if tangents is None else tangents[:, start:stop].contiguous()
        yield net, xd[start:stop].clone(), part_t


def _probe(
    model: Any, xd: Tensor, reduction: str, transform: Callable | None, need_outputs: bool
) -> tuple[int | None, int | None]:
    """``(K, largest)``: outputs per sample and the largest temporary of one sample (bytes).

    K is None when not needed and not learnt; ``largest`` is None off CPU or when unknown (0
    once a probe failed: no sub-batches, no second probe).
    One forward on one sample (a copy: the model may write into its input) answers both; the
    largest temporary is remembered per model and input shape (:mod:`._memory`). When
    ``need_outputs``, errors are the caller's (a one-sample failure is retried on the whole
    batch, so messages report its shapes); otherwise a failed probe only means no sub-batches.
    """
    k = 1 if reduction == "sum" else None
    cpu = xd.device.type == "cpu"
    largest = _memory.remembered(model, xd) if cpu else None
    if (k is not None or not need_outputs) and (largest is not None or not cpu):
        return k, largest  # nothing to learn

    def run(inp: Tensor) -> Tensor:
        return _outputs(model, inp, reduction, transform)

    try:
        out, largest = _memory.run_one(model, xd, run)
        return (k if k is not None else int(out.shape[1])), largest
    except Exception as err:
        if not need_outputs:  # a failed probe only means no sub-batches
            return k, None
        if not isinstance(err, LieGGError):
            try:  # what the dispatch mode could not run may still run plainly
                return int(run(xd[:1].clone()).shape[1]), None
            except LieGGError:
                pass
        # report shapes of the caller's whole batch, not of the probe
        return int(run(xd.clone()).shape[1]), None


def _rows(
    model: Any,
    xd: Tensor,
    action: Action,
    reduction: str,
    output_transform: Callable | None,
    mode: str,
    use: str,
    outputs: int | None,
    pair: tuple[Action, Action] | None,
    seen: dict[str, Any],
    tangents: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Rows ``(N, K, m)`` and outputs ``(N, K)`` of one (sub-)batch in mode ``use``."""

    def f(inp: Tensor) -> Tensor:
        return _outputs(model, inp, reduction, output_transform, pair, seen)

    if use == "forward":
        try:
            return _forward_rows(model, f, xd.clone(), action, tangents)
        except RuntimeError as err:  # NotImplementedError is a RuntimeError
            fall_back_to_reverse(err, model, mode)
    try:
        one = reduction == "sum" or outputs == 1
        return _reverse_rows(f, xd, action, tangents, one)
    except RuntimeError as err:  # torch.func cannot run it: try regular autograd
        try:
            return _autograd_rows(f, xd, action, tangents)
        except Exception:
            raise err from None


def polarization_rows(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    mode: str = "auto",
    output_action: Action | None = None,
    tangents: Tensor | None = None,
) -> Tensor:
    """The polarization matrix as a float64 tensor ``(N, K, action.dim)``.

    Same arguments as :func:`polarization_matrix`; K is 1 for ``reduction="sum"``. One more,
    ``tangents``: optional precomputed input tangents ``action.basis_tangents(x)``, shape
    ``(action.dim, *x.shape)``, same dtype and device as ``x``. They do not depend on the
    model, so a caller that analyses the same inputs again (the callback) computes them once:
    forward mode pushes them as they are, reverse mode contracts the input gradients with them
    (instead of ``action.coordinates``). Same numbers up to rounding.
    """
    check_options(action, reduction, mode)
    check_output_action(action, output_action, reduction)
    action.check_input(x)
    if tangents is not None:
        check_tangents(tangents, x, action)
    if output_transform is not None and not callable(output_transform):
        raise LieGGError(
            f"Expected output_transform to be callable, but got {describe(output_transform)}."
        )
    if not callable(model):
        raise LieGGError(
            f"Expected model to be callable (an nn.Module), but got {describe(model)}."
        )
    pair = None if output_action is None else (action, output_action)
    seen: dict[str, Any] = {}

    with isolated(model, x.device):
        xd = x.detach()  # not modified: every pass that could write into it gets a copy
        if xd.is_inference():  # autograd cannot track an inference tensor
            xd = xd.clone()
        auto = mode == "auto" and _reverse_only(model) is None
        outputs, largest = _probe(model, xd, reduction, output_transform, need_outputs=auto)
        use = mode
        if mode == "auto":
            use = "forward" if auto and action.dim < outputs else "reverse"
        directions = action.dim if use == "forward" else (outputs or 1)
        n = int(xd.shape[0])
        step = _memory.sub_batch(n, xd.device, directions, largest)
        parts = []
        for net, part, part_t in _sub_batches(model, xd, tangents, step):
            opts = (reduction, output_transform, mode, use, outputs, pair, seen)
            parts.append(_rows(net, part, action, *opts, part_t))
            if use == "forward" and _reverse_only(model) is not None:
                use = "reverse"  # the first sub-batch fell back: the others follow
        rows = parts[0][0] if len(parts) == 1 else torch.cat([r for r, _ in parts])
        if output_action is not None:  # J (A_j x) minus A_j F(x), in place
            out = parts[0][1] if len(parts) == 1 else torch.cat([o for _, o in parts])
            shape = (n, *seen["shape"][1:])
            rows = subtract_output_term(rows, out, shape, action, output_action)

    if reduction == "sum" and output_action is None:
        _warn_sum(seen.get("shape"))
    if _all_finite(rows):
        return rows
    bad = ~torch.isfinite(rows).all(dim=2)
    if bool(bad.any()):
        raise NonFiniteError(
            f"Expected finite input gradients, but {int(bad.sum())} of {bad.numel()} rows of the "
            f"polarization matrix are NaN or inf ({int(bad.any(dim=1).sum())} of {bad.shape[0]} "
            "samples)."
        )
    return rows


def polarization_matrix(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    ad_mode: str = "auto",
    output_action: Action | None = None,
    *,
    mode: str | None = None,
) -> Tensor:
    """The network polarization matrix of ``model`` on inputs ``x``.

    Row (b, k) holds the Lie derivatives of output k at sample b along each basis element of
    ``action``: E[(b, k), j] = dF_k/dx(x_b) . (A_j . x_b). Its (near) null space holds the
    generators of the network's symmetries.

    Args:
        model: an ``nn.Module`` or callable mapping ``x`` to outputs ``(N,)``, ``(N, K)`` or
            ``(N, ...)`` (flattened to K). Modules are analysed in eval mode; every
            submodule's mode is restored afterwards.
        x: inputs ``(N, ...)`` of a shape ``action`` accepts; floating point; not modified.
            Inference tensors (from ``torch.inference_mode``) are accepted.
        action: how generators act on ``x`` (``VectorAction``, ``ImageAction``, ...).
        reduction: ``"none"`` for one row per (sample, output); ``"sum"`` to sum the outputs
            first (the LieGG paper's behaviour).
        output_transform: applied to the model's output first, e.g. L2 normalisation of
            logits: ``lambda y: torch.nn.functional.normalize(y, dim=1)``.
        ad_mode: ``"forward"`` (one JVP per basis element), ``"reverse"`` (one VJP per
            output) or ``"auto"`` (fewer passes; reverse where an op has no forward-AD rule, see
            the module docstring). All give the same matrix. The same name as
            ``LieGGCallback(ad_mode=...)``.
        output_action: how the same generators act on the outputs, for equivariant models
            (``VectorAction``, ``ImageAction``, ``TensorAction``, ``DirectSum``, ...). Row
            (b, k) then holds dF_k/dx(x_b) . (A_j . x_b) - (A_j . F(x_b))_k, with A_j the
            input action's basis (used for both; the output action's own basis is ignored).
            It must take generators of ``action.generator_shape`` and accept the model's
            output shape (after ``output_transform``). ``output_transform`` runs before the
            output action, so it must itself be equivariant: ``l2_normalize`` of vectors is
            under rotations (not under scalings, which it removes), a softmax over vector
            components is not. Needs ``reduction="none"``. ``None`` (the default) is
            invariance.
        mode: deprecated name of ``ad_mode``.

    Returns:
        float64 ``(N*K, action.dim)`` for ``"none"`` (rows ordered sample-major), ``(N,
        action.dim)`` for ``"sum"``.

    On CPU a batch whose temporaries (the largest one per sample, from a one-sample probe
    remembered per model, times the tangents or outputs pushed at once, times the samples)
    pass 32 MB is differentiated in sub-batches of at most 16 MB (``functional/_memory.py``):
    larger tensors are page-faulted in afresh at every op. The rows are the same; models whose
    samples interact (batch statistics in the forward) see sub-batches, as with
    ``liegg(chunk_size=...)``.

    Raises:
        LieGGError: on an input, model output or option that does not fit (the message says
            what was expected and what came), an output action whose generator shape differs
            from ``action``'s or that rejects the output shape, or ``reduction="sum"`` with an
            output action, or for ``ad_mode="forward"`` when an op of the model has no
            forward-AD rule (the message names it).
        NonFiniteError: when outputs or gradients are NaN or inf (counts the bad rows).

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = lambda x: (x ** 2).sum(dim=1)          # invariant to so(3)
        >>> E = lg.polarization_matrix(model, torch.randn(8, 3, dtype=torch.float64),
        ...                            lg.VectorAction(dim=3))
        >>> E.shape
        torch.Size([8, 9])
    """
    ad_mode = renamed_argument("polarization_matrix", "mode", "ad_mode", mode, ad_mode, "auto")
    rows = polarization_rows(model, x, action, reduction, output_transform, ad_mode, output_action)
    return rows.reshape(-1, rows.shape[-1])
