"""One line in ``training_step``: a symmetry penalty that trains, logged as ``liegg/penalty``.

:class:`SymmetryRegularizer` wraps :func:`~lightning_liegg.symmetry_loss` for a training loop:
it takes the first ``num_samples`` samples of the batch, skips all but every
``every_n_steps``-th step, computes in float32 with autocast off under mixed precision, and
logs the unweighted penalty through the LightningModule it is given. It holds no parameters
and no state in the checkpoint; under DDP each rank penalises its own samples and the
gradients synchronise with the rest of the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ._checks import check_callable, check_number, check_positive_int, describe
from .exceptions import LieGGError
from .functional.actions import Action
from .functional.analysis import check_reference
from .functional.options import check_compile, check_options, check_output_action
from .functional.steer import check_engine, penalty, penalty_plan

__all__ = ["SymmetryRegularizer"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _lightning_module(obj: Any) -> bool:
    """Whether ``obj`` is a LightningModule of either namespace (without importing Lightning)."""
    return any(
        c.__name__ == "LightningModule"
        and c.__module__.split(".")[0] in ("pytorch_lightning", "lightning")
        for c in type(obj).__mro__
    )


def _trainer_of(module: Any) -> Any:
    """The Trainer a LightningModule is attached to, or None (no error when detached)."""
    return getattr(module, "_trainer", None)


class SymmetryRegularizer(nn.Module):
    """A symmetry penalty for ``training_step``: ``loss = loss + self.symmetry(self, x)``.

    Calling it returns ``weight * symmetry_loss(model, x[:num_samples], action, reference,
    ...)`` on every ``every_n_steps``-th training step and a zero tensor (no graph) on the
    others. See :func:`~lightning_liegg.symmetry_loss` for what the penalty measures; with
    ``relative=True`` (default) it is the number ``LieGGCallback`` logs as the reference's
    relative variance, so the callback watches the same quantity the penalty lowers.

    Args:
        action: how generators act on the inputs (its basis is the searched algebra).
        reference: the symmetry to enforce (a name such as ``"so(5)"`` or a ``(r, p, q)``
            basis); None promotes any ``k``-dimensional symmetry.
        weight: the penalty's factor in the loss, >= 0.
        num_samples: the first this many samples of each batch are penalised (None: all);
            cost grows linearly with it.
        every_n_steps: penalise every n-th optimizer step (the Trainer's ``global_step`` when
            the module is attached to one, else this module's own count of calls).
        output_action: for equivariance, how the generators act on the outputs.
        output_transform: applied to the outputs first.
        relative: divide by the largest eigenvalue of G / N (scale free; needs every direction
            of the algebra). False: only the reference's directions, cheaper.
        k: the promote mode's number of directions (no reference).
        ad_mode: ``"auto"``, ``"forward"`` or ``"reverse"`` (see ``symmetry_loss``).
        engine: ``"auto"``, ``"autograd"`` or ``"functorch"`` (see ``symmetry_loss``).
        compile: the penalty's Lie derivatives under ``torch.compile`` (see
            ``symmetry_loss``): the first penalised step compiles, later steps reuse the
            graph with the new weights.
        log_name: the name the unweighted penalty is logged under via ``module.log`` when the
            model is a LightningModule attached to a Trainer; None: no logging.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> reg = lg.SymmetryRegularizer(lg.VectorAction(dim=3, channels=2), "so(3)",
        ...                              weight=10.0, num_samples=16)
        >>> net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
        ...                           torch.nn.Linear(8, 1))
        >>> penalty = reg(net, torch.randn(64, 6))
        >>> penalty.shape, penalty.requires_grad
        (torch.Size([]), True)
    """

    def __init__(
        self,
        action: Action,
        reference: Tensor | str | None = None,
        weight: float = 1.0,
        num_samples: int | None = 64,
        every_n_steps: int = 1,
        *,
        output_action: Action | None = None,
        output_transform: Callable[[Any], Tensor] | None = None,
        relative: bool = True,
        k: int = 1,
        ad_mode: str = "auto",
        log_name: str | None = "liegg/penalty",
        engine: str = "auto",
        compile: bool = False,
    ) -> None:
        super().__init__()
        check_options(action, "none", ad_mode)
        check_output_action(action, output_action, "none")
        check_callable("output_transform", output_transform)
        check_engine(engine)
        check_compile(compile)
        if log_name is not None and not isinstance(log_name, str):
            raise LieGGError(
                f"Expected log_name to be a str or None, but got {describe(log_name)}."
            )
        self.action = action
        # reference, relative and k checked and the reference orthonormalised once
        self.plan = penalty_plan(action, reference, relative, k)
        self.reference = check_reference(reference, action)
        self.weight = check_number("weight", weight, minimum=0.0)
        self.num_samples = check_positive_int("num_samples", num_samples, optional=True)
        self.every_n_steps = check_positive_int("every_n_steps", every_n_steps)
        self.output_action = output_action
        self.output_transform = output_transform
        self.relative = relative
        self.k = k
        self.ad_mode = ad_mode
        self.engine = engine
        # not `self.compile`: that would hide nn.Module.compile()
        self.compile_penalty = compile
        self.log_name = log_name
        self.calls = 0

    def extra_repr(self) -> str:
        """The options, as ``print(module)`` shows them."""
        ref = "None" if self.reference is None else f"({self.reference.shape[0]} generators)"
        return (
            f"action={self.action!r}, reference={ref}, weight={self.weight}, "
            f"num_samples={self.num_samples}, every_n_steps={self.every_n_steps}, "
            f"relative={self.relative}"
        )

    def _step(self, model: Any) -> int:
        trainer = _trainer_of(model) if _lightning_module(model) else None
        return int(trainer.global_step) if trainer is not None else self.calls

    def penalty(self, model: Callable[[Tensor], Any], x: Tensor) -> Tensor:
        """The unweighted penalty on the first ``num_samples`` samples of ``x``.

        In float32 (or the model's own higher precision) with autocast off; never skipped, not
        logged.
        """
        if isinstance(x, Tensor) and self.num_samples is not None:
            x = x[: self.num_samples]
        with torch.autocast(device_type=_device_type(x), enabled=False):
            if isinstance(x, Tensor) and x.dtype in _LOW_PRECISION:
                x = x.to(_parameter_dtype(model) or x.dtype)
            return penalty(
                model,
                x,
                self.action,
                self.plan,
                output_action=self.output_action,
                output_transform=self.output_transform,
                ad_mode=self.ad_mode,
                engine=self.engine,
                compile=self.compile_penalty,
            )

    def forward(self, model: Callable[[Tensor], Any], x: Tensor) -> Tensor:
        """``weight`` times the penalty of ``model`` on ``x`` on this step, or a zero tensor.

        Args:
            model: the network (usually the LightningModule itself, ``self``).
            x: the batch's inputs ``(N, ...)``; not modified, gets no gradient.
        """
        step = self._step(model)
        self.calls += 1
        if step % self.every_n_steps != 0 or self.weight == 0.0:
            dtype = x.dtype if isinstance(x, Tensor) and x.is_floating_point() else None
            device = x.device if isinstance(x, Tensor) else None
            return torch.zeros((), dtype=dtype, device=device)
        value = self.penalty(model, x)
        if self.log_name is not None and _lightning_module(model) and _trainer_of(model):
            model.log(
                self.log_name,
                value.detach(),
                on_step=True,
                on_epoch=False,
                batch_size=int(min(len(x), self.num_samples or len(x))),
            )
        return self.weight * value


def _device_type(x: Any) -> str:
    return x.device.type if isinstance(x, Tensor) else "cpu"


def _parameter_dtype(model: Any) -> torch.dtype | None:
    """The dtype low-precision inputs are cast to for the penalty.

    The first float32/float64 parameter's dtype; float32 for a callable; None when a module's
    floating parameters are all half precision (the inputs then stay as they are).
    """
    if not isinstance(model, nn.Module):
        return torch.float32
    for p in model.parameters():
        if p.is_floating_point() and p.dtype not in _LOW_PRECISION:
            return p.dtype
    return None
