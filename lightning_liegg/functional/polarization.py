"""The network polarization matrix E = J_F(x) T(x), without side effects: the one row engine.

Row (b, k), column j of E is the Lie derivative of output k at sample b along basis element j:
dF_k/dx(x_b) . (A_j . x_b). Two ways give the same numbers:

* reverse mode: one vector-Jacobian product per output (vmapped), then ``action.coordinates``;
* forward mode: one Jacobian-vector product per basis element (vmapped ``torch.func.jvp``).

``ad_mode="auto"`` picks the one with fewer passes (m JVPs against K VJPs; an output action adds
no pass), and falls back to reverse mode (once, with a ``LieGGWarning``, remembered per
model) when forward mode meets an op without a forward-AD rule. With an ``output_action``
the rows become the Lie derivatives of an equivariance,
dF_k/dx(x_b) . (A_j . x_b) - (A_j . F(x_b))_k, the second term computed from the outputs alone
(:meth:`~lightning_liegg.functional.actions.Action.subtract_output_term`).

Layers (``AnalysisOptions.layers``, see :mod:`.layers`) come from the same passes: the
differentiated function returns the stashed outputs of the requested submodules beside the
model's, ``f(x) = (F(x), z_1(x), ..., z_L(x))``, so one vmapped ``jvp`` gives every layer's
tangents; reverse mode runs one vector-Jacobian product per feature of each. Output-only rows
are the case without layers; two shortcuts are theirs alone: plain autograd for one output,
and regular autograd as the last resort for models ``torch.func`` cannot run.

An exception raised inside a user's ``forward_fn`` or ``output_transform`` reaches the caller
as a :class:`LieGGError` naming the callable's role and the signature it is called with, the
original exception chained (after the fall-backs above have seen it unchanged).

The caller's model, input, parameter gradients, train/eval modes and RNG state are left as
they were.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import LieGGError, LieGGWarning, NonFiniteError, describe, output_transform_hint
from ._autodiff import compiled as _compiled
from ._autodiff import constant_weights as _constant_weights
from ._autodiff import memory as _memory
from ._autodiff.fallback import _missing_forward_rule, _reverse_only, fall_back_to_reverse
from ._autodiff.isolation import isolated
from .actions import Action
from .layers import OUTPUT, capture, first_tensor, layer_features, resolve_layers
from .options import AnalysisOptions

__all__ = [
    "polarization_matrix",
    "polarization_rows",
    "isolated",
    "l2_normalize",
    "check_tangents",
    "check_finite_rows",
    "contract_tangents",
    "user_call",
    "user_errors",
    "model_outputs",
]

#: the attribute that marks an exception raised inside a user's callable (see :func:`user_call`)
_ROLE = "_liegg_user_callable"


def user_call(role: str, signature: str, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``; an exception raised inside is marked with ``role`` and passed on unchanged.

    The mark (role, signature, the arguments' types and shapes) stays on the exception object,
    so the engine's fall-backs (forward to reverse mode, ``torch.func`` to autograd) still see
    the error they know; :func:`polarization_rows` turns a marked error that escapes them into
    a :class:`LieGGError` (:func:`user_errors`). A :class:`LieGGError` is passed on unmarked.
    """
    try:
        return fn(*args)
    except LieGGError:
        raise
    except Exception as err:
        if getattr(err, _ROLE, None) is None:  # the innermost callable is the one to name
            given = ", ".join(describe(a) for a in args if not callable(a))
            with contextlib.suppress(AttributeError, TypeError):
                setattr(err, _ROLE, (role, signature, given))
        raise


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Raise a marked exception (:func:`user_call`) as a LieGGError that names the callable."""
    try:
        yield
    except LieGGError:
        raise
    except Exception as err:
        mark = getattr(err, _ROLE, None)
        if mark is None:
            raise
        role, signature, given = mark
        text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise LieGGError(
            f"Expected {role} to run as {signature} (called with {given}), but it raised "
            f"{type(err).__name__}{': ' + text if text else ''}."
        ) from err


def l2_normalize(outputs: Tensor) -> Tensor:
    """L2-normalise outputs ``(N, K)`` along K, as the LieGG paper does for classifier logits.

    Usable as ``output_transform``, also by import path from a LightningCLI YAML file
    (``output_transform: lightning_liegg.l2_normalize``).
    """
    return torch.nn.functional.normalize(outputs.reshape(outputs.shape[0], -1), dim=1)


def model_outputs(
    model: Callable[[Tensor], Any],
    x: Tensor,
    opts: AnalysisOptions,
    seen: dict[str, Any] | None = None,
) -> Tensor:
    """The model's outputs on ``x``, transformed, checked and flattened: ``(N, K)``.

    ``seen``: in the differentiated passes, where the outputs' shape is recorded and the output
    action (if any) checks it; ``None`` in a probe.
    """
    out = model(x)
    if opts.output_transform is not None:
        out = user_call(
            "output_transform", "output_transform(outputs) -> Tensor", opts.output_transform, out
        )
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
    if seen is not None and opts.output_action is not None:
        try:
            opts.output_action.check_input(out, "model outputs")
        except LieGGError as err:
            raise LieGGError(
                f"Expected model outputs (after output_transform) of a shape that the output "
                f"action {opts.output_action!r} accepts, for inputs of shape {tuple(x.shape)} "
                f"under the input action {opts.action!r}, but got outputs of shape "
                f"{tuple(out.shape)}. ({err})"
            ) from err
    if seen is not None:
        seen["shape"] = tuple(out.shape)
    out = out.reshape(n, -1)
    if opts.reduction == "sum":
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
    of the weight, an extra matmul per layer; :mod:`._autodiff.constant_weights` skips it (same
    values). Returns None where that does not apply or anything goes wrong; the caller then runs the
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


def _contract(grads: Tensor, xd: Tensor, action: Action, tangents: Tensor | None) -> Tensor:
    """Rows ``(N, K, m)`` in float64 from input gradients ``(N, K, ...)``."""
    work = torch.promote_types(xd.dtype, torch.float32)
    if tangents is None:
        return action.coordinates(grads.to(work), xd.to(work)).to(torch.float64)
    return contract_tangents(grads.to(work), tangents.to(work)).to(torch.float64)


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
    """``(model, inputs, tangents)`` for each sub-batch of ``step`` samples (see ``memory``).

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
    model: Any, xd: Tensor, opts: AnalysisOptions, need_outputs: bool
) -> tuple[int | None, int | None]:
    """``(K, largest)``: outputs per sample and the largest temporary of one sample (bytes).

    Output-only rows. K is None when not needed and not learnt; ``largest`` is None off CPU
    or when unknown (0 once a probe failed: no sub-batches, no second probe).
    One forward on one sample (a copy: the model may write into its input) answers both; the
    largest temporary is remembered per model and input shape (:mod:`._autodiff.memory`). When
    ``need_outputs``, errors are the caller's (a one-sample failure is retried on the whole
    batch, so messages report its shapes); otherwise a failed probe only means no sub-batches.
    """
    k = 1 if opts.reduction == "sum" else None
    cpu = xd.device.type == "cpu"
    largest = _memory.remembered(model, xd) if cpu else None
    if (k is not None or not need_outputs) and (largest is not None or not cpu):
        return k, largest  # nothing to learn

    def run(inp: Tensor) -> Tensor:
        return model_outputs(model, inp, opts)

    try:
        out, largest = _memory.run_one(model, xd, run)
        return (k if k is not None else int(out.shape[1])), largest
    except Exception as err:
        if not need_outputs:  # a failed probe only means no sub-batches
            return k, None
        if not isinstance(err, LieGGError):
            try:  # what the dispatch mode could not run may still run plainly
                return int(run(xd[:1].clone()).shape[1]), None
            except Exception:  # noqa: BLE001 - the whole batch below says what is wrong
                pass
        # report shapes of the caller's whole batch, not of the probe (a model may also
        # reject a batch of one)
        return int(run(xd.clone()).shape[1]), None


def _probe_layers(
    model: Any, xd: Tensor, opts: AnalysisOptions, spec: dict[Any, Any], root: nn.Module
) -> tuple[list[str], int, dict[str, int], int | None]:
    """Run one sample through the model: the layers' forward order, K, each K_l, and more.

    The fourth value is the largest temporary of one sample in bytes (CPU; None elsewhere; see
    :mod:`._autodiff.memory`).
    """
    auto = bool(spec.get(..., False))
    names = [k for k in spec if k is not ...]

    def run(inp: Tensor) -> tuple[list[str], int, dict[str, int]]:
        with capture(root, names) as stash:
            stash.active = True
            out = model_outputs(model, inp, opts)
            order = list(stash.values)
            sizes: dict[str, int] = {}
            for name in order:
                raw = stash.values[name]
                value = first_tensor(raw)
                try:
                    feats = layer_features(
                        name, raw if value is None else value, len(inp), opts.reduction, {}
                    )
                except LieGGError:
                    if auto:  # "auto" keeps the layers that give batch-first tensors
                        continue
                    raise
                sizes[name] = int(feats.shape[1])
            return [n for n in order if n in sizes], int(out.shape[1]), sizes

    try:
        (order, k, sizes), largest = _memory.run_one(model, xd, run)
    except Exception:  # report the caller's batch shapes, not the probe's
        largest = _memory.remembered(model, xd) if xd.device.type == "cpu" else None
        order, k, sizes = run(xd.clone())
    missing = [n for n in names if n not in order]
    if missing and not auto:
        raise LieGGError(
            f"Expected every layer in layers= to run in the model's forward pass, but "
            f"{missing} never ran on inputs of shape {tuple(xd.shape)}."
        )
    if not order and auto:
        raise LieGGError(
            f'Expected layers="auto" to find submodules that run in the forward pass of '
            f"{type(model).__name__}, but none of {names} did."
        )
    return order, k, sizes, largest


class _Passes:
    """The differentiated passes of one call: the function ``f(x) = (F(x), z_1(x), ...)``.

    ``f`` returns the model's flattened outputs and, with layers, each layer's features in
    forward order (read from the hooks' stash). ``seen`` and ``shapes`` collect the outputs'
    and the layers' shapes for the output terms.
    """

    def __init__(self, opts: AnalysisOptions, order: list[str], stash: Any, model: Any) -> None:
        self.opts = opts
        self.order = order
        self.stash = stash
        self.model = model
        self.seen: dict[str, Any] = {}
        self.shapes: dict[str, Any] = {}

    def function(self, net: Any) -> Callable[[Tensor], tuple[Tensor, ...]]:
        """``f`` for the (sub-batch) model ``net``."""
        opts, stash = self.opts, self.stash
        if stash is None:
            return lambda inp: (model_outputs(net, inp, opts, self.seen),)

        def f(inp: Tensor) -> tuple[Tensor, ...]:
            stash.clear()
            stash.active = True
            try:
                out = model_outputs(net, inp, opts, self.seen)
            finally:
                stash.active = False
            feats = []
            for name in self.order:
                if name not in stash.values:
                    raise LieGGError(
                        f"Expected layer {name!r} to run in every forward pass, but it "
                        f"did not run on inputs of shape {tuple(inp.shape)}."
                    )
                value = stash.get(name)
                feats.append(layer_features(name, value, len(inp), opts.reduction, self.shapes))
            stash.clear()
            return (out, *feats)

        return f

    def run(
        self, net: Any, xd: Tensor, tangents: Tensor | None, use: str, one_output: bool
    ) -> tuple[str, list[Tensor], list[Tensor]]:
        """``(mode used, values, rows)`` of one (sub-)batch, the model's output first.

        Values are ``(N, K_l)``, rows ``(N, K_l, m)`` in float64.
        """
        f = self.function(net)
        action, mode = self.opts.action, self.opts.ad_mode
        if use == "forward":
            try:
                values, rows = _forward(f, net, xd.clone(), action, tangents)
            except RuntimeError as err:  # NotImplementedError is a RuntimeError
                fall_back_to_reverse(err, net, mode)  # warns once, or raises
                use = "reverse"
                if self.stash is not None:
                    self.stash.modified = False
        if use == "reverse":
            values, rows = _reverse(f, xd, action, tangents, one_output, self.stash is not None)
        if self.stash is not None and self.stash.modified:
            # an in-place op changed a kept output: again, with copies
            self.stash.copy, self.stash.modified = True, False
            if use == "forward":
                values, rows = _forward(f, net, xd.clone(), action, tangents)
            else:
                values, rows = _reverse_passes(f, xd, action, tangents)
        return use, list(values), list(rows)


def _forward(
    f: Callable[[Tensor], tuple[Tensor, ...]],
    model: Any,
    xd: Tensor,
    action: Action,
    tangents: Tensor | None = None,
) -> tuple[tuple[Tensor, ...], list[Tensor]]:
    """Values of ``f`` and each one's rows ``(N, K_l, m)`` by one vmapped JVP per basis element.

    ``tangents``: the basis tangents of ``xd`` if the caller keeps them. ``xd`` is a copy (the
    model may write into its input).
    """
    if tangents is None:
        tangents = action.basis_tangents(xd)  # (m, N, ...)

    def push(t: Tensor) -> tuple[Any, Any]:
        return torch.func.jvp(f, (xd,), (t,))

    pushed = _push_constant_weights(model, push, tangents, xd)
    if pushed is None:
        try:
            pushed = torch.func.vmap(push, out_dims=(None, 0))(tangents)
        except RuntimeError as err:  # an op without a batching rule (or under autocast): loop
            if _missing_forward_rule(err) is not None:
                raise
            each = [push(t) for t in tangents]
            stacked = (torch.stack([p[1][i] for p in each]) for i in range(len(each[0][1])))
            pushed = (each[0][0], tuple(stacked))
    values, jts = pushed
    _check_finite_outputs(values[0])
    # (N, K_l, m) views of contiguous (m, N, K_l): the Gram matrix needs no other copy
    return values, [jt.to(torch.float64).permute(1, 2, 0) for jt in jts]


def _reverse(
    f: Callable[[Tensor], tuple[Tensor, ...]],
    xd: Tensor,
    action: Action,
    tangents: Tensor | None,
    one_output: bool,
    layered: bool,
) -> tuple[tuple[Tensor, ...], list[Tensor]]:
    """Values and rows by reverse mode, with the output-only shortcuts.

    Without layers: plain autograd first when the outputs are known to be ``(N, 1)``
    (``one_output``), and regular autograd where ``torch.func`` cannot run the model.
    """
    single = lambda inp: f(inp)[0]  # noqa: E731 - the model's output alone
    if one_output and not layered:
        one = _reverse_one_output(single, xd)
        if one is not None:
            out, grads = one
            return (out,), [_contract(grads, xd, action, tangents)]
    try:
        return _reverse_passes(f, xd, action, tangents)
    except RuntimeError as err:  # torch.func cannot run it: try regular autograd
        if layered:
            raise
        try:
            rows, out = _autograd_rows(single, xd, action, tangents)
        except Exception:
            raise err from None
        return (out,), [rows]


def _reverse_passes(
    f: Callable[[Tensor], tuple[Tensor, ...]], xd: Tensor, action: Action, tangents: Tensor | None
) -> tuple[tuple[Tensor, ...], list[Tensor]]:
    """Values of ``f`` and each one's rows by vmapped VJPs, one per feature.

    The pass runs on a copy of ``xd`` (the model may write into its input); the rows contract
    the input gradients with the tangents of ``xd``.
    """
    values, vjp_fn = torch.func.vjp(f, xd.clone())
    _check_finite_outputs(values[0])
    n = xd.shape[0]
    if len(values) == 1 and values[0].shape[1] == 1:  # one output: one pass
        grads = vjp_fn((torch.ones_like(values[0]),))[0].unsqueeze(1)
        return values, [_contract(grads, xd, action, tangents)]
    zeros = [torch.zeros_like(v) for v in values]
    rows = []
    for i, v in enumerate(values):
        kl = v.shape[1]
        eye = torch.eye(kl, dtype=v.dtype, device=v.device)
        cot = eye[:, None, :].expand(kl, n, kl)

        def pull(c: Tensor, i: int = i) -> Tensor:
            return vjp_fn(tuple(c if j == i else z for j, z in enumerate(zeros)))[0]

        try:
            grads = torch.func.vmap(pull)(cot)  # (K_l, N, ...)
        except RuntimeError:  # an op without a batching rule (or under autocast): loop
            grads = torch.stack([pull(c) for c in cot])
        rows.append(_contract(grads.transpose(0, 1), xd, action, tangents))
    return values, rows


def polarization_rows(
    model: Callable[[Tensor], Any],
    x: Tensor,
    opts: AnalysisOptions,
    tangents: Tensor | None = None,
    *,
    root: nn.Module | None = None,
    check_finite: bool = True,
) -> dict[str, Tensor]:
    """The polarization matrix of the output, and of every layer of ``opts.layers``: the engine.

    Args:
        model: ``nn.Module`` or callable, as in :func:`polarization_matrix`.
        x: inputs ``(N, ...)`` for ``opts.action``; not modified.
        opts: the options (:class:`~lightning_liegg.functional.options.AnalysisOptions`);
            ``chunk_size``, ``prepare``, ``device``, ``extra`` and ``tangents`` are the
            accumulator's (:func:`~lightning_liegg.functional.analysis._update`), not read here.
        tangents: optional precomputed input tangents ``opts.action.basis_tangents(x)``, shape
            ``(action.dim, *x.shape)``, same dtype and device as ``x``. They do not depend on
            the model, so a caller that analyses the same inputs again (the callback) computes
            them once: forward mode pushes them as they are, reverse mode contracts the input
            gradients with them (instead of ``action.coordinates``). Same numbers up to rounding.
        root: the module whose ``named_modules()`` the layer names refer to (default ``model``;
            the user's model when ``model`` wraps it, as ``BoundForward`` does).
        check_finite: raise :class:`NonFiniteError` on NaN or inf rows (a caller that checks
            the Gram matrices instead, a cheaper test, passes False and calls
            :func:`check_finite_rows` when a Gram matrix is not finite).

    Returns:
        ``{name: float64 (N, K_l, action.dim)}``: the layers in forward order, then
        ``"output"`` (K is 1 for ``reduction="sum"``); only ``"output"`` without layers.
    """
    action = opts.action
    action.check_input(x)
    if tangents is not None:
        check_tangents(tangents, x, action)
    if not callable(model):
        raise LieGGError(
            f"Expected model to be callable (an nn.Module), but got {describe(model)}."
        )
    hooked = model if root is None else root
    spec = None
    if opts.layers is not None:
        spec = resolve_layers(hooked, opts.layers, action, opts.reduction)

    with user_errors(), isolated(model, x.device):
        xd = x.detach()  # not modified: every pass that could write into it gets a copy
        if xd.is_inference():  # autograd cannot track an inference tensor
            xd = xd.clone()
        forward_ok = _reverse_only(model) is None
        if spec is None:
            # compile: the probe checks the outputs first, so a failed graph is no user error
            need = (opts.ad_mode == "auto" and forward_ok) or opts.compile
            order, sizes = [], {}
            k, largest = _probe(model, xd, opts, need_outputs=need)
        else:
            order, k, sizes, largest = _probe_layers(model, xd, opts, spec, hooked)
        backward = None if k is None else k + sum(sizes.values())  # VJPs in reverse mode
        use = opts.ad_mode
        if use == "auto":
            fewer = backward is not None and action.dim < backward
            use = "forward" if forward_ok and fewer else "reverse"
        done = None
        directions = action.dim if use == "forward" else (backward or 1)
        n = int(xd.shape[0])
        step = _memory.sub_batch(n, xd.device, directions, largest)
        if opts.compile and spec is None:  # one compiled graph for all sub-batches
            step_c = _memory.sub_batch(n, xd.device, directions, largest, compiled=True)
            done = _compiled_sub_batches(model, xd, opts, use, tangents, step_c)
        if done is not None:
            return _compiled_result(done, opts, check_finite)
        one_output = opts.reduction == "sum" or k == 1
        with capture(hooked, order) if spec is not None else contextlib.nullcontext() as stash:
            passes = _Passes(opts, order, stash, model)
            parts = []
            for net, part, part_t in _sub_batches(model, xd, tangents, step):
                use, values, rows = passes.run(net, part, part_t, use, one_output)
                parts.append((values, rows))
        if len(parts) == 1:
            values, rows = parts[0]
        else:
            values = [torch.cat(v) for v in zip(*(p[0] for p in parts), strict=True)]
            rows = [torch.cat(r) for r in zip(*(p[1] for p in parts), strict=True)]
        shapes = {name: (n, *shape[1:]) for name, shape in passes.shapes.items()}
        if "shape" in passes.seen:
            shapes[OUTPUT] = (n, *passes.seen["shape"][1:])
        result: dict[str, Tensor] = {}
        for name, r, value in zip([OUTPUT, *order], rows, values, strict=True):
            out_action = opts.output_action if name == OUTPUT else spec[name]  # type: ignore[index]
            if out_action is not None:  # J (A_j x) minus A_j F(x), in place
                out_action.subtract_output_term(r, value.detach().reshape(shapes[name]), action)
            result[name] = r

    if spec is None and opts.reduction == "sum" and opts.output_action is None:
        _warn_sum(passes.seen.get("shape"))
    if check_finite:
        for name, r in result.items():
            check_finite_rows(name, r, layered=spec is not None)
    return {**{name: result[name] for name in order}, OUTPUT: result[OUTPUT]}


def _compiled_sub_batches(
    model: Any, xd: Tensor, opts: AnalysisOptions, use: str, tangents: Tensor | None, step: int
) -> tuple[Tensor, ...] | None:
    """:func:`._autodiff.compiled.compiled_rows` on sub-batches of ``step`` samples.

    Every sub-batch has the same shape (the last one is padded with copies of its last sample,
    whose rows are dropped), so one graph serves them all. ``None`` where the graph does not
    compile (the eager path answers).
    """
    n = int(xd.shape[0])
    step = min(step, n)
    parts = []
    for start in range(0, n, step):
        part = xd[start : start + step]
        part_t = None if tangents is None else tangents[:, start : start + step]
        size = int(part.shape[0])
        if size < step:  # pad: the same shape, the same graph
            part = torch.cat([part, part[-1:].expand(step - size, *part.shape[1:])])
            if part_t is not None:
                fill = part_t[:, -1:].expand(-1, step - size, *part_t.shape[2:])
                part_t = torch.cat([part_t, fill], dim=1)
        done = _compiled.compiled_rows(
            model, part.contiguous(), opts.action, opts.reduction, opts.output_transform, use,
            opts.output_action, None if part_t is None else part_t.contiguous(),
        )  # fmt: skip
        if done is None:
            return None
        if size == n:  # one batch: the graph's own tensors
            return done
        parts.append((done[0][:size], done[1][:size], done[2]))
    shape = (n, *parts[0][2][1:])
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), shape


def _compiled_result(
    done: tuple[Tensor, ...], opts: AnalysisOptions, check_finite: bool
) -> dict[str, Tensor]:
    """``{"output": rows}`` from :func:`._autodiff.compiled.compiled_rows`, checked as eager."""
    rows, out, shape = done[:3]
    _check_finite_outputs(out)
    if opts.output_action is not None:  # J (A_j x) minus A_j F(x), in place
        opts.output_action.subtract_output_term(rows, out.detach().reshape(shape), opts.action)
    if opts.reduction == "sum" and opts.output_action is None:
        _warn_sum(shape)
    if check_finite:
        check_finite_rows(OUTPUT, rows, layered=False)
    return {OUTPUT: rows}


def check_finite_rows(name: str, rows: Tensor, layered: bool = True) -> None:
    """Raise :class:`NonFiniteError` if ``rows`` ``(N, K, m)`` of ``name`` hold NaN or inf.

    ``layered``: the message names the layer (else it speaks of the model's input gradients).
    """
    if _all_finite(rows):  # one reduction; the exact count only on failure
        return
    bad = ~torch.isfinite(rows).all(dim=2)
    if not bool(bad.any()):
        return
    if layered:
        raise NonFiniteError(
            f"Expected finite Lie derivatives, but {int(bad.sum())} of {bad.numel()} rows of "
            f"the polarization matrix of {name!r} are NaN or inf."
        )
    raise NonFiniteError(
        f"Expected finite input gradients, but {int(bad.sum())} of {bad.numel()} rows of the "
        f"polarization matrix are NaN or inf ({int(bad.any(dim=1).sum())} of {bad.shape[0]} "
        "samples)."
    )


def polarization_matrix(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    ad_mode: str = "auto",
    output_action: Action | None = None,
    *,
    compile: bool = False,
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
        compile: run the row computation under ``torch.compile`` (tangents, passes, output
            term; the weights are inputs of the compiled graph, so new weights do not
            recompile). The first call per model, shape, dtype and setting compiles (seconds
            to minutes on a CPU); later calls are faster on models where memory traffic
            between small kernels dominates. Where the model does not compile as one graph,
            the eager path answers with one ``LieGGWarning`` naming the cause. Same matrix up
            to rounding. See ``docs/compiled.md``.

    Returns:
        float64 ``(N*K, action.dim)`` for ``"none"`` (rows ordered sample-major), ``(N,
        action.dim)`` for ``"sum"``.

    On CPU a batch whose temporaries (the largest one per sample, from a one-sample probe
    remembered per model, times the tangents or outputs pushed at once, times the samples)
    pass 32 MB is differentiated in sub-batches of at most 16 MB
    (``functional/_autodiff/memory.py``): larger tensors are page-faulted in afresh at every op.
    The rows are the same; models whose samples interact (batch statistics in the forward) see
    sub-batches, as with ``liegg(chunk_size=...)``.

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
    opts = AnalysisOptions(
        action, reduction, output_transform, ad_mode, output_action, compile=compile
    )
    rows = polarization_rows(model, x, opts)[OUTPUT]
    return rows.reshape(-1, rows.shape[-1])
