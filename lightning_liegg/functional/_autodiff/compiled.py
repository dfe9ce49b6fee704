"""The row computation under ``torch.compile``: opt-in, cached, never costing an answer.

With ``compile=True`` the analysis runs the rows of one batch, tangent construction,
forward-mode or reverse passes, the contraction and the cast to float64, as one compiled
graph (:func:`compiled_rows`). The model is called through
``torch.func.functional_call`` with its parameters and buffers passed as *inputs*, so new
weights (every evaluation of the callback) run the same compiled code without recompiling.
Compiled graphs are cached per model (weakly), input shape, dtype, device and options.

The graph is compiled with ``fullgraph=True``: a graph break (an op dynamo cannot trace, a
custom ``autograd.Function`` it does not support, data-dependent Python control flow) or a
failed compilation means the analysis runs eagerly instead, with one :class:`LieGGWarning`
per model and setting naming the cause, and the failure is remembered (no second attempt).

One graph pass (:class:`_DropZeroProducts`) removes what forward-mode AD adds for constant
weights: the JVP of ``addmm`` and ``convolution`` also multiplies the primal input by the
weight's tangent, a zero tensor that inductor materialises and multiplies (on the benchmark
MLP, a matrix product as large as the first layer's forward). The eager path skips the same
products with its own rules (:mod:`.constant_weights`); under the compiler the rules are not
used (dynamo cannot trace their ``TorchFunctionMode`` and ``jvp`` staticmethods in one graph),
and inductor fuses the elementwise derivatives (LayerNorm, GELU, softmax) itself.
"""

from __future__ import annotations

import contextlib
import types
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

from ..._checks import LieGGWarning
from ..actions import Action

__all__ = ["compiled_rows", "compiled_lie", "clear_cache"]

#: compiled graphs kept per model (the oldest is dropped first)
MAX_ENTRIES = 8

_FAILED = object()
_CACHE: weakref.WeakKeyDictionary[Any, OrderedDict] = weakref.WeakKeyDictionary()
_UNKEYED: dict[int, OrderedDict] = {}  # models that are not weak-referenceable (rare)

aten = torch.ops.aten
_ZERO_FACTORIES = {
    aten.zeros.default,
    aten.zeros_like.default,
    aten.new_zeros.default,
    aten._efficientzerotensor.default,
}
_SAME_ZERO = {  # ops whose output is zero when their first argument is
    aten.expand.default,
    aten.view.default,
    aten.reshape.default,
    aten._unsafe_view.default,
    aten.permute.default,
    aten.t.default,
    aten.transpose.int,
    aten.unsqueeze.default,
    aten.squeeze.dim,
    aten.squeeze.dims,
    aten.squeeze.default,
    aten.clone.default,
    aten.alias.default,
    aten.slice.Tensor,
    aten.select.int,
    aten._to_copy.default,
    aten.contiguous.default,
    aten.neg.default,
    torch.ops.prims.convert_element_type.default,
}


def _is_zero(node: Any, seen: dict) -> bool:
    """Whether an FX node is a tensor of zeros by construction (not by value)."""
    if not isinstance(node, torch.fx.Node) or node.op != "call_function":
        return False
    if node in seen:
        return seen[node]
    target = node.target
    zero = False
    if target in _ZERO_FACTORIES:
        zero = True
    elif target is aten.full.default:
        zero = len(node.args) > 1 and node.args[1] == 0
    elif target in _SAME_ZERO:
        zero = _is_zero(node.args[0], seen)
    elif target is aten.mul.Tensor:
        zero = any(_is_zero(a, seen) for a in node.args[:2])
    seen[node] = zero
    return zero


def _zeros_like_node(graph: Any, node: Any) -> Any:
    """A new node ``full(shape, 0)`` with ``node``'s output shape, dtype and device."""
    val = node.meta["val"]
    with graph.inserting_before(node):
        new = graph.call_function(
            aten.full.default,
            (list(val.shape), 0),
            {"dtype": val.dtype, "device": val.device, "pin_memory": False},
        )
    new.meta.update(node.meta)
    return new


class _DropZeroProducts(torch._inductor.custom_graph_pass.CustomGraphPass):
    """Replace products with a zero factor (``mm``, ``bmm``, ``convolution``) by zeros.

    The zero factors are tensors built as zeros in the graph (the tangent forward-mode AD gives
    a weight that has none); a sum with such a product then drops it (``add(a, 0)`` is ``a``
    when the shapes agree). Values are unchanged except where the other factor held inf or NaN
    (0 * inf), which the analysis reports as an error on the eager path anyway.
    """

    def __call__(self, graph: torch.fx.Graph) -> None:
        seen: dict = {}
        for node in list(graph.nodes):
            if node.op != "call_function" or "val" not in node.meta:
                continue
            if node.target in (aten.mm.default, aten.bmm.default):
                factors = node.args[:2]
            elif node.target is aten.convolution.default:
                if node.args[2] is not None and not _is_zero(node.args[2], seen):
                    continue  # zero weight but a bias: not zero
                factors = node.args[:2]
            else:
                continue
            if any(_is_zero(f, seen) for f in factors):
                new = _zeros_like_node(graph, node)
                node.replace_all_uses_with(new)
                graph.erase_node(node)
                seen[new] = True
        for node in list(graph.nodes):
            if node.op != "call_function" or node.target is not aten.add.Tensor:
                continue
            if len(node.args) != 2 or node.kwargs.get("alpha", 1) != 1:
                continue
            a, b = node.args
            if _is_zero(a, seen):
                a, b = b, a
            if not (_is_zero(b, seen) and isinstance(a, torch.fx.Node) and "val" in a.meta):
                continue
            va, vo = a.meta["val"], node.meta.get("val")
            if vo is None or va.shape != vo.shape or va.dtype != vo.dtype:
                continue
            if va.stride() != vo.stride():
                continue
            node.replace_all_uses_with(a)
            graph.erase_node(node)
        graph.eliminate_dead_code()

    def uuid(self) -> Any:
        """Identify the pass for inductor's cache (changes with this module's source)."""
        return torch._inductor.custom_graph_pass.get_hash_for_files((__file__,))


class _PlainNorms(TorchFunctionMode):
    """Eval-mode ``F.batch_norm`` and ``F.layer_norm`` as their elementwise formulas.

    PyTorch's forward-AD rules of ``batch_norm`` and ``layer_norm`` fail under dynamo's fake
    tensors (an internal assert about inference tensors in ``_fw_primal``, torch 2.13); the
    formulas (x - mean) / sqrt(var + eps) * weight + bias have plain rules, and inductor fuses
    them.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func is F.batch_norm:
            bound = dict(zip(_BN_ARGS, args, strict=False), **kwargs)
            mean, var = bound.get("running_mean"), bound.get("running_var")
            if not bound.get("training", False) and mean is not None and var is not None:
                x = bound["input"]
                shape = (1, -1) + (1,) * (x.ndim - 2)
                scale = torch.rsqrt(var + bound.get("eps", 1e-5))
                weight, bias = bound.get("weight"), bound.get("bias")
                if weight is not None:
                    scale = scale * weight
                shift = -mean * scale
                if bias is not None:
                    shift = shift + bias
                return x * scale.reshape(shape) + shift.reshape(shape)
        elif func is F.layer_norm:
            bound = dict(zip(_LN_ARGS, args, strict=False), **kwargs)
            x = bound["input"]
            dims = tuple(range(-len(tuple(bound["normalized_shape"])), 0))
            mean = x.mean(dim=dims, keepdim=True)
            centred = x - mean
            var = centred.square().mean(dim=dims, keepdim=True)
            out = centred * torch.rsqrt(var + bound.get("eps", 1e-5))
            weight, bias = bound.get("weight"), bound.get("bias")
            if weight is not None:
                out = out * weight
            if bias is not None:
                out = out + bias
            return out
        return func(*args, **kwargs)


_LN_ARGS = ("input", "normalized_shape", "weight", "bias", "eps")
_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")


def _fresh(fn: Callable) -> Callable:
    """``fn`` with its own code object: dynamo caches (and counts recompilations) per code."""
    return types.FunctionType(
        fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__
    )


def _row_function(
    action: Action,
    reduction: str,
    transform: Callable[[Any], Tensor] | None,
    use: str,
    gram: bool,
) -> Callable:
    """The function compiled for one setting.

    It maps ``(model, params, buffers, x, tangents)`` to ``(rows (N, K, m) float64, outputs
    (N, K), the outputs' shape before flattening)``, with the Gram matrix ``(m, m)`` float64
    last when ``gram``.
    """

    def run(
        model: Any, params: dict | None, buffers: dict | None, x: Tensor, tangents: Tensor | None
    ) -> tuple[Tensor, ...]:
        x = x.clone()  # the model may write into its input: never into the caller's
        n = x.shape[0]
        if tangents is None:
            tangents = action.basis_tangents(x)
        shapes: list[torch.Size] = []

        def f(inp: Tensor) -> Tensor:
            if params is None:
                out = model(inp)
            else:
                out = torch.func.functional_call(model, (params, buffers), (inp,))
            if transform is not None:
                out = transform(out)
            shapes.append(out.shape)
            out = out.reshape(n, -1)
            if reduction == "sum":
                out = out.sum(dim=1, keepdim=True)
            return out

        if use == "forward":

            def push(t: Tensor) -> tuple[Tensor, Tensor]:
                return torch.func.jvp(f, (x,), (t,))

            out, jt = torch.func.vmap(push, out_dims=(None, 0))(tangents)
            rows = jt.permute(1, 2, 0).to(torch.float64)
        else:
            out, vjp_fn = torch.func.vjp(f, x)
            k = out.shape[1]
            work = torch.promote_types(x.dtype, torch.float32)
            m = tangents.shape[0]
            t = tangents.reshape(m, n, -1).to(work)
            if k == 1:
                g = vjp_fn(torch.ones_like(out))[0].reshape(n, 1, -1).to(work)
                # a fused product and sum: the tangents need not be written out
                rows = (g * t.transpose(0, 1)).sum(dim=2).unsqueeze(1)
            else:
                eye = torch.eye(k, dtype=out.dtype, device=out.device)
                cot = eye[:, None, :].expand(k, n, k)
                g = torch.func.vmap(vjp_fn)(cot)[0].reshape(k, n, -1).transpose(0, 1)
                rows = torch.bmm(g.to(work), t.permute(1, 2, 0))
            rows = rows.to(torch.float64)
        shape = tuple(shapes[0])
        if not gram:
            return rows, out, shape
        flat = rows.reshape(-1, rows.shape[-1])
        return rows, out, shape, flat.T @ flat

    return _fresh(run)


def _lie_function(transform: Callable[[Any], Tensor] | None, use: str) -> Callable:
    """The function :func:`compiled_lie` compiles: ``(model, x, tangents) -> (out, lie, shape)``.

    ``out`` ``(N, K)``, ``lie`` ``(r, N, K)`` (J_F(x) t for every tangent), both differentiable
    in the model's parameters: the model is called as it is, so dynamo lifts its parameters to
    graph inputs and the compiled backward reaches their ``.grad``.
    """

    def run(model: Any, x: Tensor, tangents: Tensor) -> tuple[Any, ...]:
        x = x.clone()
        n = x.shape[0]
        shapes: list[torch.Size] = []

        def f(inp: Tensor) -> Tensor:
            out = model(inp)
            if transform is not None:
                out = transform(out)
            shapes.append(out.shape)
            return out.reshape(n, -1)

        if use == "forward":

            def push(t: Tensor) -> tuple[Tensor, Tensor]:
                return torch.func.jvp(f, (x,), (t,))

            out, lie = torch.func.vmap(push, out_dims=(None, 0))(tangents)
            return out, lie, tuple(shapes[0])
        out, vjp_fn = torch.func.vjp(f, x)
        k = out.shape[1]
        r = tangents.shape[0]
        eye = torch.eye(k, dtype=out.dtype, device=out.device)
        grads = torch.func.vmap(vjp_fn)(eye[:, None, :].expand(k, n, k))[0]
        lie = torch.bmm(
            grads.reshape(k, n, -1).transpose(0, 1), tangents.reshape(r, n, -1).permute(1, 2, 0)
        )
        return out, lie.permute(2, 0, 1), tuple(shapes[0])

    return _fresh(run)


def compiled_lie(
    model: Any,
    x: Tensor,
    tangents: Tensor,
    ad_mode: str,
    output_transform: Callable[[Any], Tensor] | None,
    outputs: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor, tuple[int, ...]] | None:
    """Outputs ``(N, K)``, Lie derivatives ``(r, N, K)`` and the outputs' shape, compiled.

    The products of :func:`~lightning_liegg.functional.steer.symmetry_rows`
    (:func:`~lightning_liegg.symmetry_loss`); the shape is that of the outputs before they
    were flattened to ``(N, K)`` (for an output action).

    Unlike :func:`compiled_rows` the result is differentiable in the model's parameters (a
    training graph: the compiled backward runs at ``loss.backward()``).

    Args:
        model: the module (or callable); called as it is.
        x: inputs ``(N, ...)`` (detached; not modified).
        tangents: ``(r, *x.shape)`` in ``x``'s dtype and device.
        ad_mode: ``"forward"``, ``"reverse"`` or ``"auto"`` (fewer passes; resolved once per
            setting from the number of outputs).
        output_transform: applied to the outputs first (inside the graph).
        outputs: the eager, checked ``x -> (N, K)`` of the caller, run once per setting on one
            sample without a graph: a model whose outputs do not fit raises its usual error
            there (not a compilation failure), and it gives K for ``"auto"``.

    Returns:
        ``(out, lie, shape)``, or ``None`` when this setting does not compile (one
        :class:`LieGGWarning` per model and setting; the caller then runs eagerly).
    """
    key = (
        "lie",
        tuple(x.shape),
        x.dtype,
        x.device,
        tuple(x.stride()),
        tuple(tangents.shape),
        output_transform,
        ad_mode,
        torch.is_grad_enabled(),
    )

    def build() -> Callable:
        with torch.no_grad():
            k = int(outputs(x[:1].clone()).shape[1])  # user errors raise here, as eagerly
        use = ad_mode if ad_mode != "auto" else ("forward" if tangents.shape[0] <= k else "reverse")
        return _lie_function(output_transform, use)

    entries = _entries(model)
    fn = _lookup(entries, key, build)
    if fn is None:
        return None
    what = "the symmetry penalty's Lie derivatives"
    return _run(entries, key, model, what, fn, model, x, tangents)


def _lookup(entries: OrderedDict, key: Any, build: Callable[[], Callable]) -> Callable | None:
    """The compiled function of ``key``: cached, or ``build()`` compiled (``fullgraph``).

    ``None`` when this key failed before. At most :data:`MAX_ENTRIES` per model, the least
    recently used dropped first.
    """
    fn = entries.get(key)
    if fn is _FAILED:
        return None
    if fn is None:
        fn = torch.compile(
            build(),
            fullgraph=True,
            dynamic=False,
            options={"post_grad_custom_pre_pass": _DropZeroProducts()},
        )
        entries[key] = fn
        while len(entries) > MAX_ENTRIES:
            entries.popitem(last=False)
    else:
        entries.move_to_end(key)
    return fn


def _run(entries: OrderedDict, key: Any, model: Any, what: str, fn: Callable, *args: Any) -> Any:
    """``fn(*args)``, or ``None`` after a failure to trace or compile.

    The failure is remembered for ``key`` and warned once (a :class:`LieGGWarning` naming
    ``what`` and the cause); the eager path then answers.
    """
    try:
        with _quiet_dynamo(), _PlainNorms():
            return fn(*args)
    except Exception as err:  # any failure to trace or compile: the eager path answers
        entries[key] = _FAILED
        _warn_fallback(model, err, what)
        return None


def _entries(model: Any) -> OrderedDict:
    key = getattr(model, "_liegg_key", model)  # a wrapper (BoundForward): its model
    try:
        found = _CACHE.get(key)
        if found is None:
            found = _CACHE[key] = OrderedDict()
    except TypeError:  # not weak-referenceable: keyed by id, kept for the session
        found = _UNKEYED.setdefault(id(key), OrderedDict())
    return found


def _action_key(action: Action | None) -> Any:
    if action is None:
        return None
    basis = getattr(action, "basis", None)
    values = tuple(basis.flatten().tolist()) if isinstance(basis, Tensor) else None
    return type(action), repr(action), values


def clear_cache() -> None:
    """Forget every compiled graph and remembered failure (tests; a changed model class)."""
    _CACHE.clear()
    _UNKEYED.clear()


def _describe_failure(err: BaseException) -> str:
    text = " ".join(str(err).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(err).__name__}: {text}"


def compiled_rows(
    model: Any,
    x: Tensor,
    action: Action,
    reduction: str,
    output_transform: Callable[[Any], Tensor] | None,
    use: str,
    output_action: Action | None = None,
    tangents: Tensor | None = None,
    gram: bool = False,
) -> tuple[Tensor, ...] | None:
    """Rows ``(N, K, m)`` float64, outputs ``(N, K)`` and their shape, by the compiled graph.

    Args:
        model: the module (or callable) analysed; its parameters and buffers are passed to the
            compiled graph as inputs.
        x: inputs ``(N, ...)`` (detached; not modified).
        action: the input action.
        reduction: ``"none"`` or ``"sum"``.
        output_transform: applied to the outputs first (inside the graph).
        use: ``"forward"`` or ``"reverse"`` (``"auto"`` resolved by the caller).
        output_action: for an equivariance, only part of the cache key: the caller
            subtracts the output term (dynamo does not trace the actions' ``super()`` calls).
        tangents: optional precomputed ``action.basis_tangents(x)``, ``(m, *x.shape)``.
        gram: also return the Gram matrix ``E^T E`` ``(m, m)`` in float64.

    Returns:
        ``(rows, outputs, output shape)`` (and the Gram matrix when ``gram``), or ``None``
        when this setting does not compile: the caller then runs the eager path. The first
        failure for a model and setting warns once (a :class:`LieGGWarning` naming the
        cause) and is remembered. Non-finite values are not checked here (the caller does).
    """
    key = (
        tuple(x.shape),
        x.dtype,
        x.device,
        tuple(x.stride()),
        reduction,
        output_transform,
        use,
        _action_key(action),
        _action_key(output_action),
        tangents is None,
        gram,
    )
    entries = _entries(model)
    fn = _lookup(
        entries, key, lambda: _row_function(action, reduction, output_transform, use, gram)
    )
    if fn is None:
        return None
    if isinstance(model, nn.Module):
        params: dict | None = {k: v.detach() for k, v in model.named_parameters()}
        buffers: dict | None = {k: v.detach() for k, v in model.named_buffers()}
    else:
        params = buffers = None
    return _run(entries, key, model, "the row computation", fn, model, params, buffers, x, tangents)


@contextlib.contextmanager
def _quiet_dynamo() -> Any:
    """Silence dynamo's own warnings about untraceable builtins (the fallback warns once)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"torch\._dynamo")
        warnings.filterwarnings("ignore", module=r"torch\._inductor")
        yield


def _warn_fallback(model: Any, err: BaseException, what: str) -> None:
    name = type(getattr(model, "_liegg_key", model)).__name__
    warnings.warn(
        f"compile=True: {what} of {name} could not be compiled as one graph, so "
        f"it runs eagerly for this model and setting (same numbers). Cause: "
        f"{_describe_failure(err)}",
        LieGGWarning,
        stacklevel=5,
    )
