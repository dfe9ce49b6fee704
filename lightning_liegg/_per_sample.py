"""The callback's per-sample side: which inputs break the symmetry, and discrete transforms.

Small functions the evaluation calls after the (all-reduced) report is known:

- :func:`violations`: per-sample relative violation along the most symmetric generator (and
  the mean over the reference algebra), from the per-sample Gram matrices of the analysis'
  own passes (``functional.violation._update_per_sample``): no extra pass;
- :func:`discrete_errors` and :func:`reduce_means`: the discrete transforms' per-sample errors
  (one forward pass per transform on the cached samples) and their means over all processes
  (every rank joins the same single all-reduce, also when its own pass failed);
- :func:`log_per_sample`: TensorBoard histograms of those distributions and an image of the
  worst samples (:func:`worst_samples_image`, drawn as an array in a few milliseconds).

Under DDP the histograms and the worst samples are those of rank zero's share of the samples;
the logged means (``liegg/discrete/<name>``) are over all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._fast_figures import _Canvas, _text_width, _upscale, colorize
from ._lightning import classes
from .functional.actions import Action
from .functional.discrete import _errors_update, check_output_transforms, check_transforms
from .functional.report import SymmetryReport
from .functional.violation import generator_coordinates, scaled_violation

__all__ = [
    "PerSample",
    "WORST_SAMPLES",
    "check_transforms",
    "discrete_errors",
    "evaluate",
    "log_per_sample",
    "quantities",
    "reduce_means",
    "violations",
    "worst_indices",
    "worst_samples_image",
]

#: samples shown per row of the worst-samples image.
WORST_SAMPLES = 4
MOST_SYMMETRIC = "most_symmetric"
REFERENCE = "reference"


@dataclass
class PerSample:
    """One evaluation's per-sample results (this process's samples).

    Attributes:
        violations: ``{"most_symmetric": (n,), "reference": (n,)}`` float64 relative
            violations (the reference's only with a reference); empty without per-sample
            Gram matrices (layer-wise analyses).
        errors: ``{name: (n,)}`` float64 relative errors of the discrete transforms.
        means: ``{"discrete/<name>": mean over all processes}``, the logged scalars.
        worst: ``{label: indices into the samples}``, the worst first, as drawn.
    """

    violations: dict[str, Tensor] = field(default_factory=dict)
    errors: dict[str, Tensor] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    worst: dict[str, list[int]] = field(default_factory=dict)


def violations(
    report: SymmetryReport, action: Action, sample_grams: Tensor | None
) -> dict[str, Tensor]:
    """Per-sample relative violations along the most symmetric generator and the reference.

    Args:
        report: the all-reduced report (its Gram matrix and sample count scale the values).
        action: the analysed action.
        sample_grams: ``(n, m, m)`` per-sample Gram matrices of this process, or None.

    Returns:
        ``{"most_symmetric": (n,), "reference": (n,)}`` (the second with a reference: the
        mean over its orthonormal elements); the sample means over all processes are the
        report's ``relative_variance`` and ``reference_variance(relative=True).mean()``.
    """
    if sample_grams is None or report.degenerate:
        return {}
    out = {}
    coords = generator_coordinates(report.generators[:1], action)
    out[MOST_SYMMETRIC] = scaled_violation(sample_grams, coords, report.gram, report.num_samples)[
        :, 0
    ]
    if report.reference is not None:
        ref = generator_coordinates(report.reference, action)
        out[REFERENCE] = scaled_violation(sample_grams, ref, report.gram, report.num_samples).mean(
            dim=1
        )
    return out


def discrete_errors(
    model: Callable[[Tensor], Any],
    samples: Tensor | None,
    transforms: Mapping[str, Callable[[Tensor], Tensor]],
    **options: Any,
) -> dict[str, Tensor]:
    """This process's per-sample errors ``{name: (n,)}`` (empty tensors without samples).

    ``options``: ``output_transform``, ``chunk_size``, ``prepare``, ``forward_fn``, ``extra``
    as for ``functional.discrete._errors_update``.
    """
    names = list(transforms)
    if samples is None or samples.shape[0] == 0:
        return {k: torch.zeros(0, dtype=torch.float64) for k in names}
    outs = check_output_transforms(None, names)
    return _errors_update(model, samples, dict(transforms), outs, **options)


def reduce_means(
    run: Any, names: Sequence[str], errors: Mapping[str, Tensor] | None
) -> dict[str, float] | None:
    """``{"discrete/<name>": mean over all processes}``, or None if any process failed.

    Every rank calls this at the same evaluations (with ``errors=None`` when its own pass
    failed), and joins one sum all-reduce of [sums..., count, failures]. Non-finite errors
    count (the mean is then inf or NaN, as the samples say).
    """
    k = len(names)
    packed = torch.zeros(k + 2, dtype=torch.float64)
    if errors is None:
        packed[-1] = 1.0
    else:
        for i, name in enumerate(names):
            packed[i] = errors[name].sum()
        packed[k] = float(errors[names[0]].numel()) if k else 0.0
    if run.reduce is not None:  # the run's sum all-reduce (see lightning_liegg._engine.Run)
        packed = run.reduce(packed).cpu()
    if packed[-1] > 0 or packed[k] == 0:
        return None
    count = float(packed[k])
    return {f"discrete/{name}": float(packed[i]) / count for i, name in enumerate(names)}


def worst_indices(values: Tensor, k: int = WORST_SAMPLES) -> list[int]:
    """Indices of the ``k`` largest values, largest first (NaN counts as largest)."""
    v = values.detach().to(torch.float64).clone()
    v[torch.isnan(v)] = math.inf
    k = min(int(k), v.numel())
    return torch.topk(v, k).indices.tolist() if k else []


def _tile(sample: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """One sample as an RGB tile: an image (gray, or RGB for 3 channels) or a heat strip.

    ``(C, H, W)`` / ``(H, W)`` with H, W >= 4 is an image (first channel unless 3); ``(C, D, H,
    W)`` its first channel's middle slice; anything else (vectors, signals, sets) a heat map
    of rows (first dimension) by entries, on a symmetric ``RdBu_r`` scale.
    """
    s = sample
    if s.ndim == 4:
        s = s[0, s.shape[1] // 2]
    if s.ndim == 3 and s.shape[0] == 3 and min(s.shape[1:]) >= 4:
        rgb = np.clip((np.nan_to_num(np.moveaxis(s, 0, -1), nan=lo) - lo) / (hi - lo), 0, 1)
        tile = (rgb * 255 + 0.5).astype(np.uint8)
    elif s.ndim >= 2 and min(s.shape[-2:]) >= 4:
        tile = colorize(s.reshape(-1, *s.shape[-2:])[0], lo, hi, "gray")
    else:  # a heat strip: rows (first dimension) by entries, cells at least 4 pixels
        flat = s.reshape(1, -1) if s.ndim < 2 else s.reshape(s.shape[0], -1)
        vmax = max(abs(lo), abs(hi), 1e-12)
        tile = colorize(flat, -vmax, vmax, "RdBu_r")
        h, w = tile.shape[:2]
        return _upscale(tile, max(4, min(24, 48 // h)), max(4, min(24, 96 // w)))
    f = max(1, 72 // max(tile.shape[:2]))
    return _upscale(tile, f, f)


def worst_samples_image(
    samples: Tensor,
    rows: Mapping[str, tuple[Tensor, list[int]]],
    title: str = "samples that break the symmetry most (value: relative violation / error)",
) -> np.ndarray:
    """The worst samples of each quantity, one row per quantity, each labelled with its value.

    Args:
        samples: ``(n, ...)`` the samples the values refer to (CPU).
        rows: ``{label: (values (n,), indices)}``, the indices worst first
            (:func:`worst_indices`).
        title: a line above the rows.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    data = samples.detach().to("cpu", torch.float32).numpy()
    finite = data[np.isfinite(data)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    tiles = {
        label: [(_tile(data[i], lo, hi), i, float(values[i])) for i in idx]
        for label, (values, idx) in rows.items()
    }
    cell_h = max((t.shape[0] for row in tiles.values() for t, _, _ in row), default=16)
    cell_w = max((t.shape[1] for row in tiles.values() for t, _, _ in row), default=16)
    cell_w = max(cell_w, 84)
    label_w = max((_text_width(k, 12) for k in tiles), default=0) + 16
    cols = max((len(r) for r in tiles.values()), default=1)
    margin, gap, text_h = 8, 10, 28
    top0 = margin + 20
    width = max(margin * 2 + label_w + cols * (cell_w + gap), _text_width(title, 12) + 2 * margin)
    height = top0 + len(tiles) * (cell_h + text_h + gap) + margin
    canvas = _Canvas(height, width)
    canvas.text(margin, margin, title, size=12)
    for r, (label, row) in enumerate(tiles.items()):
        top = top0 + r * (cell_h + text_h + gap)
        canvas.text(margin, top + text_h + cell_h / 2, label, size=12, anchor="lm")
        for c, (tile, i, value) in enumerate(row):
            left = margin + label_w + c * (cell_w + gap)
            canvas.text(left, top + 1, f"#{i}", size=11)
            canvas.text(left, top + 14, f"{value:.3g}", size=11)
            canvas.paste(tile, top + text_h, left)
            canvas.frame(top + text_h, left, tile.shape[0], tile.shape[1])
    return canvas.finish()


def quantities(per_sample: PerSample) -> dict[str, Tensor]:
    """``{row label: values (n,)}``: each violation, then each discrete error."""
    rows = {f"violation: {name}": v for name, v in per_sample.violations.items()}
    rows.update({f"discrete: {name}": e for name, e in per_sample.errors.items()})
    return rows


def log_per_sample(
    loggers: Sequence[Any],
    step: int,
    per_sample: PerSample,
    samples: Tensor | None,
    prefix: str = "liegg/",
    images: bool = True,
    k: int = WORST_SAMPLES,
) -> np.ndarray | None:
    """Histograms (TensorBoard) and the worst-samples image (TensorBoard, ``log_image``).

    Tags: ``<prefix>per_sample/violation/<most_symmetric|reference>``,
    ``<prefix>per_sample/discrete/<name>`` (histograms) and ``<prefix>worst_samples`` (image).
    Sets ``per_sample.worst``. Returns the image (or None when nothing was drawn).
    """
    from ._loggers import add_png

    tensorboard = [lg for lg in loggers if isinstance(lg, classes("loggers.TensorBoardLogger"))]
    others = [lg for lg in loggers if lg not in tensorboard and hasattr(lg, "log_image")]
    for logger in tensorboard:
        writer = logger.experiment
        for name, v in per_sample.violations.items():
            if v.numel():
                writer.add_histogram(
                    f"{prefix}per_sample/violation/{name}", v.numpy(), global_step=step
                )
        for name, e in per_sample.errors.items():
            if e.numel():
                writer.add_histogram(
                    f"{prefix}per_sample/discrete/{name}", e.numpy(), global_step=step
                )
    image = None
    rows = quantities(per_sample)
    per_sample.worst = {label: worst_indices(v, k) for label, v in rows.items()}
    if images and samples is not None and samples.shape[0] and (tensorboard or others):
        values = {label: (rows[label], idx) for label, idx in per_sample.worst.items()}
        if values:
            image = worst_samples_image(samples, values)
            for logger in tensorboard:
                add_png(logger.experiment, f"{prefix}worst_samples", image, step)
            for logger in others:
                logger.log_image(key=f"{prefix}worst_samples", images=[image], step=step)
    for logger in tensorboard:
        logger.experiment.flush()
    return image


def evaluate(
    run: Any,
    module: Any,
    report: SymmetryReport,
    action: Action,
    sample_grams: Tensor | None,
    transforms: Mapping[str, Callable[[Tensor], Tensor]] | None,
    samples: Tensor | None,
    warn: Any,
    **options: Any,
) -> PerSample:
    """One evaluation's per-sample results; call on every rank once the report is known.

    With ``transforms``, every rank runs its discrete pass and joins :func:`reduce_means`
    (also when its pass failed); a failure is ``warn.fail``-ed (raised under strict, after the
    collective) and the evaluation then has no discrete scalars. ``options`` as for
    :func:`discrete_errors`.
    """
    result = PerSample()
    with warn.guard("LieGG could not compute the per-sample violations"):
        result.violations = violations(report, action, sample_grams)
    if not transforms:
        return result
    names = list(transforms)
    errors: dict[str, Tensor] | None = None
    error: BaseException | None = None
    try:
        with run.forward_context():
            errors = discrete_errors(module, samples, transforms, **options)
    except Exception as err:  # noqa: BLE001 - reported after the collective
        error = err
    means = reduce_means(run, names, errors)
    if error is not None:
        warn.fail(error, "LieGG could not measure the discrete transforms")
    elif means is None:
        if run.is_global_zero and samples is not None:
            warn("LieGG could not measure the discrete transforms on another process")
    else:
        result.errors, result.means = errors or {}, means
    return result
