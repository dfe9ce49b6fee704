"""Discrete transforms: known answers (D4-averaged CNN, DeepSets, random CNN), errors, built-ins."""

import pickle

import pytest
import torch
from torch import nn

import lightning_liegg as lg
from lightning_liegg import transforms as T


class GroupAveraged(nn.Module):
    """A small CNN averaged over D4 (its eight images): exactly D4-invariant."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.net = nn.Sequential(
            nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 7 * 7, 3)
        ).double()
        self.group = [lambda x: x, *T.d4().values()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.net(g(x)) for g in self.group]).mean(dim=0)


class DeepSets(nn.Module):
    """rho(sum_i phi(x_i)) over the elements of (N, n, d): permutation invariant."""

    def __init__(self, d: int = 3) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.phi = nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 8)).double()
        self.rho = nn.Linear(8, 2).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rho(self.phi(x).sum(dim=1))


def test_d4_averaged_cnn_is_exact_but_not_continuously_rotation_invariant():
    model = GroupAveraged()
    x = torch.rand(12, 1, 9, 9, dtype=torch.float64)
    errors = lg.transform_errors(model, x, T.d4())
    assert list(errors) == [
        "rot90",
        "rot180",
        "rot270",
        "hflip",
        "vflip",
        "transpose",
        "antitranspose",
    ]
    for name, err in errors.items():
        assert err.shape == (12,) and float(err.max()) < 1e-13, name
    rep = lg.liegg(model, x, lg.ImageAction(), reference="rotation2d")
    assert float(rep.symmetry_bias[0]) > 0.05  # not the continuous rotation
    assert float(rep.reference_variance(relative=True)[0]) > 1e-3


def test_deepsets_permutations_and_a_plain_mlp():
    x = torch.randn(10, 5, 3, dtype=torch.float64)
    perms = {"random": T.permute(), "swap": T.permute([1, 0, 2, 3, 4]), "cycle": T.shift(1, dims=1)}
    for name, err in lg.transform_errors(DeepSets(), x, perms).items():
        assert float(err.max()) < 1e-13, name
    torch.manual_seed(5)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(15, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    err = lg.transform_errors(mlp, x, perms)["random"]
    assert 0.05 < float(err.mean()) < 10


def test_random_cnn_errors_are_of_order_one():
    torch.manual_seed(6)
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    x = torch.rand(16, 1, 8, 8)
    errors = lg.transform_errors(cnn, x, {"hflip": T.hflip, "rot90": T.rot90(1)})
    for name, err in errors.items():
        assert 0.1 < float(err.mean()) < 10, (name, float(err.mean()))


def test_image_to_image_models_are_checked_for_equivariance_by_default():
    torch.manual_seed(7)
    conv = nn.Conv2d(2, 2, 3, padding=1, padding_mode="circular").double()
    x = torch.randn(4, 2, 6, 6, dtype=torch.float64)
    errors = lg.transform_errors(conv, x, {"shift": T.shift((2, -1), dims=(-2, -1))})
    assert float(errors["shift"].max()) < 1e-13  # circular conv: shift equivariant
    # the same shift as invariance fails; the default and an explicit output map agree
    inv = lg.transform_errors(conv, x, {"shift": T.shift(1)}, output_transforms={"shift": None})
    same = lg.transform_errors(
        conv, x, {"shift": T.shift(1)}, output_transforms={"shift": T.shift(1)}
    )
    assert float(inv["shift"].min()) > 0.1 and float(same["shift"].max()) < 1e-13
    # output_transform picks the tensor; time reversal of an odd function of a signal
    sig = torch.randn(3, 1, 7, dtype=torch.float64)
    out = lg.transform_errors(
        lambda s: {"y": s**3}, sig, {"rev": T.time_reversal}, output_transform=lambda o: o["y"]
    )
    assert float(out["rev"].max()) < 1e-15


@pytest.mark.parametrize(
    "transforms, match",
    [
        ([T.hflip], "Expected transforms to be a dict"),
        ({}, "at least one transform"),
        ({"a": 3}, r"Expected transforms\['a'\] to be a callable"),
        ({"drop": lambda x: x[1:]}, "with 4 samples first, but got shape"),
        ({"boom": lambda x: x.reshape(7)}, "but it raised RuntimeError"),
    ],
    ids=["not-dict", "empty", "not-callable", "wrong-batch", "raises"],
)
def test_bad_transforms(transforms, match):
    x = torch.randn(4, 1, 5, 5)
    with pytest.raises(lg.LieGGError, match=match):
        lg.transform_errors(lambda t: t.sum((1, 2, 3))[:, None], x, transforms)


def test_bad_outputs_and_options():
    x = torch.randn(4, 1, 5, 5)
    with pytest.raises(lg.LieGGError, match="return a tensor"):
        lg.transform_errors(lambda t: (t, t), x, {"h": T.hflip})
    with pytest.raises(lg.LieGGError, match="among the transforms"):
        lg.transform_errors(lambda t: t, x, {"h": T.hflip}, output_transforms={"v": T.vflip})
    wide = torch.randn(4, 1, 5, 6)
    with pytest.raises(lg.LieGGError, match=r"shape of the moved outputs \(4, 1, 5, 6\)"):
        lg.transform_errors(lambda t: t, wide, {"h": T.transpose}, output_transforms={"h": T.hflip})
    with pytest.raises(lg.LieGGError, match="Expected transforms"):
        lg.LieGGCallback(lg.ImageAction(), transforms=[T.hflip])


def test_no_side_effects():
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Dropout(0.5), nn.Linear(4, 1))
    net.train()
    x = torch.randn(6, 4)
    before, state = x.clone(), {k: v.clone() for k, v in net.state_dict().items()}
    rng = torch.get_rng_state()
    lg.transform_errors(net, x, {"rev": T.time_reversal, "inplace": lambda t: t.mul_(2)})
    assert torch.equal(x, before) and net.training
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert torch.equal(torch.get_rng_state(), rng)


def test_builtins():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    assert torch.equal(T.hflip(x), x.flip(-1)) and torch.equal(T.vflip(x), x.flip(-2))
    assert T.rot90(1)(x).shape == (1, 1, 4, 3)
    assert torch.equal(T.rot90(4)(x), x) and torch.equal(T.transpose(T.transpose(x)), x)
    assert torch.equal(T.compose(T.rot90(1), T.rot90(1))(x), T.rot90(2)(x))
    s = torch.arange(5.0).reshape(1, 5)
    assert T.shift(2, circular=False)(s).tolist() == [[0.0, 0.0, 0.0, 1.0, 2.0]]
    assert T.shift(-1, circular=False, fill=9.0)(s).tolist() == [[1.0, 2.0, 3.0, 4.0, 9.0]]
    assert T.shift(1)(s).tolist() == [[4.0, 0.0, 1.0, 2.0, 3.0]]
    c = torch.arange(3.0).reshape(1, 3, 1, 1)
    assert T.permute([2, 0, 1])(c).flatten().tolist() == [2.0, 0.0, 1.0]
    assert torch.equal(T.permute(seed=1)(c), T.permute(seed=1)(c))
    for t in [T.rot90(3), T.shift(1), T.permute([1, 0]), T.compose(T.hflip, T.vflip), T.hflip]:
        assert repr(pickle.loads(pickle.dumps(t))) == repr(t)
    for bad, match in [
        (lambda: T.rot90(1.5), "quarter turns"),
        (lambda: T.shift((1, 2), dims=-1), "equally long"),
        (lambda: T.shift(1, dims=0), "batch dimension"),
        (lambda: T.permute([0, 0]), "permutation of range"),
        (lambda: T.permute([1, 0])(c), "Expected 2 entries along dimension 1"),
        (lambda: T.vflip(torch.zeros(3, 4)), r"Expected images .*, but got shape \(3, 4\)"),
    ]:
        with pytest.raises(lg.LieGGError, match=match):
            bad()
