import gzip
import math

import numpy as np
import pytest
import torch

import lightning_liegg as lg
from lightning_liegg import datasets as ds


def _random_orthogonal(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))  # Haar-distributed, det may be -1 (O(n))


def _lorentz_transform(rapidity: float, direction: torch.Tensor, seed: int) -> torch.Tensor:
    """A boost along `direction` composed with a random rotation, as a 4x4 matrix."""
    n = direction / direction.norm()
    gamma, beta_gamma = math.cosh(rapidity), math.sinh(rapidity)
    boost = torch.eye(4, dtype=torch.float64)
    boost[0, 0] = gamma
    boost[0, 1:] = boost[1:, 0] = beta_gamma * n
    boost[1:, 1:] += (gamma - 1) * torch.outer(n, n)
    rotation = torch.eye(4, dtype=torch.float64)
    q = _random_orthogonal(3, seed)
    rotation[1:, 1:] = q * torch.det(q)  # proper rotation
    return boost @ rotation


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


# ----------------------------------------------------------------------------- O(5)
def test_o5_shapes_dtypes_and_determinism():
    x, y = ds.o5_regression_data(64, seed=3)
    assert x.shape == (64, 10) and y.shape == (64, 1)
    assert x.dtype == y.dtype == torch.float32
    x2, y2 = ds.o5_regression_data(64, seed=3)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, ds.o5_regression_data(64, seed=4)[0])
    assert torch.allclose(y, ds.o5_target(x.double()).float(), atol=1e-5)


def test_o5_target_known_value():
    x = torch.tensor([[3.0, 4.0, 0, 0, 0, 2.0, 0, 0, 0, 0]], dtype=torch.float64)
    expected = math.sin(5.0) - 0.5 * 2.0**3 + 6.0 / (5.0 * 2.0)
    assert ds.o5_target(x).item() == pytest.approx(expected, abs=1e-12)


def test_o5_target_invariant_under_orthogonal_matrix():
    x, _ = ds.o5_regression_data(256, seed=0)
    x = x.double()
    q = _random_orthogonal(5, seed=1)
    assert torch.det(q).abs().item() == pytest.approx(1.0)
    xq = (x.reshape(-1, 2, 5) @ q.T).reshape(-1, 10)  # the same q on both vectors
    err = _rel_err(ds.o5_target(xq), ds.o5_target(x))
    assert err < 1e-5, f"relative error {err:.2e}"
    # ... and not invariant when the two vectors get different rotations
    xr = torch.cat([x[:, :5] @ q.T, x[:, 5:] @ _random_orthogonal(5, seed=2).T], dim=1)
    assert _rel_err(ds.o5_target(xr), ds.o5_target(x)) > 1e-2


# ----------------------------------------------------------------------------- Lorentz
def test_lorentz_shapes_mass_shell_and_determinism():
    x, y = ds.lorentz_data(128, seed=0, mass_range=(0.5, 1.5))
    assert x.shape == (128, 8) and y.shape == (128, 1) and x.dtype == torch.float32
    p = x.double().reshape(-1, 2, 4)
    masses_sq = ds.minkowski_dot(p, p)
    assert masses_sq.min() > 0.25 - 1e-4 and masses_sq.max() < 2.25 + 1e-4
    assert (p[..., 0] > 0).all()
    assert torch.equal(x, ds.lorentz_data(128, seed=0)[0])
    assert (y >= 1.0 - 1e-5).all()  # invariant mass >= m1 + m2 >= 1


def test_invariant_mass_invariant_under_boost_and_rotation():
    x, _ = ds.lorentz_data(256, seed=1)
    x = x.double()
    lam = _lorentz_transform(0.7, torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), seed=3)
    eta = torch.diag(torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=torch.float64))
    assert torch.allclose(lam.T @ eta @ lam, eta, atol=1e-12)
    xl = (x.reshape(-1, 2, 4) @ lam.T).reshape(-1, 8)
    assert _rel_err(xl, x) > 0.1  # the transformation does move the data
    err = _rel_err(ds.invariant_mass(xl), ds.invariant_mass(x))
    assert err < 1e-10, f"relative error {err:.2e}"


@pytest.mark.parametrize(
    "fn, shape", [(ds.o5_target, (3, 9)), (ds.invariant_mass, (3, 4))], ids=["o5", "lorentz"]
)
def test_targets_reject_bad_shapes(fn, shape):
    with pytest.raises(ValueError, match="Expected x of shape"):
        fn(torch.zeros(shape))


# ----------------------------------------------------------------------------- image ops
def test_rotate_quarter_turn_is_rot90_and_four_are_identity():
    images = torch.rand(3, 2, 9, 9, generator=torch.Generator().manual_seed(0))
    quarter = ds.rotate_images(images, math.pi / 2)
    # y points down, so a positive angle is clockwise on screen: rot90 with k=-1
    assert torch.allclose(quarter, torch.rot90(images, -1, dims=(-2, -1)), atol=1e-5)
    out = images
    for _ in range(4):
        out = ds.rotate_images(out, math.pi / 2)
    assert torch.allclose(out, images, atol=1e-5)


def test_rotate_matches_image_action_transform():
    images = ds.rotated_digits("test", rotate=False, blur_sigma=1.0, size=20, limit=4)[0]
    generator = torch.tensor([[0.0, -1.0], [1.0, 0.0]])
    expected = lg.ImageAction().transform(images, generator, 0.6)
    assert torch.allclose(ds.rotate_images(images, 0.6), expected, atol=1e-5)


def test_gaussian_blur_known_answer():
    delta = torch.zeros(1, 1, 15, 15, dtype=torch.float64)
    delta[0, 0, 7, 7] = 1.0
    assert torch.equal(ds.gaussian_blur(delta, 0.0), delta)
    out = ds.gaussian_blur(delta, 1.0)
    r = torch.arange(-3, 4, dtype=torch.float64)
    k = torch.exp(-0.5 * r**2)
    k = k / k.sum()
    assert torch.allclose(out[0, 0, 4:11, 4:11], torch.outer(k, k), atol=1e-12)
    assert out.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Expected sigma"):
        ds.gaussian_blur(delta, -1.0)


# ----------------------------------------------------------------------------- rotated digits
def test_rotated_digits_shapes_range_and_determinism():
    images, labels = ds.rotated_digits("train", seed=0, size=28, limit=200)
    assert images.shape == (200, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (200,) and labels.dtype == torch.int64
    assert images.min() >= 0 and images.max() <= 1
    assert set(labels.tolist()) <= set(range(10))
    again, labels_again = ds.rotated_digits("train", seed=0, size=28, limit=200)
    assert torch.equal(images, again) and torch.equal(labels, labels_again)
    other_seed, labels_other = ds.rotated_digits("train", seed=1, size=28, limit=200)
    assert torch.equal(labels, labels_other) and not torch.equal(images, other_seed)
    # the zero border: a rotated (unblurred) digit never touches the edge
    sharp, _ = ds.rotated_digits("train", seed=0, size=28, blur_sigma=0.0)
    edges = torch.cat([sharp[..., 0, :], sharp[..., -1, :], sharp[..., 0], sharp[..., -1]], -1)
    assert edges.abs().max() < 1e-6


def test_rotated_digits_rotation_changes_images_but_keeps_mass():
    upright, _ = ds.rotated_digits("test", rotate=False, blur_sigma=0.0, limit=50)
    rotated, _ = ds.rotated_digits("test", rotate=True, blur_sigma=0.0, limit=50)
    assert _rel_err(rotated, upright) > 0.3
    # the canvas is large enough that rotation loses (almost) no ink
    mass_up, mass_rot = upright.sum((1, 2, 3)), rotated.sum((1, 2, 3))
    assert torch.allclose(mass_rot, mass_up, rtol=0.05)


def test_digits_splits_are_disjoint_and_fixed():
    train = ds._digits_split("train")
    test = ds._digits_split("test")
    assert len(train) + len(test) == 1797
    assert len(set(train.tolist()) & set(test.tolist())) == 0
    assert torch.equal(test, ds._digits_split("test"))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"split": "val"}, "split"),
        ({"source": "cifar"}, "source"),
        ({"size": 4}, "size"),
        ({"blur_sigma": -0.5}, "blur_sigma"),
        ({"source": "mnist"}, "mnist_root"),
        ({"limit": 0}, "limit"),
        ({"copies": 0}, "copies"),
    ],
    ids=["split", "source", "size", "blur", "mnist-root", "limit", "copies"],
)
def test_rotated_digits_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=f"Expected {match}"):
        ds.rotated_digits(**kwargs)


def test_rotated_digits_copies_are_fresh_rotations_and_copy_zero_is_unchanged():
    single, labels = ds.rotated_digits("train", seed=3, limit=20)
    stacked, stacked_labels = ds.rotated_digits("train", seed=3, limit=20, copies=3)
    assert stacked.shape == (60, 1, 28, 28) and torch.equal(stacked_labels, labels.repeat(3))
    assert torch.equal(stacked[:20], single)
    assert _rel_err(stacked[20:40], single) > 0.1 and _rel_err(stacked[40:], stacked[20:40]) > 0.1
    upright, _ = ds.rotated_digits("train", rotate=False, limit=20, copies=2)
    assert torch.equal(upright[:20], upright[20:])


def test_rotated_digits_datamodule_copies_augment_train_only():
    kwargs = dict(size=16, val_fraction=0.25, batch_size=8, seed=1, limit=40)
    plain = ds.RotatedDigitsDataModule(**kwargs)
    augmented = ds.RotatedDigitsDataModule(copies=3, **kwargs)
    plain.setup("fit")
    augmented.setup("fit")
    assert len(augmented.train_set) == 90 and len(augmented.val_set) == 10
    assert len(augmented.test_set) == 40
    assert torch.equal(augmented.val_set.tensors[0], plain.val_set.tensors[0])
    assert torch.equal(augmented.train_set.tensors[0][:30], plain.train_set.tensors[0])
    assert torch.equal(augmented.train_set.tensors[1], plain.train_set.tensors[1].repeat(3))
    # every copy holds the same (training) images: upright copies are exact duplicates
    upright = ds.RotatedDigitsDataModule(copies=3, rotate=False, **kwargs)
    upright.setup("fit")
    images = upright.train_set.tensors[0]
    assert torch.equal(images[30:60], images[:30]) and torch.equal(images[60:], images[:30])


# ----------------------------------------------------------------------------- MNIST idx
def _idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype("u1"): 0x08, np.dtype(">i4"): 0x0C, np.dtype(">f4"): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim])
    return header + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()


def _write_fake_mnist(root, n_train=12, n_test=5, compress=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        image_stem, label_stem = ds._MNIST_FILES[split]
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[split] = (images, labels)
        for stem, array in ((image_stem, images), (label_stem, labels)):
            data = _idx_bytes(array)
            if compress:
                (root / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (root / stem).write_bytes(data)
    return arrays


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_load_mnist_from_idx_files(tmp_path, compress):
    arrays = _write_fake_mnist(tmp_path, compress=compress)
    for split in ("train", "test"):
        images, labels = ds.load_mnist(tmp_path, split)
        raw_images, raw_labels = arrays[split]
        assert images.shape == (len(raw_images), 1, 28, 28) and images.dtype == torch.float32
        assert labels.dtype == torch.int64
        assert torch.allclose(images[:, 0], torch.from_numpy(raw_images).float() / 255)
        assert torch.equal(labels, torch.from_numpy(raw_labels).long())


def test_read_idx_big_endian_types_and_bad_length(tmp_path):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(">i4")
    (tmp_path / "a.idx").write_bytes(_idx_bytes(array))
    out = ds.read_idx(tmp_path / "a.idx")
    assert out.dtype == torch.int32 and torch.equal(out, torch.from_numpy(array.astype("<i4")))
    floats = np.linspace(-1, 1, 6, dtype=">f4")
    (tmp_path / "f.idx").write_bytes(_idx_bytes(floats))
    assert torch.equal(ds.read_idx(tmp_path / "f.idx"), torch.from_numpy(floats.astype("<f4")))
    (tmp_path / "short.idx").write_bytes(_idx_bytes(array)[:-4])
    with pytest.raises(ValueError, match="Expected 96 data bytes"):
        ds.read_idx(tmp_path / "short.idx")
    (tmp_path / "junk.idx").write_bytes(b"not an idx file")
    with pytest.raises(ValueError, match="Expected an idx header"):
        ds.read_idx(tmp_path / "junk.idx")


def test_load_mnist_missing_files_names_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte") as info:
        ds.load_mnist(tmp_path, "train")
    assert str(tmp_path) in str(info.value) and "t10k-labels-idx1-ubyte" in str(info.value)


def test_rotated_digits_from_mnist_source(tmp_path):
    _write_fake_mnist(tmp_path, compress=True)
    images, labels = ds.rotated_digits("train", source="mnist", mnist_root=tmp_path, size=16)
    assert images.shape == (12, 1, 16, 16) and labels.shape == (12,)


# ----------------------------------------------------------------------------- DataModules
def test_o5_datamodule_batches_and_splits():
    dm = ds.O5RegressionDataModule(n_train=100, n_val=20, n_test=30, batch_size=32, seed=5)
    dm.setup("fit")
    assert len(dm.train_set) == 100 and len(dm.val_set) == 20 and len(dm.test_set) == 30
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 10) and y.shape == (32, 1)
    x_all, _ = ds.o5_regression_data(150, seed=5)
    assert torch.equal(dm.test_set.tensors[0], x_all[120:])
    assert dm.hparams.n_train == 100


def test_lorentz_datamodule_batches():
    dm = ds.LorentzDataModule(n_train=50, n_val=10, n_test=10, batch_size=16)
    dm.setup()
    x, y = next(iter(dm.val_dataloader()))
    assert x.shape == (10, 8) and y.shape == (10, 1)


@pytest.mark.parametrize("flatten", [False, True], ids=["images", "flat"])
def test_rotated_digits_datamodule(flatten):
    dm = ds.RotatedDigitsDataModule(
        size=16, val_fraction=0.25, batch_size=8, seed=1, flatten=flatten, limit=40
    )
    dm.setup("fit")
    assert len(dm.train_set) == 30 and len(dm.val_set) == 10 and len(dm.test_set) == 40
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == ((8, 256) if flatten else (8, 1, 16, 16)) and y.dtype == torch.int64
    other = ds.RotatedDigitsDataModule(
        size=16, val_fraction=0.25, batch_size=8, seed=1, flatten=flatten, limit=40
    )
    other.setup("fit")
    assert torch.equal(dm.val_set.tensors[0], other.val_set.tensors[0])
    assert dm.input_dim == 256 and dm.num_classes == 10


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (ds.O5RegressionDataModule, {"n_train": 0}, "n_train"),
        (ds.O5RegressionDataModule, {"batch_size": 0}, "batch_size"),
        (ds.LorentzDataModule, {"mass_range": (2.0, 1.0)}, "mass_range"),
        (ds.RotatedDigitsDataModule, {"val_fraction": 1.0}, "val_fraction"),
        (ds.RotatedDigitsDataModule, {"source": "mnist"}, "mnist_root"),
        (ds.RotatedDigitsDataModule, {"blur_sigma": float("nan")}, "blur_sigma"),
    ],
    ids=["o5-n_train", "o5-batch", "lorentz-mass", "digits-val", "digits-mnist", "digits-blur"],
)
def test_datamodules_reject_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=f"Expected {match}"):
        cls(**kwargs)


def test_dataloader_before_setup_raises():
    with pytest.raises(RuntimeError, match="setup"):
        ds.O5RegressionDataModule(n_train=10, n_val=2, n_test=2).train_dataloader()
