"""Property-based tests (hypothesis): fuzzed actions, shapes, dtypes, paddings and options.

Every example builds a random action (vectors, images, signals, volumes, channels, rank-2
tensors, direct sums; with or without a sub-basis), a random input batch and a random
per-sample MLP, and checks the library against an independent float64 reference:

* the polarization matrix equals the full autograd Jacobian (``torch.autograd.functional.
  jacobian``) contracted with tangents taken as central differences of ``action.transform``
  (and, for an output action, minus the central difference of ``output_action.transform`` of
  the outputs), for every reduction, ad_mode, padding and dtype;
* ``liegg``'s spectrum is the eigenvalues of E^T E / N of that reference, and each reported
  generator has the variance the reference Gram gives it;
* invariances: permuting (or rolling) the samples, or chunking them, changes no spectrum;
  scaling the outputs by c scales the spectrum by c^2 and leaves the relative spectrum; rotating
  every input vector by an orthogonal g (and the model by g^-1) conjugates the generators by g
  and keeps the spectrum.

Sizes are tiny and the examples few (``derandomize=True``: the same examples on every run).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import pytest
import torch

import lightning_liegg as lg

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

F64 = torch.float64
SETTINGS = {"deadline": None, "derandomize": True, "database": None, "print_blob": True}
#: examples per property (kept small: a loaded 2-core machine runs the file in ~30 s)
EXAMPLES = {"reference": 100, "invariance": 40, "rotation": 30}

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: threads only add overhead (and contention on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- the fuzzed cases --------------------------------------------------------------------------
@dataclass
class Case:
    action: lg.Action
    x: torch.Tensor  # float64; cast to ``dtype`` for the run under test
    output_action: lg.Action | None
    out_shape: tuple[int, ...]  # per-sample output shape
    dtype: torch.dtype
    reduction: str
    ad_mode: str
    seed: int

    def __repr__(self) -> str:  # what hypothesis prints for a falsifying example
        return (
            f"Case({self.action!r}, x {tuple(self.x.shape)}, output_action={self.output_action!r}"
            f", out {self.out_shape}, {self.dtype}, {self.reduction}, {self.ad_mode}, "
            f"seed {self.seed})"
        )


def _basis(draw, shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor | None:
    """None (the full space) or a random sub-basis of k generators."""
    if not draw(st.booleans()):
        return None
    k = draw(st.integers(1, shape[0] * shape[1]))
    return torch.randn(k, *shape, dtype=F64, generator=gen)


@st.composite
def cases(draw, invariance_only: bool = False, dtypes=(F64, torch.float32)) -> Case:
    seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(seed)
    n = draw(st.integers(1, 4))
    kind = draw(
        st.sampled_from(["vector", "image", "signal", "volume", "channel", "tensor", "sum"])
    )
    outs: list[tuple[lg.Action | None, tuple[int, ...]]]
    if kind == "vector":
        dim, ch = draw(st.integers(1, 4)), draw(st.integers(1, 3))
        action = lg.VectorAction(dim, channels=ch, basis=_basis(draw, (dim, dim), gen))
        xs = (n, ch * dim) if draw(st.booleans()) else (n, ch, dim)
        outs = [
            (lg.VectorAction(dim), (dim,)),
            (lg.TensorAction(dim), (dim * dim,)),
            (lg.DirectSum(lg.TrivialAction(1), lg.VectorAction(dim)), (1 + dim,)),
            (lg.TrivialAction(2), (2,)),
        ]
    elif kind in ("image", "signal", "volume"):
        cls = {"image": lg.ImageAction, "signal": lg.SignalAction, "volume": lg.VolumeAction}[kind]
        affine = draw(st.booleans())
        padding = draw(st.sampled_from(cls.paddings))
        d = cls.spatial
        shape = (d, d + 1) if affine else (d, d)
        action = cls(affine=affine, basis=_basis(draw, shape, gen), padding=padding)
        top = 4 if kind == "volume" else 7
        sizes = tuple(draw(st.integers(3, top)) for _ in range(d))
        channels = () if draw(st.booleans()) else (draw(st.integers(1, 2)),)
        xs = (n, *channels, *sizes)
        outs = [(cls(affine=affine, padding=padding), xs[1:])]
    elif kind == "channel":
        c = draw(st.integers(1, 3))
        trailing = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
        action = lg.ChannelAction(c, basis=_basis(draw, (c, c), gen))
        xs = (n, c, *trailing)
        outs = [(lg.ChannelAction(c), xs[1:])]
    elif kind == "tensor":
        dim, ch = draw(st.integers(1, 3)), draw(st.integers(1, 2))
        action = lg.TensorAction(dim, channels=ch, basis=_basis(draw, (dim, dim), gen))
        xs = (n, ch * dim * dim) if draw(st.booleans()) else (n, ch, dim, dim)
        outs = [(lg.TensorAction(dim), (dim * dim,)), (lg.VectorAction(dim), (dim,))]
    else:  # a direct sum of a scalar, a vector and a rank-2 tensor as the input
        dim = draw(st.integers(1, 3))
        action = lg.DirectSum(lg.TrivialAction(1), lg.VectorAction(dim), lg.TensorAction(dim))
        xs = (n, 1 + dim + dim * dim)
        outs = [(lg.VectorAction(dim), (dim,))]
    output_action, out_shape = None, (draw(st.integers(1, 3)),)
    if not invariance_only and draw(st.booleans()):
        output_action, out_shape = draw(st.sampled_from(outs))
    reduction = "none" if output_action is not None else draw(st.sampled_from(["none", "sum"]))
    return Case(
        action=action,
        x=torch.randn(*xs, dtype=F64, generator=gen),
        output_action=output_action,
        out_shape=out_shape,
        dtype=draw(st.sampled_from(dtypes)),
        reduction=reduction,
        ad_mode=draw(st.sampled_from(["auto", "forward", "reverse"])),
        seed=seed,
    )


def mlp(case: Case, dtype: torch.dtype):
    """A per-sample two-layer tanh MLP from the flat input to ``(N, *out_shape)``."""
    gen = torch.Generator().manual_seed(case.seed + 1)
    d_in = math.prod(case.x.shape[1:])
    d_out = math.prod(case.out_shape)
    w1 = torch.randn(6, d_in, dtype=F64, generator=gen) / math.sqrt(d_in)
    b1 = torch.randn(6, dtype=F64, generator=gen)
    w2 = torch.randn(d_out, 6, dtype=F64, generator=gen)
    w1, b1, w2 = (t.to(dtype) for t in (w1, b1, w2))

    def model(x: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(x.reshape(x.shape[0], -1) @ w1.T + b1)
        return (hidden @ w2.T).reshape(x.shape[0], *case.out_shape)

    return model


# -- the independent reference ------------------------------------------------------------------
def derivative(action: lg.Action, x: torch.Tensor, h: torch.Tensor, eps: float = 1e-5):
    """d/dt exp(t h) . x at 0 from ``transform`` alone (float64).

    Central differences D(eps) of a warp carry an O(eps) error where a sample sits on a kink of
    the (piecewise linear) interpolation and the two sides move at different speeds (scalings,
    edges), so two steps are combined (Richardson): 2 D(eps) - D(2 eps) leaves O(eps^2).
    """

    def central(e: float) -> torch.Tensor:
        return (action.transform(x, h, e) - action.transform(x, h, -e)) / (2 * e)

    return 2 * central(eps) - central(2 * eps)


def reference_rows(case: Case) -> torch.Tensor:
    """E (N, K, m) from the full Jacobian and finite-difference tangents, in float64."""
    x = case.x.to(case.dtype).to(F64)  # the very inputs of the run under test
    model = mlp(case, F64)
    n = x.shape[0]
    jac = torch.autograd.functional.jacobian(lambda z: model(z).reshape(n, -1), x)
    jac = jac.reshape(n, -1, n, x[0].numel())
    jac = jac[torch.arange(n), :, torch.arange(n)]  # per-sample blocks (N, K, D)
    basis = case.action.basis
    tangents = torch.stack([derivative(case.action, x, h).reshape(n, -1) for h in basis])
    rows = torch.einsum("bkd,mbd->bkm", jac, tangents)
    if case.output_action is not None:
        y = model(x)
        if isinstance(case.output_action, lg.TrivialAction):
            out_t = torch.zeros(len(basis), *y.shape, dtype=F64)
        else:
            out_t = torch.stack([derivative(case.output_action, y, h) for h in basis])
        rows = rows - out_t.reshape(len(basis), n, -1).permute(1, 2, 0)
    if case.reduction == "sum":
        rows = rows.sum(dim=1, keepdim=True)
    return rows


def run(case: Case, **kwargs) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lg.LieGGWarning)  # reduction="sum" of several outputs
        return lg.polarization_matrix(
            mlp(case, case.dtype),
            case.x.to(case.dtype),
            case.action,
            reduction=case.reduction,
            ad_mode=case.ad_mode,
            output_action=case.output_action,
            **kwargs,
        )


def report(case: Case, model=None, x=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lg.LieGGWarning)
        return lg.liegg(
            model if model is not None else mlp(case, case.dtype),
            case.x.to(case.dtype) if x is None else x,
            case.action,
            reduction=case.reduction,
            ad_mode=case.ad_mode,
            output_action=case.output_action,
            **kwargs,
        )


def close(a: torch.Tensor, b: torch.Tensor, rel: float) -> bool:
    return float((a - b).norm()) <= rel * float(b.norm()) + 1e-300


# -- the properties -----------------------------------------------------------------------------
@settings(max_examples=EXAMPLES["reference"], **SETTINGS)
@given(case=cases())
def test_polarization_matrix_equals_the_jacobian_reference(case):
    """Against autograd's full Jacobian times finite-difference tangents; float32 within 1e-4,
    float64 within 1e-7 (the finite differences'); and the spectrum and generators of
    ``liegg`` are those of the reference Gram."""
    ref = reference_rows(case)
    got = run(case)
    m = case.action.dim
    assert got.dtype == F64 and got.shape == (ref.shape[0] * ref.shape[1], m), case
    rel = 1e-4 if case.dtype == torch.float32 else 1e-7
    err = float((got - ref.reshape(-1, m)).norm() / ref.norm())
    assert err < rel, f"{case}: relative error {err:.3g}"
    if case.dtype != F64:
        return
    rep = report(case, reference=torch.randn(2, *case.action.generator_shape, dtype=F64))
    gram = torch.einsum("bki,bkj->ij", ref, ref)
    n = case.x.shape[0]
    want = torch.linalg.eigvalsh(gram) / n
    scale = float(want[-1])
    assert torch.allclose(rep.spectrum, want, rtol=0, atol=1e-6 * scale), case
    # each generator, in the action's basis coordinates, has its own variance under the Gram
    p, q = case.action.generator_shape
    coords = rep.generators.reshape(m, p * q) @ case.action.basis.reshape(m, p * q).T
    quad = torch.einsum("gi,ij,gj->g", coords, gram, coords) / n
    assert torch.allclose(quad, rep.spectrum, rtol=0, atol=1e-6 * scale), case
    # the bias, ||v - P v|| against the (orthonormalised) reference, by least squares
    b = rep.reference.reshape(-1, p * q).T
    v = rep.generators.reshape(m, p * q).T
    fit = torch.linalg.lstsq(b, v).solution
    bias = (v - b @ fit).norm(dim=0)
    assert torch.allclose(rep.symmetry_bias, bias, atol=1e-10), case


@settings(max_examples=EXAMPLES["reference"] // 2, **SETTINGS)
@given(case=cases(dtypes=(F64,)))
def test_ad_modes_agree_to_rounding(case):
    """Forward, reverse and auto give the same matrix (float64, 1e-10)."""
    rows = {}
    for mode in ("forward", "reverse", "auto"):
        case.ad_mode = mode
        rows[mode] = run(case)
    assert close(rows["forward"], rows["reverse"], 1e-10), case
    assert close(rows["auto"], rows["reverse"], 1e-10), case


@settings(max_examples=EXAMPLES["invariance"], **SETTINGS)
@given(case=cases(dtypes=(F64,)), data=st.data())
def test_sample_order_and_chunks_change_nothing(case, data):
    """Permuting (or rolling) the samples, or analysing them in chunks, gives the same
    spectrum: the Gram matrix is a sum over samples."""
    n = case.x.shape[0]
    base = report(case)
    perm = data.draw(st.permutations(list(range(n))))
    shuffled = report(case, x=case.x[perm])
    rolled = report(case, x=torch.roll(case.x, 1, dims=0))
    chunked = report(case, chunk_size=data.draw(st.integers(1, n)))
    top = float(base.spectrum[-1])
    for other in (shuffled, rolled, chunked):
        assert other.num_samples == n
        assert torch.allclose(other.spectrum, base.spectrum, rtol=0, atol=1e-10 * top), case


@settings(max_examples=EXAMPLES["invariance"], **SETTINGS)
@given(case=cases(invariance_only=True, dtypes=(F64,)), c=st.floats(0.01, 100.0))
def test_scaling_the_outputs_scales_the_gram(case, c):
    """Outputs times c: the spectrum times c^2, the relative spectrum unchanged."""
    base = report(case)
    scaled = report(case, output_transform=lambda y: c * y)
    top = float(base.spectrum[-1])
    assert torch.allclose(scaled.spectrum, c**2 * base.spectrum, rtol=0, atol=1e-10 * c**2 * top)
    assert torch.allclose(scaled.relative_spectrum, base.relative_spectrum, rtol=0, atol=1e-10)
    assert math.isclose(scaled.relative_variance, base.relative_variance, abs_tol=1e-10)


@settings(max_examples=EXAMPLES["rotation"], **SETTINGS)
@given(
    n=st.integers(1, 4),
    dim=st.integers(2, 4),
    channels=st.integers(1, 3),
    seed=st.integers(0, 2**31 - 1),
)
def test_rotating_the_inputs_conjugates_the_generators(n, dim, channels, seed):
    """F on g.x against F o g on x (g orthogonal): L_A (F o g)(x) = L_{g A g^T} F(g x), so
    the spectra agree and each generator V of one report has, as g V g^T, the same variance in
    the other (read with ``reference_variance``)."""
    gen = torch.Generator().manual_seed(seed)
    g = torch.linalg.qr(torch.randn(dim, dim, dtype=F64, generator=gen))[0]
    x = torch.randn(max(n, 2), channels, dim, dtype=F64, generator=gen)
    w = torch.randn(3, channels * dim, dtype=F64, generator=gen)
    action = lg.VectorAction(dim, channels=channels)

    def model(z):
        return torch.tanh(z.reshape(z.shape[0], -1) @ w.T) ** 2

    def rotated_model(z):
        return model(z @ g.T)

    first = lg.liegg(rotated_model, x, action)
    conj = g @ first.generators @ g.T  # (m, dim, dim), orthonormal: conjugation is orthogonal
    second = lg.liegg(model, x @ g.T, action, reference=conj)
    top = float(first.spectrum[-1])
    assert torch.allclose(second.spectrum, first.spectrum, rtol=0, atol=1e-10 * top)
    assert torch.allclose(second.reference_variance(), first.spectrum, rtol=0, atol=1e-10 * top)
