"""Nonlinear symmetries: VectorFieldAction (fields over a function library) and the projective
image action. Known answers in float64."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGError

from ..conftest import rel_err

QP = ("q", "p")


def anharmonic(z: torch.Tensor) -> torch.Tensor:
    """H = p^2/2 + q^4/4 for z = (q, p): ``(N, 1)``."""
    return (z[:, 1] ** 2 / 2 + z[:, 0] ** 4 / 4)[:, None]


def field_tensor(action: lg.VectorFieldAction, terms: dict[tuple[int, str], float]) -> torch.Tensor:
    """A ``(1, dim, m)`` generator from ``{(component, function name): coefficient}``."""
    w = torch.zeros(1, *action.generator_shape, dtype=torch.float64)
    for (i, name), c in terms.items():
        w[0, i, action.functions.index(name)] = c
    return w


def angle_to(generator: torch.Tensor, target: torch.Tensor) -> float:
    """sin of the angle between two generators (sign free): 0 = the same direction."""
    a, b = generator.flatten(), target.flatten()
    cos = float(a @ b / (a.norm() * b.norm()))
    return math.sqrt(max(0.0, 1.0 - cos * cos))


def samples(n: int = 400, scale: float = 1.5) -> torch.Tensor:
    return (torch.rand(n, 2, dtype=torch.float64) * 2 - 1) * scale


# -- the library ------------------------------------------------------------------------------
def test_monomial_library_order_names_and_values() -> None:
    act = lg.VectorFieldAction(2, degree=2, constant=True, names=QP)
    assert act.functions == ("q", "p", "q^2", "q p", "p^2", "1")
    assert act.generator_shape == (2, 6) and act.dim == 12
    x = torch.tensor([[2.0, 3.0], [-1.0, 0.5]], dtype=torch.float64)
    expected = torch.tensor(
        [[2.0, 3.0, 4.0, 6.0, 9.0, 1.0], [-1.0, 0.5, 1.0, -0.5, 0.25, 1.0]], dtype=torch.float64
    )
    assert torch.equal(act.features(x)[:, 0], expected)
    assert lg.VectorFieldAction(3, degree=3, constant=False).dim == 3 * (3 + 6 + 10)


def test_format_generator_reads_as_a_vector_field() -> None:
    act = lg.VectorFieldAction(2, degree=3, names=QP)
    w = field_tensor(act, {(0, "p"): 0.7, (1, "q^3"): -0.7, (1, "q p"): 0.01})[0]
    assert act.format_generator(w) == "p ∂q - q^3 ∂p"  # scaled to 1, 0.01/0.7 dropped
    assert act.format_generator(-w) == "-p ∂q + q^3 ∂p"
    w2 = field_tensor(act, {(0, "q"): 1.0, (0, "1"): -0.5, (1, "q p"): 0.25})[0]
    assert act.format_generator(w2) == "(q - 0.5) ∂q + 0.25 q p ∂p"
    assert act.format_generator(torch.zeros(2, 10)) == "0"


# -- known answers ----------------------------------------------------------------------------
def test_exact_anharmonic_energy_has_one_symmetry_the_hamiltonian_flow() -> None:
    act = lg.VectorFieldAction(2, degree=3, names=QP)
    report = lg.liegg(anharmonic, samples(), act)
    flow = field_tensor(act, {(0, "p"): 1.0, (1, "q^3"): -1.0})
    assert report.symmetry_dim == 1
    assert report.relative_variance < 1e-13  # float precision
    assert report.gap > 10  # decades to the next direction
    assert angle_to(report.generators[0], flow) < 1e-7
    assert report.descriptions[0] == "p ∂q - q^3 ∂p"
    assert "p ∂q - q^3 ∂p" in repr(report)


def test_pendulum_with_a_named_library() -> None:
    library = {
        "q": lambda z: z[:, 0],
        "p": lambda z: z[:, 1],
        "sin q": lambda z: torch.sin(z[:, 0]),
        "cos q": lambda z: torch.cos(z[:, 0]),
        "1": lambda z: torch.ones_like(z[:, 0]),
    }
    act = lg.VectorFieldAction(2, library=library, names=QP)

    def energy(z: torch.Tensor) -> torch.Tensor:
        return (z[:, 1] ** 2 / 2 - torch.cos(z[:, 0]))[:, None]

    report = lg.liegg(energy, samples(scale=2.5), act)
    assert report.symmetry_dim == 1 and report.relative_variance < 1e-13
    flow = field_tensor(act, {(0, "p"): 1.0, (1, "sin q"): -1.0})
    assert angle_to(report.generators[0], flow) < 1e-7
    assert report.descriptions[0] == "p ∂q - sin q ∂p"


def test_linear_library_is_the_vector_action() -> None:
    """degree 1 without constant: gl(n), the same numbers as VectorAction, to 1e-10."""
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 6)).double()
    x = torch.randn(20, 6, dtype=torch.float64)
    vec = lg.VectorAction(3, channels=2)
    field = lg.VectorFieldAction(3, degree=1, constant=False, channels=2)
    assert field.generator_shape == (3, 3)
    for out_a, out_b in ((None, None), (vec, field)):  # invariance, then equivariance
        a = lg.liegg(net, x, vec, output_action=out_a, reference="so(3)")
        b = lg.liegg(net, x, field, output_action=out_b, reference="so(3)")
        assert rel_err(b.spectrum, a.spectrum) < 1e-10
        assert rel_err(b.generators, a.generators) < 1e-10
        assert abs(a.subspace_distance() - b.subspace_distance()) < 1e-10
    # with the constant, the first columns are the linear part: [A | b]
    aff = lg.VectorFieldAction(3, degree=1, channels=2)
    rows_vec = lg.polarization_matrix(net, x, vec)
    rows_aff = lg.polarization_matrix(net, x, aff).reshape(-1, 3, 4)
    assert rel_err(rows_aff[:, :, :3].reshape(-1, 9), rows_vec) < 1e-12


def test_output_actions_energy_and_state() -> None:
    """F(x) = (H(x), x): H invariant, the state equivariant to every field; only the flow."""
    act = lg.VectorFieldAction(2, degree=3, names=QP)
    out = lg.DirectSum(lg.TrivialAction(1), act)

    def model(z: torch.Tensor) -> torch.Tensor:
        return torch.cat([anharmonic(z), z], dim=1)

    report = lg.liegg(model, samples(), act, output_action=out)
    assert report.symmetry_dim == 1 and report.relative_variance < 1e-13
    assert report.descriptions[0] == "p ∂q - q^3 ∂p"


def test_reference_names_embed_into_the_library() -> None:
    """H = (q^2 + p^2)/2 over aff(2): the rotation field, named by the reference "so(2)".

    (With quadratic terms f (p, -q) is a symmetry too for f = q, p: invariance allows any
    scalar multiple of a symmetric field, so the null space would be 3-dimensional.)
    """
    act = lg.VectorFieldAction(2, degree=1, names=QP)
    report = lg.liegg(lambda z: (z**2).sum(1, keepdim=True) / 2, samples(), act, reference="so(2)")
    assert report.reference.shape == (1, 2, 3)
    assert report.symmetry_dim == 1 and report.subspace_distance() < 1e-7
    assert report.descriptions[0] in ("p ∂q - q ∂p", "-p ∂q + q ∂p")
    named = lg.VectorFieldAction(2, library={"sin": lambda z: torch.sin(z[:, 0])})
    with pytest.raises(LieGGError, match="linear monomials"):
        lg.liegg(lambda z: z.sum(1, keepdim=True), samples(8), named, reference="so(2)")


def test_transform_integrates_the_flow() -> None:
    act = lg.VectorFieldAction(2, degree=3, names=QP)
    x = samples(50)
    flow = field_tensor(act, {(0, "p"): 1.0, (1, "q^3"): -1.0})[0]
    moved = act.transform(x, flow, torch.tensor([0.0, 0.5, 1.0]))
    assert moved.shape == (3, 50, 2) and torch.equal(moved[0], x)
    # the flow keeps the energy (RK4, 64 steps per unit time)
    assert rel_err(anharmonic(moved[2]), anharmonic(x)) < 1e-8
    # its t-derivative at 0 is the tangent
    eps = 1e-4
    deriv = (act.transform(x, flow, eps) - act.transform(x, flow, -eps)) / (2 * eps)
    assert rel_err(deriv, act.tangent(x, flow[None])[0]) < 1e-7
    # the linear library flows by the matrix exponential
    lin = lg.VectorFieldAction(2, degree=1, constant=False)
    h = torch.tensor([[0.3, -1.0], [0.7, 0.1]], dtype=torch.float64)
    expected = lg.VectorAction(2).transform(x, h, 1.5)
    assert rel_err(lin.transform(x, h, 1.5), expected) < 1e-9
    assert act.transform(x.float(), flow, 0.5).dtype == torch.float32


def test_trained_mlp_finds_the_hamiltonian_flow() -> None:
    """An MLP fitted to H's values (not its gradient) shows (p, -q^3) as its top symmetry.

    Measured (seed 0, 256 samples, 250 L-BFGS iterations): sin(angle) to (p, -q^3) 0.050,
    relative variance 6.9e-6, gap 1.6 decades; the untrained network: above 0.3.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: threads only add overhead on a busy machine
    try:
        _fit_and_check()
    finally:
        torch.set_num_threads(threads)


def _fit_and_check() -> None:
    torch.manual_seed(0)
    x = samples(256)
    y = anharmonic(x)
    net = nn.Sequential(nn.Linear(2, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(), nn.Linear(24, 1))
    net = net.double()
    opt = torch.optim.LBFGS(
        net.parameters(), max_iter=250, history_size=50, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = ((net(x) - y) ** 2).mean()
        loss.backward()
        return loss

    opt.step(closure)
    assert float(closure().detach()) < 1e-4
    act = lg.VectorFieldAction(2, degree=3, names=QP)
    flow = field_tensor(act, {(0, "p"): 1.0, (1, "q^3"): -1.0})
    report = lg.liegg(net, x, act, reference=flow)
    assert report.symmetry_dim == 1 and report.gap > 1.0
    assert float(report.symmetry_bias[0]) < 0.1  # = sin(angle) to the flow
    untrained = nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 1)).double()
    assert float(lg.liegg(untrained, x, act, reference=flow).symmetry_bias[0]) > 0.3


# -- errors -----------------------------------------------------------------------------------
def test_bad_input_gets_clear_errors() -> None:
    with pytest.raises(LieGGError, match="degree to be a positive integer"):
        lg.VectorFieldAction(2, degree=0)
    with pytest.raises(LieGGError, match="names to be 2 non-empty strings"):
        lg.VectorFieldAction(2, names=("q",))
    with pytest.raises(LieGGError, match="library to be a non-empty dict"):
        lg.VectorFieldAction(2, library=[lambda z: z[:, 0]])
    act = lg.VectorFieldAction(2)
    with pytest.raises(LieGGError, match=r"Expected inputs of shape \(N, 2\).*but got shape"):
        act.tangent(torch.zeros(4, 3), torch.zeros(1, 2, 3))
    broken = lg.VectorFieldAction(2, library={"bad": lambda z: z[:, 5]})
    with pytest.raises(LieGGError, match="calling it failed: IndexError") as err:
        broken.features(torch.zeros(4, 2))
    assert isinstance(err.value.__cause__, IndexError)
    wrong = lg.VectorFieldAction(2, library={"both": lambda z: z})
    with pytest.raises(LieGGError, match=r"shape \(4,\).*but got"):
        wrong.features(torch.zeros(4, 2))


# -- projective images ------------------------------------------------------------------------
def test_affine_part_of_the_projective_action_is_the_affine_action() -> None:
    torch.manual_seed(2)
    x = torch.rand(4, 2, 9, 11, dtype=torch.float64)
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.LazyLinear(4)).double()
    net(x)
    proj = lg.ImageAction(projective=True)
    aff = lg.ImageAction(affine=True)
    assert proj.dim == 8 and proj.generator_shape == (3, 3)
    assert repr(proj) == "ImageAction(projective=True)"
    rows_p = lg.polarization_matrix(net, x, proj)
    rows_a = lg.polarization_matrix(net, x, aff)
    assert rel_err(rows_p[:, :6], rows_a) < 1e-10
    # forward mode (tangents) agrees with reverse mode (contract)
    rows_f = lg.polarization_matrix(net, x, proj, ad_mode="forward")
    assert rel_err(rows_f, rows_p) < 1e-10
    # rotation2d embeds into 3 x 3; "projective" names the whole algebra
    rot = lg.liegg(net, x, proj, reference="rotation2d")
    assert rot.reference.shape == (1, 3, 3)
    ref_aff = lg.liegg(net, x, aff, reference="rotation2d")
    assert abs(float(rot.reference_variance()[0] - ref_aff.reference_variance()[0])) < 1e-10
    assert lg.liegg(net, x, proj, reference="projective").subspace_distance() < 1e-7


def test_perspective_field_on_a_ramp() -> None:
    """I(x, y) = x: the tangent of c = e_x is -dI/dx * (-x^2) = x^2 inside the frame."""
    proj = lg.ImageAction(projective=True)
    xs = torch.linspace(-1, 1, 9, dtype=torch.float64)
    ramp = xs.expand(7, 9)[None, None]  # (1, 1, H=7, W=9)
    units = lg.algebras.projective()
    t = proj.tangent(ramp, units[6:])  # c = e_x, c = e_y
    inner = (slice(None), slice(1, -1))
    assert torch.allclose(t[0, 0, 0][inner][:, 1:-1], (xs**2).expand(7, 9)[inner][:, 1:-1])
    ys = torch.linspace(-1, 1, 7, dtype=torch.float64)[:, None]
    assert torch.allclose(t[1, 0, 0][1:-1, 1:-1], (xs * ys)[1:-1, 1:-1])


@pytest.mark.parametrize("padding", ["border", "zeros", "reflection"])
def test_projective_tangent_is_the_derivative_of_the_homography_warp(padding: str) -> None:
    torch.manual_seed(3)
    x = torch.rand(2, 3, 10, 13, dtype=torch.float64)  # content up to the frame
    proj = lg.ImageAction(projective=True, padding=padding)
    h = torch.randn(3, 3, dtype=torch.float64)
    h[2, 2] = 0.0
    eps = 1e-6
    deriv = (proj.transform(x, h, eps) - proj.transform(x, h, -eps)) / (2 * eps)
    assert rel_err(deriv, proj.tangent(x, h[None])[0]) < 3e-5
    # the affine part warps as the affine action does
    aff = lg.ImageAction(affine=True, padding=padding)
    a = h.clone()
    a[2] = 0.0
    assert rel_err(proj.transform(x, a, 0.3), aff.transform(x, a[:2], 0.3)) < 1e-10
