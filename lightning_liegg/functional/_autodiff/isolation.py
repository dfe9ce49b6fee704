"""The analysis without side effects: modes, RNG, autograd state and fused kernels restored.

:func:`isolated` wraps every analysis (``polarization_matrix``, ``liegg``, the metric, the
callback, the filmstrip's model outputs): the model in eval mode as ``train(False)`` would set
it, each submodule's own mode back afterwards, the global RNG forked, regular autograd
recording off (``torch.func`` transforms still differentiate) and PyTorch's fused attention
kernels, which have no forward-AD rule, switched off.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["isolated"]


def _set_modes(modules: list[nn.Module], modes: list[bool]) -> None:
    """Give each module its own flag, calling ``train`` where a class overrides it.

    ``modules`` is in ``model.modules()`` order (parents before their descendants). An
    overridden ``train(mode)`` (escnn's ``R2Conv`` builds its filter there) also recurses into
    the module's children, so modules are visited top-down: every descendant comes later and
    gets its own flag back, whatever an ancestor's call set. Modules with the stock ``train``
    get only their flag set, which is all ``nn.Module.train`` does for the module itself.
    """
    for m, mode in zip(modules, modes, strict=True):
        if type(m).train is not nn.Module.train:
            m.train(mode)
        elif m.training != mode:
            # what nn.Module.train does for the module itself, without nn.Module.__setattr__'s
            # checks for parameters, buffers and submodules (a bool is none of them)
            object.__setattr__(m, "training", mode)


@contextlib.contextmanager
def _no_fused_attention() -> Iterator[None]:
    """Turn off PyTorch's fused transformer and attention kernels (restored afterwards).

    ``nn.TransformerEncoderLayer`` and ``nn.MultiheadAttention`` take a fused "fast path" in
    eval mode without gradients, and ``F.scaled_dot_product_attention`` picks a flash or
    memory-efficient kernel; none of them has a forward-AD rule, and their backward kernels
    have no batching rule. The math versions compute the same values and differentiate
    in both modes.
    """
    mha = getattr(torch.backends, "mha", None)
    fastpath = mha.get_fastpath_enabled() if mha is not None else None
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        math_sdpa: contextlib.AbstractContextManager = sdpa_kernel(SDPBackend.MATH)
    except ImportError:  # older PyTorch: no switch to pull
        math_sdpa = contextlib.nullcontext()
    try:
        if mha is not None:
            mha.set_fastpath_enabled(False)
        with math_sdpa:
            yield
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fastpath)


@contextlib.contextmanager
def isolated(model: Any, device: torch.device) -> Iterator[None]:
    """Run an analysis without side effects on ``model`` or global state.

    Puts the model in eval mode as ``model.train(False)`` would (modules that override
    ``train``, like escnn's, do their own switching; the others only get their flag, which
    is much cheaper on models of thousands of modules) and gives every submodule its own mode
    back afterwards, also on error (see :func:`_set_modes`). Forks the global RNG (CPU, and
    the CUDA device of the data), leaves inference mode, disables regular autograd recording
    (``torch.func`` transforms still differentiate), so no graph is built through the
    parameters and nothing accumulates in ``.grad``, and turns off the fused attention
    kernels (:func:`_no_fused_attention`).
    """
    modules = list(model.modules()) if isinstance(model, nn.Module) else []
    modes = [m.training for m in modules]
    cuda = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=cuda), _no_fused_attention():
            if modules:
                # what model.train(False) does, ~50x faster on models of many modules: stock
                # modules only get their flag, overridden train() methods are still called
                _set_modes(modules, [False] * len(modules))
            with torch.inference_mode(False), torch.no_grad():
                yield
    finally:
        _set_modes(modules, modes)
