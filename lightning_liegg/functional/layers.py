"""Layer-wise LieGG: the polarization matrix of intermediate representations, in one pass.

For a submodule ``l`` with output z_l(x) (flattened to K_l features), row (b, k), column j is
the Lie derivative of feature k of that layer at sample b along basis element j,
dz_lk/dx(x_b) . (A_j . x_b), minus (A_j . z_l(x_b))_k when an output action is given for the
layer (e.g. ``ImageAction()`` for a feature map ``(N, C, H', W')``: equivariance of the map).
Its null space holds the generators under which that representation is invariant
(equivariant): where in the network a symmetry has been learned.

Cost: every layer comes from the same passes as the model output. Forward hooks, registered
only for the analysis and removed in a ``finally``, stash each requested layer's output as it
is computed inside the ``torch.func`` transform; the differentiated function returns them as
extra outputs, ``f(x) = (F(x), z_1(x), ..., z_L(x))``, so the one vmapped ``jvp`` (forward
mode) gives every layer's tangents. Reverse mode runs one forward pass and, per layer, one
vmapped vector-Jacobian product per feature (its cost grows with the layers' widths; forward
mode does not). Where an op has no forward-AD rule, ``ad_mode="auto"`` falls back to reverse mode
(warning once, remembered per model) as :func:`lightning_liegg.polarization_matrix` does;
its last resort for old-style ``autograd.Function``s, regular autograd, is not tried here.

Conventions:

* a module's output that is a tuple or list (an LSTM's ``(out, (h, c))``) is represented by
  its first tensor (depth first);
* a module that runs several times in one forward pass (weight sharing) is represented by
  its first call;
* ``reduction="sum"`` sums each layer's features too; ``output_transform`` applies to the
  model output only;
* the model output is analysed under the name ``"output"`` (so no layer may be called that).
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from . import _memory
from ._checks import LieGGError, NonFiniteError, describe
from ._fallback import _reverse_only, fall_back_to_reverse
from ._isolation import isolated
from ._output_term import subtract_output_term
from .actions import Action
from .polarization import (
    _all_finite,
    _check_finite_outputs,
    _contract,
    _outputs,
    _push_constant_weights,
    _sub_batches,
    check_options,
    check_output_action,
    check_tangents,
)

__all__ = [
    "OUTPUT",
    "resolve_layers",
    "auto_layers",
    "layer_rows",
    "capture",
    "first_tensor",
    "check_finite_rows",
]

#: the name under which the model's final output is analysed
OUTPUT = "output"

Layers = Mapping[str, Action | None]


def auto_layers(model: nn.Module) -> list[str]:
    """The layers ``layers="auto"`` analyses.

    The model's top-level children (``model.named_children()``); when the model has a single
    child and it is an ``nn.Sequential`` (as :class:`~lightning_liegg.demos.DigitMLP`'s
    ``net``), that Sequential's leaf modules instead (every module without children, so
    ``net.0``, ``net.1``, ...). Loss modules and torchmetrics metrics among the children are
    not counted (a LightningModule with ``self.net`` and ``self.accuracy`` still gets the
    leaves of ``net``). Modules that do not run in the forward pass are dropped when the
    analysis first runs.
    """
    children = [(n, c) for n, c in model.named_children() if not _bookkeeping(c)]
    if len(children) == 1 and isinstance(children[0][1], nn.Sequential):
        prefix, seq = children[0]
        return [
            f"{prefix}.{name}"
            for name, module in seq.named_modules()
            if name and not any(True for _ in module.children())
        ]
    return [name for name, _ in children]


def _bookkeeping(module: nn.Module) -> bool:
    """A loss module or a torchmetrics metric: a child that is not part of the network."""
    if isinstance(module, nn.modules.loss._Loss):
        return True
    return any(
        cls.__name__ == "Metric" and cls.__module__.startswith("torchmetrics")
        for cls in type(module).__mro__
    )


def resolve_layers(model: Any, layers: Any, action: Action, reduction: str) -> dict[str, Any]:
    """Check ``layers`` against ``model`` and return ``{name: output action or None}``.

    Args:
        model: the ``nn.Module`` analysed.
        layers: a list of submodule names (as in ``model.named_modules()``), a dict name ->
            output action (``None``: invariance), or ``"auto"`` (see :func:`auto_layers`).
        action: the input action (output actions must share its generator shape).
        reduction: ``"none"`` or ``"sum"`` (an output action needs ``"none"``).

    Returns:
        An ordered dict; for ``"auto"`` it carries the key ``...`` (Ellipsis) set to True so
        that modules which never run can be dropped instead of reported.

    Raises:
        LieGGError: on a model that is not an ``nn.Module``, an unknown name (close names are
            listed), the reserved name ``"output"``, or an output action that does not fit.
    """
    if not isinstance(model, nn.Module):
        raise LieGGError(
            f"Expected an nn.Module for layers=, so that its submodules can be found by name, "
            f"but got {describe(model)}."
        )
    auto = isinstance(layers, str) and layers == "auto"
    if auto:
        spec: dict[str, Any] = dict.fromkeys(auto_layers(model))
    elif isinstance(layers, Mapping):
        spec = dict(layers)
    elif isinstance(layers, (list, tuple)):
        spec = dict.fromkeys(layers)
        if len(spec) != len(layers):
            raise LieGGError(f"Expected distinct layer names, but got {list(layers)!r}.")
    else:
        raise LieGGError(
            "Expected layers to be a list of submodule names, a dict name -> output action (or "
            f'None), or "auto", but got {describe(layers)}.'
        )
    names = dict(model.named_modules())
    for name, out_action in spec.items():
        if not isinstance(name, str):
            raise LieGGError(f"Expected layer names as strings, but got {describe(name)}.")
        if name in (OUTPUT, ""):
            raise LieGGError(
                f"Expected the names of submodules, but got {name!r}: the model's final output "
                f'is always analysed, under the name "{OUTPUT}".'
            )
        if name not in names:
            close = difflib.get_close_matches(name, [n for n in names if n], n=5, cutoff=0.5)
            hint = f" Close names: {close}." if close else ""
            raise LieGGError(
                f"Expected a submodule name as in model.named_modules(), but {type(model).__name__}"
                f" has no submodule {name!r}.{hint}"
            )
        try:
            check_output_action(action, out_action, reduction)
        except LieGGError as err:
            raise LieGGError(f"For layer {name!r}: {err}") from err
    if auto:
        spec[...] = True  # type: ignore[index]
    return spec


def first_tensor(value: Any) -> Tensor | None:
    """``value`` if a tensor, else the first tensor inside a tuple or list (depth first)."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


class _Stash:
    """What the hooks saw in one forward pass: the first output of each layer, in call order.

    Outputs are kept by reference (a copy per layer would cost as much as a small layer). An
    in-place op further on (``nn.ReLU(inplace=True)``) would change a kept output: its version
    counter shows it, ``modified`` is set, and the caller runs the pass again with ``copy``.
    """

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.active = False
        self.copy = False
        self.modified = False

    def hook(self, name: str) -> Callable[..., None]:
        def stash(module: nn.Module, args: Any, output: Any) -> None:
            if not self.active or name in self.values:
                return
            tensor = first_tensor(output)
            if tensor is None:
                self.values[name] = output
                return
            if self.copy:
                tensor = tensor.clone()
            self.values[name] = tensor
            self.versions[name] = tensor._version

        return stash

    def get(self, name: str) -> Any:
        """The stashed output of ``name``; flags ``modified`` if it changed in place since."""
        value = self.values[name]
        if isinstance(value, Tensor) and value._version != self.versions.get(name):
            self.modified = True
        return value

    def clear(self) -> None:
        self.values.clear()
        self.versions.clear()


@contextlib.contextmanager
def capture(model: nn.Module, names: list[str]) -> Iterator[_Stash]:
    """Forward hooks on the named submodules for the duration of the block, then removed.

    The hooks are removed in a ``finally`` (also after an error) and the stashed tensors
    dropped, so the model keeps no hook and no reference to the analysis' activations.
    """
    modules = dict(model.named_modules())
    stash = _Stash()
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(stash.hook(name)))
        yield stash
    finally:
        for handle in handles:
            handle.remove()
        stash.clear()
        stash.active = False


def _layer_features(name: str, value: Any, n: int, reduction: str, seen: dict) -> Tensor:
    """A layer's output flattened to ``(N, K_l)`` (summed for ``"sum"``); shape into ``seen``."""
    if not isinstance(value, Tensor):
        raise LieGGError(
            f"Expected layer {name!r} to output a tensor (or a tuple/list holding one), but got "
            f"{describe(value)}."
        )
    if value.ndim == 0 or value.shape[0] != n:
        raise LieGGError(
            f"Expected layer {name!r} to output the batch size first, shape ({n}, ...), but got "
            f"shape {tuple(value.shape)}."
        )
    if not value.is_floating_point():
        raise LieGGError(
            f"Expected layer {name!r} to output floating point features, but got dtype "
            f"{value.dtype}."
        )
    seen[name] = tuple(value.shape)
    flat = value.reshape(n, -1)
    return flat.sum(dim=1, keepdim=True) if reduction == "sum" else flat


def _probe(
    model: nn.Module,
    x: Tensor,
    spec: dict[str, Any],
    reduction: str,
    transform: Any,
    root: nn.Module,
) -> tuple[list[str], int, dict[str, int], int | None]:
    """Run one sample through the model: the layers' forward order, K, each K_l, and more.

    The fourth value is the largest temporary of one sample in bytes (CPU; None elsewhere; see
    :mod:`._memory`).
    """
    auto = bool(spec.get(..., False))
    names = [k for k in spec if k is not ...]

    def run(inp: Tensor) -> tuple[list[str], int, dict[str, int]]:
        with capture(root, names) as stash:
            stash.active = True
            out = _outputs(model, inp, reduction, transform)
            order = list(stash.values)
            sizes: dict[str, int] = {}
            for name in order:
                raw = stash.values[name]
                value = first_tensor(raw)
                try:
                    feats = _layer_features(
                        name, raw if value is None else value, len(inp), reduction, {}
                    )
                except LieGGError:
                    if auto:  # "auto" keeps the layers that give batch-first tensors
                        continue
                    raise
                sizes[name] = int(feats.shape[1])
            return [n for n in order if n in sizes], int(out.shape[1]), sizes

    try:
        (order, k, sizes), largest = _memory.run_one(model, x, run)
    except LieGGError:  # report the caller's batch shapes, not the probe's
        largest = _memory.remembered(model, x) if x.device.type == "cpu" else None
        order, k, sizes = run(x)
    missing = [n for n in names if n not in order]
    if missing and not auto:
        raise LieGGError(
            f"Expected every layer in layers= to run in the model's forward pass, but "
            f"{missing} never ran on inputs of shape {tuple(x.shape)}."
        )
    if not order and auto:
        raise LieGGError(
            f'Expected layers="auto" to find submodules that run in the forward pass of '
            f"{type(model).__name__}, but none of {names} did."
        )
    return order, k, sizes, largest


def layer_rows(
    model: nn.Module,
    x: Tensor,
    action: Action,
    layers: dict[str, Any],
    reduction: str = "none",
    output_transform: Callable[[Any], Tensor] | None = None,
    mode: str = "auto",
    output_action: Action | None = None,
    check_finite: bool = True,
    root: nn.Module | None = None,
    tangents: Tensor | None = None,
) -> dict[str, Tensor]:
    """Polarization rows of every requested layer and of the output, from the same passes.

    Args:
        model: the ``nn.Module`` analysed (see :func:`lightning_liegg.polarization_matrix`).
        x: inputs ``(N, ...)`` for ``action`` (checked by the caller).
        action: how generators act on the inputs.
        layers: from :func:`resolve_layers`.
        reduction: ``"none"`` or ``"sum"``.
        output_transform: applied to the model output only.
        mode: ``"auto"``, ``"forward"`` or ``"reverse"``.
        output_action: the action on the model output (``None``: invariance).
        check_finite: raise :class:`NonFiniteError` on NaN or inf rows (a caller that checks
            the Gram matrices instead, a cheaper test, passes False and calls
            :func:`check_finite_rows` when a Gram matrix is not finite).
        root: the module whose ``named_modules()`` the layer names refer to (default
            ``model``; the user's model when ``model`` wraps it, as ``BoundForward`` does).
        tangents: precomputed ``action.basis_tangents(x)`` (see
            :func:`~lightning_liegg.functional.polarization.polarization_rows`), or None.

    Returns:
        ``{name: float64 (N, K_l, action.dim)}`` in forward order, ``"output"`` last.
    """
    check_options(action, reduction, mode)
    if tangents is not None:
        check_tangents(tangents, x, action)
    pair = None if output_action is None else (action, output_action)
    seen: dict[str, Any] = {}  # the output's shape, as _outputs records it
    shapes: dict[str, Any] = {}  # each layer's output shape
    with isolated(model, x.device):
        xd = x.detach().clone()
        hooked = model if root is None else root
        order, k, sizes, largest = _probe(model, xd, layers, reduction, output_transform, hooked)
        actions = {name: layers[name] for name in order}
        n = xd.shape[0]
        use = mode
        if mode == "auto":  # forward: m JVPs; reverse: one VJP per feature of every layer
            use = "forward" if action.dim < k + sum(sizes.values()) else "reverse"
            if _reverse_only(model) is not None:  # an op without a forward-AD rule, seen before
                use = "reverse"
        directions = action.dim if use == "forward" else k + sum(sizes.values())
        step = _memory.sub_batch(n, xd.device, directions, largest)
        with capture(hooked, order) as stash:

            def passes(
                net: Any, part: Tensor, use: str, part_t: Tensor | None
            ) -> tuple[str, list, list]:
                def f(inp: Tensor) -> tuple[Tensor, ...]:
                    stash.clear()
                    stash.active = True
                    try:
                        out = _outputs(net, inp, reduction, output_transform, pair, seen)
                    finally:
                        stash.active = False
                    feats = []
                    for name in order:
                        if name not in stash.values:
                            raise LieGGError(
                                f"Expected layer {name!r} to run in every forward pass, but it "
                                f"did not run on inputs of shape {tuple(inp.shape)}."
                            )
                        value = stash.get(name)
                        feats.append(_layer_features(name, value, len(inp), reduction, shapes))
                    stash.clear()
                    return (out, *feats)

                try:
                    values, rows = _differentiate(f, net, part, action, use, part_t)
                except RuntimeError as err:  # NotImplementedError is a RuntimeError
                    if use != "forward":
                        raise
                    fall_back_to_reverse(err, model, mode)  # warns once, as polarization does
                    use = "reverse"
                    stash.modified = False
                    values, rows = _differentiate(f, net, part, action, use, part_t)
                if stash.modified:  # an in-place op changed a kept output: again, with copies
                    stash.copy, stash.modified = True, False
                    values, rows = _differentiate(f, net, part, action, use, part_t)
                return use, list(values), list(rows)

            parts = []  # sub-batches on CPU (see polarization_rows)
            for net, part, part_t in _sub_batches(model, xd, tangents, step):
                use, values, rows = passes(net, part, use, part_t)
                parts.append((values, rows))
            if len(parts) == 1:
                values, rows = parts[0]
            else:
                values = [torch.cat(v) for v in zip(*(p[0] for p in parts), strict=True)]
                rows = [torch.cat(r) for r in zip(*(p[1] for p in parts), strict=True)]
            if "shape" in seen:
                seen["shape"] = (n, *seen["shape"][1:])
            shapes = {name: (n, *shape[1:]) for name, shape in shapes.items()}
        names = [OUTPUT, *order]
        result: dict[str, Tensor] = {}
        for name, r, value in zip(names, rows, values, strict=True):
            out_action = output_action if name == OUTPUT else actions[name]
            if out_action is not None:
                shape = seen["shape"] if name == OUTPUT else shapes[name]
                r = subtract_output_term(r, value, shape, action, out_action)
            if check_finite:
                check_finite_rows(name, r)
            result[name] = r
    return {**{name: result[name] for name in order}, OUTPUT: result[OUTPUT]}


def check_finite_rows(name: str, rows: Tensor) -> None:
    """Raise :class:`NonFiniteError` if ``rows`` ``(N, K, m)`` of layer ``name`` hold NaN/inf."""
    if _all_finite(rows):  # one reduction; the exact count only on failure
        return
    bad = ~torch.isfinite(rows).all(dim=2)
    if bool(bad.any()):
        raise NonFiniteError(
            f"Expected finite Lie derivatives, but {int(bad.sum())} of {bad.numel()} rows of "
            f"the polarization matrix of {name!r} are NaN or inf."
        )


def _differentiate(
    f: Callable[[Tensor], tuple[Tensor, ...]],
    model: nn.Module,
    xd: Tensor,
    action: Action,
    mode: str,
    tangents: Tensor | None = None,
) -> tuple[tuple[Tensor, ...], list[Tensor]]:
    """Values of ``f`` (output, layers) and each one's rows ``(N, K_l, m)``, float64.

    ``tangents``: the basis tangents of ``xd`` if the caller keeps them (pushed in forward
    mode, contracted with the input gradients in reverse mode).
    """
    n = xd.shape[0]
    if mode == "forward":
        if tangents is None:
            tangents = action.basis_tangents(xd)  # (m, N, ...)

        def push(t: Tensor) -> tuple[Any, Any]:
            return torch.func.jvp(f, (xd,), (t,))

        pushed = _push_constant_weights(model, push, tangents, xd)
        if pushed is None:
            try:
                pushed = torch.func.vmap(push, out_dims=(None, 0))(tangents)
            except RuntimeError:  # an op without a batching rule: loop
                each = [push(t) for t in tangents]
                stacked = (torch.stack([p[1][i] for p in each]) for i in range(len(each[0][1])))
                pushed = (each[0][0], tuple(stacked))
        values, jts = pushed
        _check_finite_outputs(values[0])
        # (N, K_l, m) views of contiguous (m, N, K_l): the Gram needs no other copy
        return values, [jt.to(torch.float64).permute(1, 2, 0) for jt in jts]
    values, vjp_fn = torch.func.vjp(f, xd)
    _check_finite_outputs(values[0])
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
        except RuntimeError:  # an op without a batching rule: loop
            grads = torch.stack([pull(c) for c in cot])
        rows.append(_contract(grads.transpose(0, 1), xd, action, tangents))
    return values, rows
