"""Layer-wise LieGG: which layers, and the hooks that see their outputs.

For a submodule ``l`` with output z_l(x) (flattened to K_l features), row (b, k), column j is
the Lie derivative of feature k of that layer at sample b along basis element j,
dz_lk/dx(x_b) . (A_j . x_b), minus (A_j . z_l(x_b))_k when an output action is given for the
layer (e.g. ``ImageAction()`` for a feature map ``(N, C, H', W')``: equivariance of the map).
Its null space holds the generators under which that representation is invariant
(equivariant): where in the network a symmetry has been learned.

This module resolves ``layers=`` against a model (:func:`resolve_layers`) and holds the forward
hooks (:func:`capture`) that stash each requested layer's output as it is computed; the row
engine (:mod:`.polarization`, the one for output-only rows too) returns them as extra outputs
of the differentiated function, ``f(x) = (F(x), z_1(x), ..., z_L(x))``, so one vmapped ``jvp``
(forward mode) gives every layer's tangents.

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
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from torch import Tensor, nn

from .._checks import LieGGError, describe
from .actions import Action
from .options import check_output_action

__all__ = [
    "OUTPUT",
    "LayerSpec",
    "resolve_layers",
    "auto_layers",
    "capture",
    "first_tensor",
    "layer_features",
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


class LayerSpec(dict):
    """``{name: output action or None}`` as :func:`resolve_layers` returns it for one model.

    Resolving it again against the same model returns it as it is (the row engine is handed it
    for every chunk); for another model, or once edited into a plain dict, it is checked anew.
    """

    def __init__(self, spec: dict[Any, Any], model: nn.Module) -> None:
        super().__init__(spec)
        self._model = weakref.ref(model)

    def resolved_for(self, model: Any) -> bool:
        """Whether this spec was resolved against ``model``."""
        return self._model() is model

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled and copied as a plain dict (no reference to the model travels with it)."""
        return (dict, (dict(self),))


def resolve_layers(model: Any, layers: Any, action: Action, reduction: str) -> LayerSpec:
    """Check ``layers`` against ``model`` and return ``{name: output action or None}``.

    Args:
        model: the ``nn.Module`` analysed.
        layers: a list of submodule names (as in ``model.named_modules()``), a dict name ->
            output action (``None``: invariance), or ``"auto"`` (see :func:`auto_layers`); a
            spec this function returned before resolves to itself.
        action: the input action (output actions must share its generator shape).
        reduction: ``"none"`` or ``"sum"`` (an output action needs ``"none"``).

    Returns:
        An ordered :class:`LayerSpec`; for ``"auto"`` it carries the key ``...`` (Ellipsis) set
        to True so that modules which never run can be dropped instead of reported.

    Raises:
        LieGGError: on a model that is not an ``nn.Module``, an unknown name (close names are
            listed), the reserved name ``"output"``, or an output action that does not fit.
    """
    if isinstance(layers, LayerSpec) and layers.resolved_for(model):
        return layers
    if not isinstance(model, nn.Module):
        raise LieGGError(
            f"Expected an nn.Module for layers=, so that its submodules can be found by name, "
            f"but got {describe(model)}."
        )
    auto = isinstance(layers, str) and layers == "auto"
    if auto:
        spec: dict[str, Any] = dict.fromkeys(auto_layers(model))
    elif isinstance(layers, Mapping):  # a dict, or a spec resolved before (same result)
        spec = dict(layers)
        auto = bool(spec.pop(..., False))
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
    return LayerSpec(spec, model)


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


def layer_features(name: str, value: Any, n: int, reduction: str, seen: dict) -> Tensor:
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
