"""Image layouts: ``ImageAction(channels_last=True)`` gives the numbers of the permuted
channels-first input; channels-first inputs that look channels-last are flagged."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.functional.actions.grid import looks_channels_last


def _net() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 8 * 6, 3)
    ).double()


def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 10, 8, generator=g, dtype=torch.float64)  # H != W on purpose
    return x, x.permute(0, 2, 3, 1).contiguous()


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("padding", ["border", "zeros", "reflection"])
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_polarization_matrix_equals_the_permuted_input(affine, padding, mode):
    net = _net()
    x, xl = _inputs()
    first = lg.ImageAction(affine=affine, padding=padding)
    last = lg.ImageAction(affine=affine, padding=padding, channels_last=True)
    expected = lg.polarization_matrix(net, x, first, ad_mode=mode)
    got = lg.polarization_matrix(lambda z: net(z.permute(0, 3, 1, 2)), xl, last, ad_mode=mode)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("affine", [False, True])
def test_tangents_and_warps_are_the_permuted_ones(affine):
    x, xl = _inputs()
    first, last = lg.ImageAction(affine=affine), lg.ImageAction(affine=affine, channels_last=True)
    hs = torch.randn(3, *first.generator_shape, dtype=torch.float64)
    perm = (0, 1, 3, 4, 2)
    torch.testing.assert_close(last.tangent(xl, hs), first.tangent(x, hs).permute(perm))
    torch.testing.assert_close(last.basis_tangents(xl), first.basis_tangents(x).permute(perm))
    torch.testing.assert_close(
        last.transform(xl, hs[0], 0.4), first.transform(x, hs[0], 0.4).permute(0, 2, 3, 1)
    )
    grads = torch.randn(5, 2, 10, 8, 3, dtype=torch.float64)
    torch.testing.assert_close(
        last.contract(grads, xl), first.contract(grads.permute(0, 1, 4, 2, 3), x)
    )


def test_the_issues_case_rotation_bias():
    """A rotation-invariant function of colour images: the bias is small in either layout,
    and large (wrong) when channels-last images are read as channels-first."""
    g = torch.Generator().manual_seed(0)
    coords = torch.linspace(-1, 1, 17, dtype=torch.float64)
    yy, xx = coords[:, None], coords[None, :]
    weight = torch.exp(-4 * (xx**2 + yy**2))

    def radial(img):  # (N, C, H, W) -> (N, C): rotation invariant
        return (img * weight).sum((-1, -2))

    centres = 0.5 * (torch.rand(12, 3, 2, 1, 1, generator=g, dtype=torch.float64) - 0.5)
    x = torch.exp(-((xx - centres[:, :, 0]) ** 2 + (yy - centres[:, :, 1]) ** 2) / 0.05)
    xl = x.permute(0, 2, 3, 1).contiguous()
    first = lg.liegg(radial, x, lg.ImageAction(), reference="rotation2d")
    last = lg.liegg(
        lambda z: radial(z.permute(0, 3, 1, 2)),
        xl,
        lg.ImageAction(channels_last=True),
        reference="rotation2d",
    )
    assert float(first.symmetry_bias[0]) < 0.05
    torch.testing.assert_close(last.spectrum, first.spectrum, rtol=1e-8, atol=1e-14)
    with pytest.warns(lg.LieGGWarning, match="looks channels-last"):
        wrong = lg.liegg(
            lambda z: radial(z.permute(0, 3, 1, 2)), xl, lg.ImageAction(), reference="rotation2d"
        )
    assert float(wrong.symmetry_bias[0]) > 0.2


def test_channels_last_detection_and_messages():
    assert looks_channels_last(torch.zeros(2, 32, 32, 3))
    assert looks_channels_last(torch.zeros(2, 28, 28, 4))
    assert not looks_channels_last(torch.zeros(2, 3, 32, 32))
    assert not looks_channels_last(torch.zeros(2, 4, 4, 3))  # too small to tell
    assert not looks_channels_last(torch.zeros(2, 32, 32, 5))
    with pytest.raises(lg.LieGGError, match=r"permute\(0, 3, 1, 2\).*\(2, 1, 28, 28\)"):
        lg.ImageAction().check_input(torch.zeros(2, 28, 28, 1))
    action = lg.ImageAction()
    with pytest.warns(lg.LieGGWarning, match=r"channels_last=True") as record:
        action.check_input(torch.zeros(2, 32, 32, 3))
        action.check_input(torch.zeros(2, 32, 32, 3))  # once per action and shape
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lg.ImageAction().check_input(torch.zeros(2, 3, 32, 32))
        lg.ImageAction(channels_last=True).check_input(torch.zeros(2, 32, 32, 3))
    with pytest.raises(lg.LieGGError, match=r"\(N, H, W, C\).*\(2, 3, 32\)"):
        lg.ImageAction(channels_last=True).check_input(torch.zeros(2, 3, 32))
    with pytest.raises(lg.LieGGError, match="channels_last to be a bool"):
        lg.ImageAction(channels_last=1)
    assert repr(lg.ImageAction(channels_last=True)) == (
        "ImageAction(affine=False, channels_last=True)"
    )
