"""Symmetry as a training signal: a differentiable penalty from the polarization matrix.

The monitor reads the Gram matrix G = E^T E of the polarization matrix (rows
E[(b, k), j] = dF_k/dx(x_b) . (A_j . x_b), one per sample and output). :func:`symmetry_loss`
builds the same rows as a function of the model's parameters, so that ``loss.backward()``
reaches them. One forward pass with a graph, then J t for every direction by a batched double
backward (the derivative of the vector-Jacobian product J^T u with respect to u), or J^T e_k
for every output (reverse) where the model has fewer outputs than directions; the ordinary
backward pass goes through both. ``engine="functorch"`` computes the same products with
vmapped ``torch.func.jvp``/``vjp`` instead (the default for models with convolutions, where
it measured cheaper). The analysis path's fast forward rules treat the weights as constants,
so they are not used here.

With a reference algebra the penalty is tr(P_ref G) / (r N), the mean squared Lie derivative
along an orthonormal basis of the reference; ``relative=True`` divides it by the largest
eigenvalue of G / N, which makes it the mean of
``SymmetryReport.reference_variance(relative=True)`` of :func:`~lightning_liegg.liegg` on the
same samples. Without a reference (promote) it is the sum of the ``k`` smallest entries of the
relative spectrum.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import LieGGError, describe, orthonormal_rows, shown
from ._autodiff import compiled as _compiled
from ._autodiff.isolation import _no_fused_attention, _set_modes
from .actions import Action
from .analysis import check_reference
from .options import AnalysisOptions
from .polarization import model_outputs, user_errors

__all__ = ["symmetry_loss", "symmetry_rows"]

AD_MODES = ("auto", "forward", "reverse")
ENGINES = ("auto", "autograd", "functorch")


def _forward(f: Callable[[Tensor], Tensor], x: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor]:
    """Outputs ``(N, K)`` and J_F(x) t for every tangent: ``(r, N, K)``, differentiable."""

    def push(t: Tensor) -> tuple[Tensor, Tensor]:
        return torch.func.jvp(f, (x,), (t,))

    try:
        return torch.func.vmap(push, out_dims=(None, 0))(tangents)
    except RuntimeError as err:  # an op without a batching rule: one JVP at a time
        if "forward" in str(err).lower() and "not implemented" in str(err).lower():
            raise
        pairs = [push(t) for t in tangents]
        return pairs[0][0], torch.stack([p[1] for p in pairs])


def _reverse(f: Callable[[Tensor], Tensor], x: Tensor, tangents: Tensor) -> tuple[Tensor, Tensor]:
    """Outputs ``(N, K)`` and the same Lie derivatives ``(r, N, K)`` by one VJP per output."""
    out, vjp_fn = torch.func.vjp(f, x)
    n, k = out.shape
    eye = torch.eye(k, dtype=out.dtype, device=out.device)
    cot = eye[:, None, :].expand(k, n, k)
    try:
        grads = torch.func.vmap(vjp_fn)(cot)[0]  # (K, N, ...)
    except RuntimeError:  # an op without a batching rule: one VJP at a time
        grads = torch.stack([vjp_fn(c)[0] for c in cot])
    r = tangents.shape[0]
    lie = torch.bmm(
        grads.reshape(k, n, -1).transpose(0, 1), tangents.reshape(r, n, -1).permute(1, 2, 0)
    )
    return out, lie.permute(2, 0, 1)  # (N, K, r) -> (r, N, K)


def _grads(outputs: Tensor, inputs: Tensor, cotangents: Tensor, *, used: bool) -> Tensor:
    """``torch.autograd.grad`` for a batch of cotangents ``(B, *outputs.shape)``, with a graph.

    One batched pass (``is_grads_batched``); one pass per cotangent where an op has no batching
    rule. Where ``outputs`` do not depend on ``inputs``: zeros, or, when ``used`` says they
    must (a graph cut by a once-differentiable function), a RuntimeError.
    """
    opts = {"create_graph": True, "retain_graph": True, "allow_unused": True}
    try:
        (g,) = torch.autograd.grad(outputs, inputs, cotangents, is_grads_batched=True, **opts)
    except RuntimeError:
        parts = [torch.autograd.grad(outputs, inputs, c, **opts)[0] for c in cotangents]
        g = None if any(part is None for part in parts) else torch.stack(parts)
    if g is None and used:
        raise RuntimeError("double backward: the graph from the inputs was cut")
    return inputs.new_zeros(cotangents.shape[0], *inputs.shape) if g is None else g


def _by_autograd(
    f: Callable[[Tensor], Tensor], x: Tensor, tangents: Tensor, ad_mode: str
) -> tuple[Tensor, Tensor]:
    """Outputs ``(N, K)`` and Lie derivatives ``(r, N, K)`` with autograd's engine.

    One forward pass with a graph; then, in forward mode, J t for all tangents as the
    derivative of the vector-Jacobian product J^T u with respect to ``u`` at u = 0 (the
    double-backward trick: <J^T u, t> = <u, J t>), one batched backward-of-backward pass; in
    reverse mode, J^T e_k for every output k in one batched pass, contracted with the
    tangents. ``"auto"`` picks the one with fewer rows once the forward pass has shown K.
    ``torch.func.jvp`` would route linear layers through Python decompositions, which cost
    more than the arithmetic at the sizes a penalty uses (``benchmarks/bench_steer.py``).
    """
    r = int(tangents.shape[0])
    xi = x.requires_grad_(True)
    with torch.enable_grad():
        out = f(xi)
        n, k = out.shape
        use = ad_mode if ad_mode != "auto" else ("forward" if r <= k else "reverse")
        if not out.requires_grad:  # the outputs depend on neither x nor a parameter
            return out, out.new_zeros(r, n, k)
        if use == "forward":
            u = torch.zeros_like(out, requires_grad=True)
            (vjp,) = torch.autograd.grad(out, xi, u, create_graph=True, allow_unused=True)
            if vjp is None:  # outputs constant in x
                return out, out.new_zeros(r, n, k)
            # J^T u is linear in u: a vjp without a graph to u means a cut graph, not J = 0
            return out, _grads(vjp, u, tangents, used=True)
        eye = torch.eye(k, dtype=out.dtype, device=out.device)
        grads = _grads(out, xi, eye[:, None, :].expand(k, n, k).contiguous(), used=False)
        lie = torch.bmm(
            grads.reshape(k, n, -1).transpose(0, 1), tangents.reshape(r, n, -1).permute(1, 2, 0)
        )
        return out, lie.permute(2, 0, 1)  # (N, K, r) -> (r, N, K)


def _by_functorch(
    f: Callable[[Tensor], Tensor], x: Tensor, tangents: Tensor, ad_mode: str
) -> tuple[Tensor, Tensor]:
    """The same with ``torch.func`` (vmapped JVPs or VJPs).

    For models whose backward autograd cannot differentiate again (a custom
    ``autograd.Function`` marked once-differentiable, say).
    """
    use = ad_mode
    if ad_mode == "auto":
        with torch.no_grad():
            k = int(f(x[:1].clone()).shape[1])
        use = "forward" if tangents.shape[0] <= k else "reverse"
    if use == "forward":
        try:
            return _forward(f, x.clone(), tangents)
        except RuntimeError:  # no forward-AD rule for some op: reverse mode runs everywhere
            if ad_mode == "forward":
                raise
    return _reverse(f, x.clone(), tangents)


def _engine(model: Any, engine: str) -> str:
    """The engine ``"auto"`` resolves to: functorch for models with convolutions, else autograd.

    Measured in ``benchmarks/bench_steer.py``: the double-backward passes cost less than
    ``torch.func``'s Python decompositions of linear layers, while on the small CNN
    ``torch.func``'s JVPs through the convolutions are cheaper than their double backward.
    """
    if engine != "auto":
        return engine
    if isinstance(model, nn.Module) and any(
        isinstance(m, nn.modules.conv._ConvNd) for m in model.modules()
    ):
        return "functorch"
    return "autograd"


def symmetry_rows(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    generators: Tensor,
    *,
    output_action: Action | None = None,
    output_transform: Callable[[Any], Tensor] | None = None,
    ad_mode: str = "auto",
    engine: str = "auto",
    compile: bool = False,
) -> Tensor:
    """Lie derivatives of every output along ``generators``, differentiable in the parameters.

    Entry [b, k, j] = dF_k/dx(x_b) . (h_j . x_b), minus (h_j . F(x_b))_k with an output action:
    the polarization matrix's rows, with the columns of ``generators`` instead of the action's
    basis. Nothing is checked here beyond the model's outputs (see :func:`symmetry_loss`).
    The model runs as the caller left it (train or eval mode); gradients flow to its
    parameters, not to ``x``.

    Args:
        model: module or callable ``(N, ...) -> (N, ...)``.
        x: inputs ``(N, ...)`` for ``action``.
        action: the input action.
        generators: ``(r, p, q)`` in ``x``'s dtype and device.
        output_action: how the generators act on the outputs (equivariance); None: invariance.
        output_transform: applied to the outputs first.
        ad_mode: ``"forward"`` (r JVPs), ``"reverse"`` (K VJPs) or ``"auto"`` (fewer passes).
        engine: ``"autograd"`` (double backward), ``"functorch"`` (``torch.func``) or
            ``"auto"`` (see :func:`symmetry_loss`).
        compile: compute the products with ``torch.func`` under ``torch.compile``
            (:func:`~lightning_liegg.functional._autodiff.compiled.compiled_lie`); ``engine``
            is then not used, except by the eager fallback.

    Returns:
        ``(N, K, r)`` in the outputs' dtype.
    """
    xd = x.detach()
    if xd.is_inference():
        xd = xd.clone()
    seen: dict[str, Any] = {}
    opts = AnalysisOptions(action, "none", output_transform)  # outputs checked and flattened

    def f(inp: Tensor) -> Tensor:
        return model_outputs(model, inp, opts, seen)

    tangents = action.tangent(xd, generators)  # (r, N, ...), no parameter in it
    r = int(generators.shape[0])
    done = None
    if compile:  # None where the setting does not compile: the eager engines below
        done = _compiled.compiled_lie(model, xd, tangents, ad_mode, output_transform, f)
    if done is not None:
        out, lie, seen["shape"] = done
    elif _engine(model, engine) == "functorch":
        out, lie = _by_functorch(f, xd, tangents, ad_mode)
    else:
        try:
            out, lie = _by_autograd(f, xd.clone(), tangents, ad_mode)
        except RuntimeError:  # e.g. an op without a double-backward formula
            out, lie = _by_functorch(f, xd, tangents, ad_mode)
    if output_action is not None:
        y = out.reshape(seen["shape"])
        term = output_action.tangent(y, generators.to(dtype=y.dtype, device=y.device))
        lie = lie - term.reshape(r, *out.shape)
    return lie.permute(1, 2, 0)


class _Steered:
    """Eval mode, a forked RNG and no fused attention kernels around the penalty's passes.

    Unlike the analysis's isolation, regular autograd stays as the caller set it: the penalty
    must reach the parameters. Every submodule gets its own mode back, also on error.
    """

    def __init__(self, model: Any, device: torch.device) -> None:
        self.modules = list(model.modules()) if isinstance(model, nn.Module) else []
        self.modes = [m.training for m in self.modules]
        self.devices = [device] if device.type == "cuda" else []

    def run(self, fn: Callable[[], Tensor]) -> Tensor:
        try:
            with torch.random.fork_rng(devices=self.devices), _no_fused_attention():
                _set_modes(self.modules, [False] * len(self.modules))
                with torch.inference_mode(False):
                    return fn()
        finally:
            _set_modes(self.modules, self.modes)


def _reference_coordinates(ref: Tensor, action: Action) -> Tensor:
    """Orthonormal reference ``(r, p, q)`` in the action's basis coordinates ``(r, m)``.

    Raises:
        LieGGError: when the reference leaves the span of the action's basis.
    """
    p, q = action.generator_shape
    flat = ref.reshape(-1, p * q)
    basis = action.basis.reshape(action.dim, p * q)
    coords = flat @ basis.T
    off = float(torch.linalg.vector_norm(flat - coords @ basis, dim=1).max())
    if off > 1e-8:
        raise LieGGError(
            f"Expected a reference inside the algebra {action!r} searches (the span of its "
            f"{action.dim} basis elements), but got a reference with {ref.shape[0]} "
            f"orthonormal element(s), one of which lies {off:.3g} (of norm 1) outside it. "
            "Search a larger algebra (basis=None) or pass a reference inside it."
        )
    return coords


def symmetry_loss(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    reference: Tensor | str | None = None,
    *,
    output_action: Action | None = None,
    output_transform: Callable[[Any], Tensor] | None = None,
    relative: bool = True,
    k: int = 1,
    ad_mode: str = "auto",
    engine: str = "auto",
    compile: bool = False,
) -> Tensor:
    """A scalar penalty on the model's Lie derivatives, differentiable in its parameters.

    The same quantity the monitor shows, as a loss:

    * with a ``reference`` (a name such as ``"so(5)"`` or ``"rotation2d"``, or a
      ``(r, p, q)`` basis): the mean squared Lie derivative along an orthonormal basis of the
      reference, tr(P_ref G) / (r N), summed over outputs. With ``relative=True`` it is divided
      by the largest eigenvalue of G / N (G the Gram matrix of the action's whole algebra),
      which makes it the mean of ``reference_variance(relative=True)`` of
      :func:`~lightning_liegg.liegg` on the same samples: scaling the outputs does not change
      it, so the network cannot lower it by shrinking every sensitivity. ``relative=False``
      needs only the r reference directions (cheaper) and scales with the outputs squared;
    * without a reference (promote): the sum of the ``k`` smallest entries of the relative
      spectrum (eigenvalues of G over the largest one; of G / N for ``relative=False``), which
      rewards any k-dimensional symmetry of the searched algebra.

    With ``output_action`` the Lie derivative is that of an equivariance,
    J_F(x)(h . x) - h . F(x). The model runs in eval mode (each submodule's mode restored,
    the global RNG forked); ``x`` gets no gradient and is not modified. Under ``no_grad`` the
    value comes without a graph.

    Args:
        model: module or callable mapping ``x`` to outputs ``(N,)``, ``(N, K)`` or ``(N, ...)``.
        x: inputs ``(N, ...)`` of a shape ``action`` accepts, floating point.
        action: how generators act on ``x``; its basis is the searched algebra.
        reference: the symmetry to enforce, or None to promote any symmetry.
        output_action: for equivariance, how the same generators act on the outputs.
        output_transform: applied to the outputs first (e.g. ``lg.l2_normalize``).
        relative: divide by the largest eigenvalue of G / N (scale free).
        k: how many of the smallest relative eigenvalues the promote mode adds up, in
            ``[1, action.dim - 1]``; unused with a reference.
        ad_mode: ``"forward"`` (one JVP per direction), ``"reverse"`` (one VJP per output) or
            ``"auto"`` (fewer passes; reverse where forward mode meets an op without a rule).
        engine: how the products are computed: ``"autograd"`` (one forward pass, then J t
            for all directions by a batched double backward, all in autograd's engine),
            ``"functorch"`` (vmapped ``torch.func.jvp``/``vjp``), or ``"auto"``: functorch
            for modules with convolution layers, autograd otherwise (the cheaper of the two in
            ``benchmarks/bench_steer.py``). Same values to rounding; autograd falls back to
            functorch where an op has no double-backward formula.
        compile: compute the Lie derivatives with ``torch.func`` under ``torch.compile``
            (forward and backward compiled; ``engine`` is then used only by the eager
            fallback). Cached per model, input shape, dtype, ``ad_mode`` and grad mode; new
            weights (every optimizer step) do not recompile. The first call compiles (seconds
            to minutes on a CPU); where the model does not compile as one graph, the eager
            engines answer with one ``LieGGWarning`` naming the cause. See
            ``docs/compiled.md``.

    Returns:
        A scalar tensor in the outputs' dtype.

    Raises:
        LieGGError: on inputs or options that do not fit (wrong shapes, a reference outside
            the searched algebra, ``k`` out of range), saying what was expected and what came.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
        ...                           torch.nn.Linear(8, 1)).double()
        >>> x = torch.randn(32, 6, dtype=torch.float64)
        >>> loss = lg.symmetry_loss(net, x, lg.VectorAction(dim=3, channels=2), "so(3)")
        >>> loss.backward()                    # gradients reach net's weights
        >>> bool(0 <= loss <= 1), net[0].weight.grad is not None
        (True, True)
    """
    AnalysisOptions(  # the checks
        action, "none", output_transform, ad_mode, output_action, compile=compile
    )
    check_engine(engine)
    plan = penalty_plan(action, reference, relative, k)
    return penalty(
        model,
        x,
        action,
        plan,
        output_action=output_action,
        output_transform=output_transform,
        ad_mode=ad_mode,
        engine=engine,
        compile=compile,
    )


def check_engine(engine: Any) -> None:
    """Raise a LieGGError unless ``engine`` is one of :data:`ENGINES`."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise LieGGError(f"Expected engine to be one of {ENGINES}, but got {engine!r}.")


@dataclass(frozen=True)
class PenaltyPlan:
    """What a penalty needs from its options, checked and prepared once.

    Attributes:
        relative: divide by the largest eigenvalue of G / N.
        k: the promote mode's number of eigenvalues.
        coords: orthonormal reference in the action's basis coordinates ``(r, m)``, float64,
            or None (promote).
        own: the orthonormal reference ``(r, p, q)`` when only its directions are needed
            (``relative=False``), else None (the action's whole basis).
    """

    relative: bool
    k: int
    coords: Tensor | None
    own: Tensor | None


def penalty_plan(
    action: Action, reference: Tensor | str | None, relative: bool, k: int
) -> PenaltyPlan:
    """Check ``reference``, ``relative`` and ``k`` against ``action``; prepare the reference.

    Raises:
        LieGGError: for a reference outside the action's algebra or of the wrong shape, a
            non-bool ``relative``, or ``k`` out of ``[1, action.dim - 1]`` without a reference.
    """
    if not isinstance(relative, bool):
        raise LieGGError(f"Expected relative to be True or False, but got {describe(relative)}.")
    m = action.dim
    ref = check_reference(reference, action)
    if ref is None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= m - 1):
        raise LieGGError(
            f"Expected k to be an integer in [1, {m - 1}] (action.dim - 1 = {m - 1} for "
            f"{action!r}), but got {shown(k)}."
            + (" A 1-dimensional search has no spectrum to promote." if m < 2 else "")
        )
    if ref is None:
        return PenaltyPlan(relative, k, None, None)
    ref = orthonormal_rows(ref, "reference", f"for {action!r}")
    coords = _reference_coordinates(ref, action)
    return PenaltyPlan(relative, k, coords, None if relative else ref)


def penalty(
    model: Callable[[Tensor], Any],
    x: Tensor,
    action: Action,
    plan: PenaltyPlan,
    *,
    output_action: Action | None = None,
    output_transform: Callable[[Any], Tensor] | None = None,
    ad_mode: str = "auto",
    engine: str = "auto",
    compile: bool = False,
) -> Tensor:
    """:func:`symmetry_loss` with its options already checked and prepared in ``plan``.

    ``model`` and ``x`` are still checked (every call brings new ones).
    """
    if not callable(model):
        raise LieGGError(
            f"Expected model to be callable (an nn.Module), but got {describe(model)}."
        )
    action.check_input(x)
    n = int(x.shape[0])
    own = plan.own is not None  # only the r reference directions are needed
    gens = (plan.own if own else action.basis).to(dtype=x.dtype, device=x.device)
    coords = plan.coords
    options = {"output_action": output_action, "output_transform": output_transform}

    def compute() -> Tensor:
        rows = symmetry_rows(
            model, x, action, gens, ad_mode=ad_mode, engine=engine, compile=compile, **options
        )
        flat = rows.reshape(-1, rows.shape[-1]).to(torch.float64)
        if own:  # tr(P_ref G) / (r N) from the reference's own rows
            return (flat.square().sum() / (flat.shape[1] * n)).to(rows.dtype)
        gram = flat.T @ flat  # (m, m) float64
        evals = torch.linalg.eigvalsh(0.5 * (gram + gram.T))
        top = evals[-1].clamp_min(torch.finfo(torch.float64).tiny)
        scale = top if plan.relative else torch.as_tensor(float(n), dtype=torch.float64)
        if coords is not None:
            c = coords.to(device=gram.device)
            value = ((c @ gram) * c).sum() / (c.shape[0] * scale)
        else:
            value = evals[: plan.k].clamp_min(0.0).sum() / scale
        return value.to(rows.dtype)

    with user_errors():  # an error inside output_transform names it, cause chained
        value = _Steered(model, x.device).run(compute)
    # the passes build their graph whatever the outer grad mode: honour no_grad here
    return value if torch.is_grad_enabled() else value.detach()
