"""Real architectures, small: every differentiation mode and reduction gives the same numbers.

The zoo: a ResNet-style CNN (BatchNorm, residual blocks), a ViT-style model on
``nn.TransformerEncoder`` (fused fast path on: eval mode, batch_first), a model calling
``F.scaled_dot_product_attention``, custom ``torch.autograd.Function`` layers (with and without
forward-AD support, and in the old style), a ``torch.compile``-d model, a ``channels_last``
model, and models left in train mode (Dropout, BatchNorm). Also the mode switching that
modules overriding ``train()`` rely on (escnn's ``R2Conv`` builds its filter in
``train(False)``).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lightning_liegg as lg
from lightning_liegg.exceptions import LieGGError, LieGGWarning

from ..conftest import rel_err
from .engine import output_rows

TOL = 1e-4  # float32: forward and reverse mode sum in different orders
MODES = ("auto", "forward", "reverse")


# --------------------------------------------------------------------------------------------
# the zoo
# --------------------------------------------------------------------------------------------
class Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResNet(nn.Module):
    """Stem, residual stages, global pooling, linear head."""

    def __init__(self, widths: tuple[int, ...] = (8, 16), classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks += [Block(c, w, 1 if i == 0 else 2), Block(w, w, 1)]
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(c, classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class ViT(nn.Module):
    """Patch embedding, class token, position embedding, TransformerEncoder, LayerNorm head."""

    def __init__(self, side: int = 16, patch: int = 4, dim: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, patch)
        n = (side // patch) ** 2
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.1)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.1)
        layer = nn.TransformerEncoderLayer(
            dim, 2, 2 * dim, dropout=0.1, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x: Tensor) -> Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos
        return self.head(self.norm(self.encoder(tokens)[:, 0]))


class SDPAModel(nn.Module):
    """Pixels as tokens, one attention layer through F.scaled_dot_product_attention."""

    def __init__(self, dim: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(3, 3 * dim)
        self.out = nn.Linear(dim, 6)

    def forward(self, x: Tensor) -> Tensor:
        t = x.flatten(2).transpose(1, 2)  # (N, L, 3)
        n, length, _ = t.shape
        q, k, v = self.qkv(t).reshape(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, d)
        return self.out(a.transpose(1, 2).reshape(n, length, -1).mean(dim=1))


class ScaledReLU(torch.autograd.Function):
    """1.5 relu(x), written as a custom Function in the torch.func style (no jvp)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor) -> Tensor:
        return x.clamp(min=0) * 1.5

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        return grad * (x > 0) * 1.5


class ScaledReLUWithJvp(ScaledReLU):
    """The same, with a forward-AD rule."""

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.save_for_backward(inputs[0])
        ctx.positive = inputs[0] > 0

    @staticmethod
    def jvp(ctx, tangent: Tensor) -> Tensor:  # noqa: ANN001
        return tangent * ctx.positive * 1.5


class OldStyleScaledReLU(torch.autograd.Function):
    """The same in the old style (ctx in forward): torch.func cannot use it at all."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(x)
        return x.clamp(min=0) * 1.5

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: ANN001
        (x,) = ctx.saved_tensors
        return grad * (x > 0) * 1.5


class CustomFunctionCNN(nn.Module):
    def __init__(self, fn: type[torch.autograd.Function]) -> None:
        super().__init__()
        self.fn = fn
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.head = nn.Linear(6 * 8 * 8, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.fn.apply(self.conv(x)).flatten(1))


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.GELU(),
        nn.Dropout(0.5),
        nn.Conv2d(6, 6, 3, padding=1),
        nn.Flatten(),
        nn.Linear(6 * 8 * 8, 10),
    )


def images(n: int = 6, side: int = 8) -> Tensor:
    """Smooth random RGB images (N, 3, side, side), so image gradients are well resolved."""
    g = torch.Generator().manual_seed(3)
    coarse = torch.randn(n, 3, 4, 4, generator=g)
    return F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=True)


def grams(model: nn.Module, x: Tensor) -> dict[tuple[str, str], Tensor]:
    """Gram matrices of liegg for every (mode, reduction), warnings recorded, not raised."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LieGGWarning)
        for reduction in ("none", "sum"):
            for mode in MODES:
                out[(mode, reduction)] = lg.liegg(
                    model, x, lg.ImageAction(), reduction, ad_mode=mode
                ).gram
    return out


def assert_modes_agree(g: dict[tuple[str, str], Tensor]) -> None:
    for reduction in ("none", "sum"):
        ref = g[("reverse", reduction)]
        assert float(ref.norm()) > 0, f"degenerate gram for {reduction}"
        for mode in ("auto", "forward"):
            err = rel_err(g[(mode, reduction)], ref)
            assert err < TOL, f"{mode}/{reduction} vs reverse: relative error {err:.2e}"


def state_of(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(before: dict[str, Tensor], model: nn.Module) -> None:
    after = model.state_dict()
    assert before.keys() == after.keys()
    for k, v in before.items():
        assert torch.equal(v, after[k]), f"{k} changed"


# --------------------------------------------------------------------------------------------
# every mode, every reduction, same numbers
# --------------------------------------------------------------------------------------------
ZOO = {
    "resnet": lambda: ResNet(),
    "vit": lambda: ViT(),
    "sdpa": lambda: SDPAModel(),
    "custom_function_with_jvp": lambda: CustomFunctionCNN(ScaledReLUWithJvp),
    "channels_last_cnn": lambda: small_cnn().to(memory_format=torch.channels_last),
}


@pytest.mark.parametrize("name", list(ZOO))
def test_every_mode_and_reduction_agree(name: str) -> None:
    torch.manual_seed(0)
    model = ZOO[name]().eval()
    side = 16 if name == "vit" else 8
    x = images(side=side)
    if name == "channels_last_cnn":
        x = x.contiguous(memory_format=torch.channels_last)
    before = state_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LieGGWarning)  # forward mode works: no fallback
        g = grams(model, x)
    assert_modes_agree(g)
    assert_same_state(before, model)
    assert not any(m.training for m in model.modules())


def test_vit_fast_path_is_taken_outside_and_restored() -> None:
    """The encoder does take PyTorch's fused path (the reason forward AD failed before)."""
    model = ViT().eval()
    x = images(side=16)
    tokens = torch.randn(2, 17, 16)
    with torch.no_grad(), torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(tokens, torch.ones_like(tokens))
        with pytest.raises(NotImplementedError, match="forward AD"):
            model.encoder(dual)
    assert torch.backends.mha.get_fastpath_enabled()
    lg.liegg(model, x, lg.ImageAction(), ad_mode="forward")
    assert torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        lg.liegg(model, x, lg.ImageAction(), ad_mode="forward")
        assert not torch.backends.mha.get_fastpath_enabled()
    finally:
        torch.backends.mha.set_fastpath_enabled(True)


def test_multihead_attention_forward_mode_matches_reverse() -> None:
    mha = nn.MultiheadAttention(4, 2, batch_first=True).eval()

    def model(x: Tensor) -> Tensor:
        t = x.flatten(2).transpose(1, 2)  # (N, L, 3) -> pad to 4 features
        t = F.pad(t, (0, 1))
        return mha(t, t, t, need_weights=False)[0].mean(dim=1)

    x = images()
    fwd = output_rows(model, x, lg.ImageAction(), ad_mode="forward")
    rev = output_rows(model, x, lg.ImageAction(), ad_mode="reverse")
    assert rel_err(fwd, rev) < TOL


# --------------------------------------------------------------------------------------------
# ops without a forward-AD rule: auto falls back to reverse once, forward says why
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [ScaledReLU, OldStyleScaledReLU], ids=["no_jvp", "old_style"])
def test_custom_function_auto_falls_back_once_and_remembers(fn: type) -> None:
    model = CustomFunctionCNN(fn).eval()
    x = images()
    reverse = lg.liegg(model, x, lg.ImageAction(), ad_mode="reverse").gram
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = lg.liegg(model, x, lg.ImageAction(), ad_mode="auto").gram
        second = lg.liegg(model, x, lg.ImageAction(), ad_mode="auto").gram
        summed = lg.liegg(model, x, lg.ImageAction(), "sum", ad_mode="auto").gram
    ours = [
        w
        for w in caught
        if issubclass(w.category, LieGGWarning) and "Forward-mode" in str(w.message)
    ]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "autograd.Function" in str(ours[0].message)
    assert "CustomFunctionCNN" in str(ours[0].message)
    assert rel_err(first, reverse) < TOL and rel_err(second, reverse) < TOL
    assert float(summed.norm()) > 0
    with pytest.raises(LieGGError, match=r'autograd\.Function.*ad_mode="reverse"'):
        lg.liegg(model, x, lg.ImageAction(), ad_mode="forward")
    # a fresh model of the same class tries forward mode again (the choice is per model)
    with pytest.warns(LieGGWarning, match="autograd.Function"):
        lg.liegg(CustomFunctionCNN(fn).eval(), x, lg.ImageAction(), ad_mode="auto")
    assert not hasattr(model, "_liegg_mode")
    assert set(vars(model)) == set(vars(CustomFunctionCNN(fn)))


def test_fused_op_without_forward_rule_names_the_op() -> None:
    """An op with no forward-AD rule and no switch to avoid it: here, a fused LSTM cell."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 5, batch_first=True)

    def model(x: Tensor) -> Tensor:
        return lstm(x.flatten(2).transpose(1, 2))[0][:, -1]

    x = images()
    try:
        output_rows(model, x, lg.ImageAction(), ad_mode="forward")
    except LieGGError as err:
        assert 'ad_mode="reverse"' in str(err)
        with pytest.warns(LieGGWarning, match="no forward-AD rule"):
            auto = output_rows(model, x, lg.ImageAction(), ad_mode="auto")
        rev = output_rows(model, x, lg.ImageAction(), ad_mode="reverse")
        assert rel_err(auto, rev) < TOL
    else:  # this PyTorch differentiates LSTMs forward: nothing to fall back from
        pytest.skip("nn.LSTM has a forward-AD rule in this PyTorch")


def test_other_errors_are_not_swallowed() -> None:
    def broken(x: Tensor) -> Tensor:
        raise RuntimeError("shape mismatch in user code")

    with pytest.raises(RuntimeError, match="shape mismatch"):
        lg.liegg(broken, images(), lg.ImageAction(), ad_mode="auto")


# --------------------------------------------------------------------------------------------
# torch.compile
# --------------------------------------------------------------------------------------------
def test_torch_compile_every_mode_agrees_with_eager() -> None:
    """A compiled module gives the eager numbers in every mode (torch.func runs it)."""
    eager = small_cnn().eval()
    compiled = torch.compile(eager, backend="eager")  # no C++ toolchain needed
    x = images()
    g_eager = grams(eager, x)
    g_compiled = grams(compiled, x)
    assert_modes_agree(g_compiled)
    for key, ref in g_eager.items():
        assert rel_err(g_compiled[key], ref) < TOL, key


# --------------------------------------------------------------------------------------------
# train mode: eval during the analysis, each module's own mode and stats back afterwards
# --------------------------------------------------------------------------------------------
def test_train_mode_model_analysed_in_eval_and_restored() -> None:
    model = small_cnn()
    model.train()
    with torch.no_grad():  # some running statistics, so eval differs from batch statistics
        model(images(16) * 3 + 1)
    x = images()
    before = state_of(model)
    g = grams(model, x)
    assert_modes_agree(g)
    assert all(m.training for m in model.modules())
    assert_same_state(before, model)  # BatchNorm running stats and num_batches_tracked
    reference = grams(small_cnn_copy(model).eval(), x)
    for key, ref in reference.items():  # the analysis saw the eval-mode function
        assert rel_err(g[key], ref) < TOL, key


def small_cnn_copy(model: nn.Module) -> nn.Module:
    copy = small_cnn()
    copy.load_state_dict(model.state_dict())
    return copy


def test_mixed_modes_come_back_exactly() -> None:
    model = ResNet()
    model.train()
    model.blocks[1].eval()  # one child (and its subtree) in eval
    model.blocks[2].bn1.eval()  # one leaf in eval under a training parent
    model.head.eval()
    modes = {name: m.training for name, m in model.named_modules()}
    lg.liegg(model, images(), lg.ImageAction())
    assert {name: m.training for name, m in model.named_modules()} == modes


class FilterConv(nn.Module):
    """Like escnn's R2Conv: the filter exists only in eval mode, built by ``train(False)``.

    The weight used is ``basis @ coeffs``; in train mode it is rebuilt at every call, in eval
    mode the cached ``filter`` is used (and would be missing if ``train`` were bypassed).
    """

    def __init__(self) -> None:
        super().__init__()
        self.coeffs = nn.Parameter(torch.randn(4))
        self.register_buffer("basis", torch.randn(6 * 3 * 3 * 3, 4))
        self.builds = 0

    def expand(self) -> Tensor:
        return (self.basis @ self.coeffs).reshape(6, 3, 3, 3)

    def train(self, mode: bool = True) -> FilterConv:
        if not mode:
            self.register_buffer("filter", self.expand().detach(), persistent=False)
            self.builds += 1
        elif hasattr(self, "filter"):
            del self.filter
        return super().train(mode)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.expand() if self.training else self.filter
        return F.conv2d(x, weight, padding=1)


class FilterNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = FilterConv()
        self.head = nn.Linear(6 * 8 * 8, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(torch.tanh(self.conv(x)).flatten(1))


def test_module_that_builds_its_filter_in_train_false() -> None:
    torch.manual_seed(0)
    model = FilterNet()  # fresh: train mode, no filter
    x = images()
    assert not hasattr(model.conv, "filter")
    reference = grams(model, x)  # would be degenerate or raise without train(False)
    assert_modes_agree(reference)
    assert model.training and model.conv.training
    assert not hasattr(model.conv, "filter")  # state as before
    assert model.conv.builds > 0

    model.eval()
    model.train()  # the filter is deleted again
    again = grams(model, x)
    for key, ref in reference.items():
        assert rel_err(again[key], ref) < TOL, key
    assert not hasattr(model.conv, "filter")

    model.eval()  # in eval mode the filter stays where it was
    lg.liegg(model, x, lg.ImageAction())
    assert not model.training and hasattr(model.conv, "filter")


def test_modes_restored_when_the_analysis_raises() -> None:
    model = FilterNet()
    model.head.eval()
    with pytest.raises(RuntimeError):  # the model's own error: wrong channel count
        lg.liegg(model, images()[:, :2], lg.ImageAction())
    assert model.training and model.conv.training and not model.head.training
    assert not hasattr(model.conv, "filter")


# --------------------------------------------------------------------------------------------
# an output action through every path, including regular autograd (old-style Functions)
# --------------------------------------------------------------------------------------------
class OldStyleRadialField(nn.Module):
    """F(x) = s(|x|^2) x on 3-vectors: so(3)-equivariant, through an old-style Function."""

    def forward(self, x: Tensor) -> Tensor:
        scale = OldStyleScaledReLU.apply((x * x).sum(1, keepdim=True) - 1.0) + 0.5
        return scale * x


@pytest.mark.parametrize("mode", ["auto", "reverse"])
def test_output_action_through_the_autograd_fallback(mode: str) -> None:
    x = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 1.5
    vec = lg.VectorAction(dim=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LieGGWarning)
        report = lg.liegg(
            OldStyleRadialField(), x, vec, ad_mode=mode, output_action=vec, reference="so(3)"
        )
    assert report.symmetry_dim == 3
    assert report.subspace_distance() < 1e-8
    # the same model without the output action: rotations move the output, no so(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LieGGWarning)
        invariant = lg.liegg(OldStyleRadialField(), x, vec, ad_mode=mode, reference="so(3)")
    assert invariant.symmetry_dim == 0
