"""User callables: how ``forward_fn`` is called, and errors raised inside user code.

``forward_fn`` is called as ``(module, x)`` without an extra part and ``(module, x, extra)``
with one; an exception inside ``forward_fn`` or ``output_transform`` reaches the caller as a
LieGGError naming the callable and the signature it is called with, the original exception
chained, in every differentiation mode, while the engine's own fall-backs still see the
original error. Error messages show shapes and types, never the values of tensors or lists.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.functional.options import AnalysisOptions

from .engine import gram
from .test_model_zoo import ScaledReLU

DT = torch.float64
ACTION = lg.VectorAction(dim=3)
MODES = ["auto", "forward", "reverse"]


def mlp(outputs: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, outputs)).to(DT)


def inputs(n: int = 10) -> Tensor:
    return torch.randn(n, 3, dtype=DT, generator=torch.Generator().manual_seed(1))


# -- how forward_fn is called ----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_forward_fn_without_extra_is_called_with_module_and_x(mode) -> None:
    model, x = mlp(), inputs()
    calls: list[int] = []

    def forward_fn(module: nn.Module, z: Tensor) -> Tensor:  # two arguments only
        calls.append(len(z))
        return 2.0 * module(z)

    got, n = gram(model, x, ACTION, forward_fn=forward_fn, ad_mode=mode)
    ref, _ = gram(lambda z: 2.0 * model(z), x, ACTION, ad_mode=mode)
    assert calls and n == 10
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_forward_fn_with_extra_gets_each_samples_extra() -> None:
    model, x = mlp(), inputs()
    scale = torch.linspace(0.5, 2.0, 10, dtype=DT)[:, None]

    def forward_fn(module: nn.Module, z: Tensor, s: Tensor) -> Tensor:
        return module(z) * s

    got, _ = gram(model, x, ACTION, forward_fn=forward_fn, extra=scale, chunk_size=4)
    rows = [
        lg.polarization_matrix(lambda z, s=s: model(z) * s, xi[None], ACTION)
        for xi, s in zip(x, scale, strict=True)
    ]
    ref = sum(r.T @ r for r in rows)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


# -- errors inside user callables --------------------------------------------------------------
def test_a_forward_fn_of_the_wrong_arity_is_named_with_the_expected_signature() -> None:
    model, x = mlp(), inputs()
    extra = torch.ones(10, 1, dtype=DT)
    with pytest.raises(lg.LieGGError) as info:
        gram(model, x, ACTION, forward_fn=lambda m, z: m(z), extra=extra)
    text = str(info.value)
    assert "forward_fn(module, x, extra) -> outputs" in text
    assert "takes 2 positional arguments but 3 were given" in text
    assert "a tensor of shape (10, 3) and dtype torch.float64" in text  # x, described
    assert isinstance(info.value.__cause__, TypeError)
    with pytest.raises(lg.LieGGError, match=r"forward_fn\(module, x\) -> outputs") as info:
        gram(model, x, ACTION, forward_fn=lambda m, z, e: m(z))  # no extra: two arguments
    assert isinstance(info.value.__cause__, TypeError)


class Boom(Exception):
    """An error of the user's own kind."""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reduction", ["none", "sum"])
def test_an_error_inside_forward_fn_is_chained(mode, reduction) -> None:
    model, x = mlp(), inputs()

    def forward_fn(module: nn.Module, z: Tensor) -> Tensor:
        raise Boom("the user's model is not ready")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lg.LieGGWarning)  # "sum" of 2 outputs
        with pytest.raises(lg.LieGGError, match="Expected forward_fn to run as") as info:
            gram(model, x, ACTION, reduction=reduction, forward_fn=forward_fn, ad_mode=mode)
    assert isinstance(info.value.__cause__, Boom)
    assert "Boom: the user's model is not ready" in str(info.value)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("layers", [None, ["0"]])
def test_an_error_inside_output_transform_is_chained(mode, layers) -> None:
    model, x = mlp(), inputs()

    def transform(out: Tensor) -> Tensor:
        raise KeyError("logits")

    with pytest.raises(lg.LieGGError, match=r"output_transform\(outputs\) -> Tensor") as info:
        lg.liegg(model, x, ACTION, output_transform=transform, ad_mode=mode, layers=layers)
    assert isinstance(info.value.__cause__, KeyError)
    assert "a tensor of shape (" in str(info.value)
    with pytest.raises(lg.LieGGError, match="output_transform") as info:
        lg.polarization_matrix(model, x, ACTION, output_transform=transform, ad_mode=mode)
    assert isinstance(info.value.__cause__, KeyError)
    if layers is None:  # the same for the differentiable loss and the per-sample measures
        calls = [
            lambda: lg.symmetry_loss(model, x, ACTION, "so(3)", output_transform=transform),
            lambda: lg.symmetry_violation(
                model, x, ACTION, lg.algebras.so(3), output_transform=transform
            ),
            lambda: lg.transform_errors(
                model, x, {"flip": lambda v: -v}, output_transform=transform
            ),
        ]
        for call in calls:
            with pytest.raises(lg.LieGGError, match="output_transform") as info:
                call()
            assert isinstance(info.value.__cause__, KeyError)


def test_fall_backs_still_see_the_original_error_inside_forward_fn() -> None:
    """A model without a forward-AD rule behind forward_fn: auto falls back to reverse mode
    (one warning, same rows), forward mode names the missing rule: not a forward_fn error."""
    lin = nn.Linear(3, 12).to(DT)  # 12 outputs, 9 generators: auto tries forward mode

    def forward_fn(module: nn.Module, z: Tensor) -> Tensor:
        return ScaledReLU.apply(module(z))

    x = inputs()
    with pytest.warns(lg.LieGGWarning, match="Forward-mode differentiation"):
        auto, _ = gram(lin, x, ACTION, forward_fn=forward_fn, ad_mode="auto")
    reverse, _ = gram(lin, x, ACTION, forward_fn=forward_fn, ad_mode="reverse")
    torch.testing.assert_close(auto, reverse, rtol=1e-12, atol=1e-12)
    with pytest.raises(lg.LieGGError, match='ad_mode="reverse"') as info:
        gram(nn.Linear(3, 12).to(DT), x, ACTION, forward_fn=forward_fn, ad_mode="forward")
    assert "Expected forward_fn" not in str(info.value)


def test_a_model_error_without_user_callables_is_not_renamed() -> None:
    def model(z: Tensor) -> Tensor:
        raise Boom("plain")

    with pytest.raises(Boom):
        lg.liegg(model, inputs(), ACTION)


# -- no values in messages ---------------------------------------------------------------------
SECRET = 1234.5678


@pytest.mark.parametrize(
    "call",
    [
        lambda: lg.liegg(mlp(), [[SECRET, 2.0, 3.0]], ACTION),
        lambda: lg.polarization_matrix(mlp(), np.full((4, 3), SECRET), ACTION),
        lambda: lg.liegg(mlp(), inputs(), ACTION, reference=[[SECRET, 1.0]]),
        lambda: lg.liegg(mlp(), inputs(), ACTION, reference=[[[SECRET, 1.0]], [[2.0]]]),
        lambda: lg.liegg(mlp(), inputs(), ACTION, chunk_size=[SECRET]),
        lambda: lg.liegg(mlp(), inputs(), ACTION, reduction=torch.full((2,), SECRET)),
        lambda: lg.liegg(mlp(), inputs(), ACTION, output_action=[SECRET]),
        lambda: lg.liegg(mlp(), inputs(), [SECRET]),
        lambda: lg.VectorAction(dim=[SECRET]),
        lambda: lg.TensorAction(dim=3, channels=(SECRET,)),
        lambda: lg.ChannelAction([SECRET, SECRET]),
        lambda: ACTION.transform(inputs(), torch.zeros(3, 3), t=[[SECRET]]),
        lambda: AnalysisOptions(ACTION, ad_mode=np.full(3, SECRET)),
    ],
)
def test_errors_show_types_and_shapes_never_values(call) -> None:
    with pytest.raises(lg.LieGGError) as info:
        call()
    text = str(info.value)
    assert "1234" not in text, text
    assert "Expected" in text and "but got" in text, text


def test_describe_names_types_and_shapes() -> None:
    from lightning_liegg._checks import describe, shown

    assert describe([1.5, 2.5, 3.5]) == "a list of shape (3,)"
    assert describe(np.zeros((2, 3))) == "a ndarray of shape (2, 3) and dtype float64"
    assert describe([[1, 2], [3, 4]]) == "a list of shape (2, 2)"
    assert shown("mean") == "'mean'" and shown(0) == "0" and shown(None) == "None"
    assert shown([1, 2]) == "a list of shape (2,)"
