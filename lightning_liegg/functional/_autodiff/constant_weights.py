"""Forward-mode JVPs through linear layers and convolutions whose weights are constants.

In the analysis only the input carries a tangent: the model's parameters and buffers are
constants. PyTorch's generic forward-AD rules do not know that. The rule of ``addmm`` (behind
``F.linear``) also multiplies the primal input by the weight's tangent, which for a constant is
a zero tensor materialised in full, and adds the bias tangent: one wasted matrix product the
size of the layer's forward plus a few copies of the tangent, per layer; convolutions likewise
run a whole extra convolution. On an MLP or a small CNN that is a sixth to a quarter of the
forward-mode cost.

:class:`ConstantWeights` is a ``TorchFunctionMode`` that, while active, routes ``F.linear``,
``F.conv1d/2d/3d``, eval-mode ``F.batch_norm`` and ``F.layer_norm`` calls whose weight (and
bias) are among the given constant tensors, and ``F.gelu``, through
autograd Functions whose JVP is just the layer applied to the input's tangent (LayerNorm and
GELU: the derivative at the primal, computed once and shared by the vmapped tangents). Plain
eval-mode self-attention (``F.multi_head_attention_forward`` without masks, as
``nn.TransformerEncoderLayer`` calls it) runs its projections through the linear rule and the
softmax attention through one rule that keeps the attention matrix and folds the tangents'
vmapped dim into the rows or columns of its products instead of broadcasting the primal. Any
other call, including layers whose weight is computed in the forward, runs unchanged. Values
and tangents are the same as PyTorch's up to rounding (the same maths, minus terms that are
exactly zero).

Only for the forward-mode analysis: the caller makes sure that no outer transform (torch.func,
forward AD) or autocast is active, where the constants would not be constant or dtypes differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.overrides import TorchFunctionMode

__all__ = ["ConstantWeights", "usable"]

_CONVS: tuple[Callable[..., Tensor], ...] = (F.conv1d, F.conv2d, F.conv3d)
_LINEAR_ARGS = ("input", "weight", "bias")
_LINEAR_DEFAULTS: tuple[Any, ...] = (None,)
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS: tuple[Any, ...] = (None, 1, 0, 1, 1)


#: below this many multiply-adds a layer keeps PyTorch's rule: the lean one saves less than the
#: Python overhead of an autograd Function (~0.5 ms) costs
MIN_WORK = 1 << 23


class _Linear(torch.autograd.Function):
    """``F.linear(x, w, b)`` with constant ``w``, ``b``: the JVP is ``F.linear(x_t, w)``."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:  # type: ignore[override]
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.save_for_forward(inputs[0], inputs[1])

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor | None, *_: Any) -> Tensor:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        return F.linear(torch.zeros_like(x) if x_t is None else x_t, weight)

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: Tensor, weight: Tensor, bias: Tensor | None) -> Any:
        if in_dims[1] is not None or in_dims[2] is not None:
            raise RuntimeError("constant-weight linear: the weight is batched")
        if in_dims[0] is None:
            return F.linear(x, weight, bias), None
        return F.linear(x.movedim(in_dims[0], 0), weight, bias), 0  # acts on the last dim

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's constant-weight linear is for forward mode only.")


class _Conv(torch.autograd.Function):
    """``F.conv{1,2,3}d`` with constant weight and bias: the JVP is the convolution of x_t."""

    @staticmethod
    def forward(
        fn: Callable[..., Tensor], x: Tensor, weight: Tensor, bias: Tensor | None, *rest: Any
    ) -> Tensor:  # type: ignore[override]  # noqa: E501
        return fn(x, weight, bias, *rest)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.fn, ctx.rest = inputs[0], inputs[4:]
        ctx.save_for_forward(inputs[1], inputs[2])

    @staticmethod
    def jvp(ctx: Any, _fn_t: Any, x_t: Tensor | None, *_: Any) -> Tensor:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        return ctx.fn(torch.zeros_like(x) if x_t is None else x_t, weight, None, *ctx.rest)

    @staticmethod
    def vmap(
        info: Any,
        in_dims: tuple,
        fn: Callable[..., Tensor],
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        *rest: Any,
    ) -> Any:  # noqa: E501
        if in_dims[2] is not None or in_dims[3] is not None:
            raise RuntimeError("constant-weight convolution: the weight is batched")
        if in_dims[1] is None:
            return fn(x, weight, bias, *rest), None
        xb = x.movedim(in_dims[1], 0)
        if xb.dim() == weight.dim():  # unbatched (C, *spatial) samples: vmap's dim is N
            return fn(xb, weight, bias, *rest), 0
        out = fn(xb.reshape(-1, *xb.shape[2:]), weight, bias, *rest)
        return out.reshape(xb.shape[0], xb.shape[1], *out.shape[1:]), 0

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError(
            "lightning_liegg's constant-weight convolution is for forward mode only."
        )


class _BatchNorm(torch.autograd.Function):
    """``F.batch_norm`` in eval mode with constant statistics and affine parameters.

    Per channel an affine map, so the JVP is the tangent times ``weight / sqrt(var + eps)``
    (channels on dim 1): one multiplication instead of PyTorch's generic rule, which also
    differentiates through the (constant) statistics and parameters.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
    ) -> Tensor:
        return F.batch_norm(x, mean, var, weight, bias, False, 0.0, eps)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        ctx.eps = inputs[5]
        ctx.has_weight = inputs[3] is not None
        ctx.save_for_forward(inputs[0], inputs[2], *(inputs[3:4] if ctx.has_weight else ()))

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor | None, *_: Any) -> Tensor:  # type: ignore[override]
        x, var, *weight = ctx.saved_tensors
        scale = torch.rsqrt(var + ctx.eps)
        if weight:
            scale = scale * weight[0]
        scale = scale.reshape(-1, *([1] * (x.dim() - 2)))
        return (torch.zeros_like(x) if x_t is None else x_t) * scale

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: Tensor, *rest: Any) -> Any:
        if any(d is not None for d in in_dims[1:]):
            raise RuntimeError("constant batch norm: the statistics are batched")
        if in_dims[0] is None:
            return _BatchNorm.forward(x, *rest), None
        xb = x.movedim(in_dims[0], 0)
        out = _BatchNorm.forward(xb.reshape(-1, *xb.shape[2:]), *rest)
        return out.reshape(xb.shape), 0

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's constant batch norm is for forward mode only.")


class _LayerNorm(torch.autograd.Function):
    """``F.layer_norm`` with constant affine parameters.

    The JVP of the normalisation with ``xhat = (x - mean) * rstd`` over the normalised dims is
    ``(t - mean(t) - xhat * mean(t * xhat)) * rstd * weight``; ``xhat`` and ``rstd * weight``
    are computed once from the primal and shared by all tangents (PyTorch's rule recomputes the
    statistics per tangent and differentiates through the constant parameters).
    """

    @staticmethod
    def forward(  # type: ignore[override]
        x: Tensor, shape: tuple[int, ...], weight: Tensor | None, bias: Tensor | None, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        return torch.native_layer_norm(x, shape, weight, bias, eps)  # out, mean, rstd

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        x, shape, weight, _, _ = inputs
        _, mean, rstd = output
        ctx.mark_non_differentiable(mean, rstd)
        ctx.dims = tuple(range(-len(shape), 0))
        ctx.xhat = (x - mean) * rstd
        ctx.scale = rstd if weight is None else rstd * weight

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor | None, *_: Any) -> Tensor:  # type: ignore[override]
        if x_t is None:
            return torch.zeros_like(ctx.xhat), None, None
        xhat, dims = ctx.xhat, ctx.dims
        along_xhat = (x_t * xhat).mean(dims, keepdim=True)
        out = x_t - x_t.mean(dims, keepdim=True)
        return torch.addcmul(out, xhat, along_xhat, value=-1).mul_(ctx.scale), None, None

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: Tensor, *rest: Any) -> Any:
        if in_dims[2] is not None or in_dims[3] is not None:
            raise RuntimeError("constant layer norm: the parameters are batched")
        if in_dims[0] is None:
            return _LayerNorm.forward(x, *rest), (None, None, None)
        return _LayerNorm.forward(x.movedim(in_dims[0], 0), *rest), (0, 0, 0)  # last dims

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's constant layer norm is for forward mode only.")


class _Gelu(torch.autograd.Function):
    """``F.gelu``: the JVP is the tangent times ``gelu'(x)``, computed once for all tangents."""

    @staticmethod
    def forward(x: Tensor, approximate: str) -> Tensor:  # type: ignore[override]
        return F.gelu(x, approximate=approximate)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        x, approximate = inputs
        ctx.slope = torch.ops.aten.gelu_backward(torch.ones_like(x), x, approximate=approximate)

    @staticmethod
    def jvp(ctx: Any, x_t: Tensor | None, *_: Any) -> Tensor:  # type: ignore[override]
        return torch.zeros_like(ctx.slope) if x_t is None else x_t * ctx.slope

    @staticmethod
    def vmap(info: Any, in_dims: tuple, x: Tensor, approximate: str) -> Any:
        return F.gelu(x, approximate=approximate), in_dims[0]

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's GELU rule is for forward mode only.")


class _Matmul(torch.autograd.Function):
    """``a @ b`` for JVP rules: (..., M, K) x (..., K, P).

    Under vmap with one operand batched, the vmapped dim goes into the rows (or columns) of one
    product instead of the unbatched operand being broadcast and copied.
    """

    @staticmethod
    def forward(a: Tensor, b: Tensor) -> Tensor:  # type: ignore[override]
        return torch.matmul(a, b)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: Tensor) -> None:
        pass

    @staticmethod
    def vmap(info: Any, in_dims: tuple, a: Tensor, b: Tensor) -> Any:
        da, db = in_dims
        if da is not None and db is None:  # rows: (..., B, M, K) -> (..., B * M, K)
            a = a.movedim(da, -3)
            out = torch.matmul(a.reshape(*a.shape[:-3], -1, a.shape[-1]), b)
            return out.view(*a.shape[:-1], out.shape[-1]), out.dim() - 2
        if da is None and db is not None:  # columns: (..., K, B, P) -> (..., K, B * P)
            b = b.movedim(db, -2)
            out = torch.matmul(a, b.reshape(*b.shape[:-2], -1))
            return out.view(*out.shape[:-1], *b.shape[-2:]), out.dim() - 1
        return torch.matmul(a.movedim(da, 0), b.movedim(db, 0)), 0

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's tangent product is for forward mode only.")


class _Attention(torch.autograd.Function):
    """Softmax attention ``softmax(q k^T * scale) v`` without masks or dropout.

    With ``P`` the attention matrix, computed once from the primal, the JVP is
    ``dP v + P dv`` with ``dS = (dq k^T + q dk^T) * scale`` and ``dP = P * (dS - sum(P dS))``:
    three matrix products per tangent (the first of twice the inner size), where PyTorch's rule
    for its attention kernels differentiates the masked softmax and the scalings op by op.
    """

    @staticmethod
    def forward(q: Tensor, k: Tensor, v: Tensor, scale: float) -> tuple[Tensor, Tensor]:  # type: ignore[override]  # noqa: E501
        p = torch.softmax(torch.matmul(q * scale, k.transpose(-2, -1)), dim=-1)
        return torch.matmul(p, v), p

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
        q, k, v, scale = inputs
        out, p = output
        ctx.mark_non_differentiable(p)
        ctx.q_scaled, ctx.k_scaled, ctx.p = q * scale, k * scale, p
        ctx.v_ones = torch.cat([v, v.new_ones(*v.shape[:-1], 1)], dim=-1)
        ctx.save_for_forward(q, k, v, out)

    @staticmethod
    def jvp(ctx: Any, q_t: Tensor | None, k_t: Tensor | None, v_t: Tensor | None, _: Any) -> Tensor:  # type: ignore[override]  # noqa: E501
        # dS = dq (k s)^T + (q s) dk^T as one product [dq, q s] [k s, dk]^T (no sum of two
        # score-sized tensors), batched over the tangents; then with U = P * dS (in place):
        # dP v = U v - rowsum(U) * (P v), P v the output, where U v and rowsum(U) come from one
        # product with [v, 1]; and P dv with the tangents' dim folded into the columns. Only
        # small operands are broadcast over the tangents: nothing score-sized is copied.
        # (torch.func passes zeros, not None, for an input without a tangent.)
        q, k, v, out = ctx.saved_tensors
        q_t, k_t, v_t = (
            torch.zeros_like(a) if t is None else t for a, t in ((q, q_t), (k, k_t), (v, v_t))
        )
        rows = torch.cat([q_t, ctx.q_scaled.expand_as(q_t)], dim=-1)
        cols = torch.cat([ctx.k_scaled.expand_as(k_t), k_t], dim=-1)
        s_t = torch.matmul(rows, cols.transpose(-2, -1)).mul_(ctx.p)  # U
        both = torch.matmul(s_t, ctx.v_ones)
        out_t = both[..., :-1] - both[..., -1:] * out + _Matmul.apply(ctx.p, v_t)
        # the primal's layout: forward AD would otherwise copy the tangent into a zero tensor
        return out_t.contiguous(), None

    @staticmethod
    def vmap(info: Any, in_dims: tuple, q: Tensor, k: Tensor, v: Tensor, scale: float) -> Any:
        flat = []
        for t, d in zip((q, k, v), in_dims[:3], strict=True):
            t = t.unsqueeze(0).expand(info.batch_size, *t.shape) if d is None else t.movedim(d, 0)
            flat.append(t.reshape(-1, *t.shape[2:]))
        out, p = _Attention.forward(*flat, scale)
        unflat = (t.reshape(info.batch_size, -1, *t.shape[1:]) for t in (out, p))
        return tuple(unflat), (0, 0)

    @staticmethod
    def backward(ctx: Any, *grads: Any) -> Any:  # pragma: no cover - forward mode only
        raise RuntimeError("lightning_liegg's attention rule is for forward mode only.")


_MHA_ARGS = (
    "query", "key", "value", "embed_dim_to_check", "num_heads", "in_proj_weight",
    "in_proj_bias", "bias_k", "bias_v", "add_zero_attn", "dropout_p", "out_proj_weight",
    "out_proj_bias", "training", "key_padding_mask", "need_weights", "attn_mask",
    "use_separate_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "static_k",
    "static_v", "average_attn_weights", "is_causal",
)  # fmt: skip
_MHA_DEFAULTS: tuple[Any, ...] = (
    True, None, True, None, False, None, None, None, None, None, True, False
)  # fmt: skip
#: arguments that must be None / False for the plain self-attention this module handles
_MHA_ABSENT = (
    "bias_k", "bias_v", "add_zero_attn", "key_padding_mask", "need_weights", "attn_mask",
    "use_separate_proj_weight", "static_k", "static_v", "is_causal",
)  # fmt: skip


_BN_ARGS = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
_BN_DEFAULTS: tuple[Any, ...] = (None, None, False, 0.1, 1e-5)
#: below this many elements a batch norm keeps PyTorch's rule (see MIN_WORK)
MIN_BN_ELEMENTS = 1 << 16
_LN_ARGS = ("input", "normalized_shape", "weight", "bias", "eps")
_LN_DEFAULTS: tuple[Any, ...] = (None, None, 1e-5)
_GELU_ARGS = ("input", "approximate")
_GELU_DEFAULTS: tuple[Any, ...] = ("none",)


def _bind(args: tuple, kwargs: dict, names: tuple[str, ...], defaults: tuple) -> list | None:
    """Positional list of a call's arguments, or None for a call this module does not handle."""
    if len(args) > len(names) or any(k not in names for k in kwargs):
        return None
    required = len(names) - len(defaults)
    bound = list(args) + [None] * (len(names) - len(args))
    for i, name in enumerate(names):
        if i < len(args):
            if name in kwargs:
                return None
            continue
        if name in kwargs:
            bound[i] = kwargs[name]
        elif i >= required:
            bound[i] = defaults[i - required]
        else:
            return None
    return bound


class ConstantWeights(TorchFunctionMode):
    """Route linear layers and convolutions with constant weights through lean JVP rules.

    Args:
        constants: the tensors that are constants of the analysis (the model's parameters and
            buffers); a call is rerouted only when its weight and bias are among them.
    """

    def __init__(self, constants: Iterable[Tensor]) -> None:
        super().__init__()
        self._ids = {id(t) for t in constants}

    def _constant(self, t: Any) -> bool:
        return t is None or (isinstance(t, Tensor) and id(t) in self._ids)

    def _lean(self, bound: list | None) -> bool:
        """A call with a constant weight (and bias) and enough work to be worth rerouting."""
        if bound is None or not isinstance(bound[0], Tensor) or bound[0].dim() < 1:
            return False
        x, weight, bias = bound[:3]
        if not (isinstance(weight, Tensor) and self._constant(weight) and self._constant(bias)):
            return False
        work = x.numel() // max(1, x.shape[-1] if weight.dim() == 2 else weight.shape[1])
        return work * weight.numel() >= MIN_WORK

    def _lean_batch_norm(self, bound: list | None) -> bool:
        """An eval-mode batch norm on (N, C, ...) with constant statistics and parameters."""
        if bound is None or bound[5] or not isinstance(bound[0], Tensor) or bound[0].dim() < 2:
            return False
        mean, var, weight, bias = bound[1:5]
        if not all(isinstance(t, Tensor) for t in (mean, var)):
            return False
        if not all(self._constant(t) for t in (mean, var, weight, bias)):
            return False
        return bound[0].numel() >= MIN_BN_ELEMENTS

    def _lean_elementwise(self, bound: list | None, *params: Any) -> bool:
        """A floating-point input of enough elements whose parameters are constants."""
        if bound is None or not isinstance(bound[0], Tensor) or not bound[0].is_floating_point():
            return False
        return all(self._constant(t) for t in params) and bound[0].numel() >= MIN_BN_ELEMENTS

    def _lean_self_attention(self, a: dict[str, Any]) -> bool:
        """Plain eval-mode self-attention on (L, N, E) with packed constant projections.

        ``a``: the bound arguments of ``F.multi_head_attention_forward`` by name.
        """
        query = a["query"]
        if not (isinstance(query, Tensor) and query.dim() == 3 and query.is_floating_point()):
            return False
        if a["key"] is not query or a["value"] is not query or any(a[n] for n in _MHA_ABSENT):
            return False
        if a["training"] and a["dropout_p"] > 0:
            return False
        if a["in_proj_weight"] is None or query.shape[-1] != a["embed_dim_to_check"]:
            return False
        if query.shape[-1] % a["num_heads"]:
            return False
        params = ("in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias")
        if not all(self._constant(a[n]) for n in params):
            return False
        return query.numel() >= MIN_BN_ELEMENTS

    def _linear(self, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        return (
            _Linear.apply(x, weight, bias)
            if self._lean([x, weight, bias])
            else F.linear(x, weight, bias)
        )  # type: ignore[misc]  # noqa: E501

    def _self_attention(self, a: dict[str, Any]) -> Tensor:
        """``F.multi_head_attention_forward``'s output for plain self-attention (L, N, E)."""
        query, heads = a["query"].transpose(0, 1), a["num_heads"]  # (N, L, E): batch_first
        batch, length, embed = query.shape  # modules pass a transposed view of (N, L, E)
        head = embed // heads
        qkv = self._linear(query, a["in_proj_weight"], a["in_proj_bias"])
        q, k, v = qkv.view(batch, length, 3, heads, head).permute(2, 0, 3, 1, 4).unbind(0)
        out = _Attention.apply(q, k, v, head**-0.5)[0]
        out = out.transpose(1, 2).reshape(batch, length, embed)
        out = self._linear(out, a["out_proj_weight"], a["out_proj_bias"])
        return out.transpose(0, 1)

    def _route_linear(self, _: Any, bound: list) -> Tensor | None:
        return _Linear.apply(*bound) if self._lean(bound) else None  # type: ignore[misc]

    def _route_conv(self, func: Any, bound: list) -> Tensor | None:
        return _Conv.apply(func, *bound) if self._lean(bound) else None  # type: ignore[misc]

    def _route_batch_norm(self, _: Any, bound: list) -> Tensor | None:
        if not self._lean_batch_norm(bound):
            return None
        x, mean, var, weight, bias, _, _, eps = bound
        return _BatchNorm.apply(x, mean, var, weight, bias, float(eps))  # type: ignore[misc]

    def _route_layer_norm(self, _: Any, bound: list) -> Tensor | None:
        x, shape, weight, bias, eps = bound
        if not self._lean_elementwise(bound, weight, bias):
            return None
        return _LayerNorm.apply(x, tuple(shape), weight, bias, float(eps))[0]  # type: ignore[misc]

    def _route_gelu(self, _: Any, bound: list) -> Tensor | None:
        return _Gelu.apply(*bound) if self._lean_elementwise(bound) else None  # type: ignore[misc]

    def _route_attention(self, _: Any, bound: list) -> tuple[Tensor, None] | None:
        a = dict(zip(_MHA_ARGS, bound, strict=True))
        return (self._self_attention(a), None) if self._lean_self_attention(a) else None

    def __torch_function__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        kwargs = kwargs or {}
        try:
            rule = _ROUTES.get(func)
        except TypeError:  # an unhashable callable: never one of ours
            rule = None
        if rule is not None:
            names, defaults, route = rule
            bound = _bind(args, kwargs, names, defaults)
            out = None if bound is None else getattr(self, route)(func, bound)
            if out is not None:
                return out
        return func(*args, **kwargs)


#: the calls :class:`ConstantWeights` may reroute: argument names, defaults, routing method
_ROUTES: dict[Any, tuple[tuple[str, ...], tuple, str]] = {
    F.linear: (_LINEAR_ARGS, _LINEAR_DEFAULTS, "_route_linear"),
    **{conv: (_CONV_ARGS, _CONV_DEFAULTS, "_route_conv") for conv in _CONVS},
    F.batch_norm: (_BN_ARGS, _BN_DEFAULTS, "_route_batch_norm"),
    F.layer_norm: (_LN_ARGS, _LN_DEFAULTS, "_route_layer_norm"),
    F.gelu: (_GELU_ARGS, _GELU_DEFAULTS, "_route_gelu"),
    F.multi_head_attention_forward: (_MHA_ARGS, _MHA_DEFAULTS, "_route_attention"),
}


def usable(x: Tensor) -> bool:
    """Whether :class:`ConstantWeights` may be used now for an analysis of ``x``.

    Not under an outer torch.func transform or forward-AD level (there the parameters may carry
    tangents of their own) nor under autocast (the lean rules would see other dtypes).
    """
    if torch._C._functorch.maybe_current_level() is not None:
        return False
    if getattr(torch.autograd.forward_ad, "_current_level", -1) >= 0:
        return False
    for device_type in {x.device.type, "cpu"}:
        try:
            if torch.is_autocast_enabled(device_type):
                return False
        except (TypeError, RuntimeError):  # older torch: no device argument
            if torch.is_autocast_enabled():
                return False
    return True
