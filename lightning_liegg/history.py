"""The callback's history: one :class:`Evaluation` record per evaluation, and its export.

Records are frozen dataclasses; :meth:`Evaluation.to_dict` gives plain JSON (lists, floats,
strings), which is what checkpoints hold, and :meth:`Evaluation.from_dict` reads it back,
also from checkpoints written before the records existed (the same keys). New fields get
defaults, and ``from_dict`` ignores keys it does not know, so the record can grow (an output
action's name, per-layer results) without breaking old or new checkpoints.
``lightning_liegg.Evaluation`` is this module's :class:`Evaluation`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .functional.report import (
    MIN_GAP_DECADES,
    NOISE_FLOOR,
    SYMMETRY_TOLERANCE,
    SymmetryReport,
    principal_angles,
)

__all__ = [
    "Evaluation",
    "history_to_csv",
    "history_to_json",
    "layer_records",
    "layer_scalars",
    "summary_table",
]


def _same(a: Any, b: Any) -> bool:
    """``a == b`` through dicts, lists and tuples, with NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation found.

    Attributes:
        step: ``trainer.global_step`` of the evaluation.
        epoch: ``trainer.current_epoch``.
        stage: ``"fit"``, ``"validate"`` or ``"replay"``.
        num_samples: samples analysed (all processes together).
        seconds: time the analysis took.
        scalars: the logged scalars (``symmetry_variance``, ``relative_variance``,
            ``symmetry_dim``, ``closure``, ``seconds``, ``generator_drift``, with a reference
            ``symmetry_bias`` and ``subspace_distance``), without the ``liegg/`` prefix.
        spectrum: sigma^2 / N, ascending.
        relative_spectrum: the spectrum over its largest value.
        generators: the most symmetric generators, ``(k, p, q)`` as nested lists.
        bias: each generator's symmetry bias against the reference, or None.
        output_action: ``repr`` of the output action of an equivariance analysis, or None
            (invariance; also for records written before the field existed).
        layers: with ``layers=``, per layer (forward order, ``"output"`` last) a dict with
            ``scalars`` (see :func:`layer_scalars`), ``relative_spectrum`` and the most
            symmetric ``generators``; None otherwise (and in records written before).
    """

    step: int
    epoch: int
    stage: str
    num_samples: int
    seconds: float
    scalars: dict[str, float] = field(default_factory=dict)
    spectrum: list[float] = field(default_factory=list)
    relative_spectrum: list[float] = field(default_factory=list)
    generators: list | None = None
    bias: list[float] | None = None
    output_action: str | None = None
    layers: dict[str, dict[str, Any]] | None = None

    def __eq__(self, other: object) -> bool:
        """Field by field, with NaN equal to NaN.

        ``closure`` is NaN without a symmetry, so a record read back from a checkpoint or a
        JSON file equals the one written.
        """
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_same(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    @classmethod
    def from_report(
        cls,
        report: SymmetryReport,
        step: int,
        epoch: int,
        stage: str,
        seconds: float,
        num_generators: int,
        previous: Evaluation | None = None,
        output_action: str | None = None,
        layers: Mapping[str, SymmetryReport] | None = None,
    ) -> Evaluation:
        """The record of ``report``; ``generator_drift`` is measured against ``previous``.

        ``layers``: the per-layer reports of a layer-wise analysis, kept as plain data.

        ``generator_drift`` is the principal angle (radians) between this and the previous
        evaluation's most symmetric generator. ``output_action``: its ``repr`` for an
        equivariance analysis, None for invariance.
        """
        scalars = report.to_dict()
        scalars.pop("num_samples", None)
        if previous is not None and previous.generators:
            before = torch.tensor(previous.generators[0], dtype=torch.float64).reshape(1, -1)
            now = report.generators[:1].reshape(1, -1)
            if before.shape == now.shape:
                scalars["generator_drift"] = float(principal_angles(now, before)[0])
        scalars["seconds"] = seconds
        bias = report.symmetry_bias
        return cls(
            step=int(step),
            epoch=int(epoch),
            stage=stage,
            num_samples=int(report.num_samples),
            seconds=float(seconds),
            scalars=scalars,
            spectrum=report.spectrum.tolist(),
            relative_spectrum=report.relative_spectrum.tolist(),
            generators=report.generators[:num_generators].tolist(),
            bias=None if bias is None else bias.tolist(),
            output_action=output_action,
            layers=None if layers is None else layer_records(layers, num_generators),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the fields by name (copies, so the record stays unchanged).

        ``output_action`` and ``layers`` are left out when None (invariance, no layers), so
        those records read exactly as before the fields existed.
        """
        data = json.loads(json.dumps(dataclasses.asdict(self), allow_nan=True))
        for key in ("output_action", "layers"):
            if data.get(key) is None:
                data.pop(key, None)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        """Read a record back from :meth:`to_dict` output (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def layer_scalars(report: SymmetryReport) -> dict[str, float]:
    """The scalars logged per layer under ``liegg/layers/<name>/``.

    ``relative_variance`` and ``symmetry_dim``; with a reference also ``symmetry_bias`` (most
    symmetric generator), ``subspace_distance`` and ``reference_variance`` (mean relative
    variance along the reference algebra's basis).
    """
    out = {
        "relative_variance": report.relative_variance,
        "symmetry_dim": float(report.symmetry_dim),
    }
    bias = report.symmetry_bias
    if bias is not None:
        out["symmetry_bias"] = float(bias[0])
        out["subspace_distance"] = report.subspace_distance()
        out["reference_variance"] = float(report.reference_variance(relative=True).mean())
    return out


def layer_records(
    reports: Mapping[str, SymmetryReport], num_generators: int
) -> dict[str, dict[str, Any]]:
    """Plain data per layer: ``scalars``, ``relative_spectrum`` and the first generators."""
    return {
        name: {
            "scalars": layer_scalars(rep),
            "relative_spectrum": rep.relative_spectrum.tolist(),
            "generators": rep.generators[:num_generators].tolist(),
        }
        for name, rep in reports.items()
    }


def history_to_json(history: Iterable[Evaluation], path: str | Path) -> None:
    """Write the records as a JSON list of :meth:`Evaluation.to_dict` dicts."""
    data = [record.to_dict() for record in history]
    Path(path).write_text(json.dumps(data, indent=1, allow_nan=True))


def history_to_csv(history: Iterable[Evaluation], path: str | Path) -> None:
    """One row per record: step, epoch, stage, every scalar and the relative spectrum."""
    records = list(history)
    scalar_keys: list[str] = []
    for record in records:
        scalar_keys += [k for k in _flat_scalars(record) if k not in scalar_keys]
    m = max((len(r.relative_spectrum) for r in records), default=0)
    header = ["step", "epoch", "stage", *scalar_keys, *(f"spectrum/{i}" for i in range(m))]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for r in records:
            spectrum = list(r.relative_spectrum) + [math.nan] * (m - len(r.relative_spectrum))
            flat = _flat_scalars(r)
            scalars = [flat.get(k, math.nan) for k in scalar_keys]
            writer.writerow([r.step, r.epoch, r.stage, *scalars, *spectrum])


def _flat_scalars(record: Evaluation) -> dict[str, float]:
    """The record's scalars, with per-layer ones as ``layers/<name>/<scalar>``."""
    flat = dict(record.scalars)
    for name, data in (record.layers or {}).items():
        for key, value in data.get("scalars", {}).items():
            flat[f"layers/{name}/{key}"] = value
    return flat


def _matrix_lines(matrix: list, limit: int = 6) -> list[str]:
    """A small generator as aligned rows (2 decimals); a large one as its shape only."""
    rows = [list(map(float, row)) for row in matrix]
    p, q = len(rows), len(rows[0]) if rows else 0
    if p > limit or q > limit:
        top = max((abs(v) for row in rows for v in row), default=math.nan)
        return [f"({p}, {q}) matrix, largest |entry| {top:.2f}"]
    return ["[" + " ".join(f"{v:6.2f}" for v in row) + " ]" for row in rows]


def _why_no_symmetry(relative_spectrum: list[float], tolerance: float) -> str:
    """Why ``symmetry_dim`` is 0, from the relative spectrum (ascending): the text after it.

    ``" (no gap: largest x3.38 < x10)"`` when no two neighbouring directions are a decade
    apart; ``" (gap x42.6 above the tolerance 0.03)"`` when the widest such gap sits above
    directions that are not small (their relative variance is not below ``tolerance``).
    """
    rel = [max(float(v), NOISE_FLOOR) for v in relative_spectrum]
    if len(rel) < 2 or any(math.isnan(v) for v in rel):
        return ""
    ratios = [b / a for a, b in zip(rel[:-1], rel[1:], strict=True)]
    i = max(range(len(ratios)), key=ratios.__getitem__)
    if math.log10(ratios[i]) < MIN_GAP_DECADES:
        return f" (no gap: largest x{ratios[i]:.3g} < x{10**MIN_GAP_DECADES:.3g})"
    return f" (gap x{ratios[i]:.3g} above the tolerance {tolerance:g})"


def summary_table(
    records: list[Evaluation],
    attempted: int,
    skipped: Mapping[str, int],
    title: str = "LieGG summary",
    describe: Callable[[Tensor], str] | None = None,
    reference: str | None = None,
    tolerance: float = SYMMETRY_TOLERANCE,
) -> str:
    """The end-of-run summary: evaluations done and skipped, what the last one found.

    The last evaluation's epoch is Lightning's ``trainer.current_epoch``, counted from 0 as in
    TensorBoard's ``epoch`` scalar and the progress bar (an evaluation after the first
    training epoch is epoch 0). A ``symmetry_dim`` of 0 comes with its reason: no gap of a
    decade (x10) in the relative spectrum, or a gap that sits above directions whose relative
    variance is not below ``tolerance``. The symmetry bias names the reference it is measured
    against. Gaps are printed as ratios (``x42.6``), as in every printed table.

    Args:
        records: the evaluations of this run, oldest first.
        attempted: how many evaluations were attempted (done plus skipped).
        skipped: ``{cause: count}`` of the skipped evaluations.
        title: the first line.
        describe: optional ``generator -> str`` (the action's ``format_generator``): the top
            generator as text (a vector field) instead of a matrix.
        reference: how to name the reference the bias is measured against (``"rotation2d"``,
            or its dimension when it came as a tensor); None leaves the name out.
        tolerance: the relative variance below which a direction may count in
            ``symmetry_dim`` (the reports' ``SYMMETRY_TOLERANCE`` unless set otherwise).

    Example:
        >>> print(summary_table([], 2, {"LieGGError: no samples": 2}))  # doctest: +ELLIPSIS
        LieGG summary ...
          evaluations     0 done, 2 skipped
          nothing analysed: LieGGError: no samples (2 of 2)
    """
    width = 64
    lines = [f"{title} " + "-" * max(width - len(title) - 1, 3)]
    done = len(records)
    lines.append(f"  {'evaluations':<15} {done} done, {attempted - done} skipped")
    if records:
        last = records[-1]
        s = last.scalars
        lines.append(
            f"  {'last':<15} step {last.step}, epoch {last.epoch} ({last.stage}), "
            f"{last.num_samples} samples"
        )
        dim = int(s.get("symmetry_dim", 0))
        why = _why_no_symmetry(last.relative_spectrum, tolerance) if dim == 0 else ""
        lines.append(f"  {'symmetry dim':<15} {dim}{why}")
        lines.append(f"  {'rel. variance':<15} {s.get('relative_variance', math.nan):.3g}")
        if "symmetry_bias" in s:
            against = f" (vs {reference})" if reference else ""
            lines.append(f"  {'symmetry bias':<15} {s['symmetry_bias']:.3g}{against}")
        discrete = [(k.split("/", 1)[1], v) for k, v in s.items() if k.startswith("discrete/")]
        if discrete:  # mean relative errors of the discrete transforms
            text = ", ".join(f"{name} {value:.3g}" for name, value in discrete)
            lines.append(f"  {'discrete':<15} {text}")
        if last.generators and describe is not None:
            text = describe(torch.tensor(last.generators[0], dtype=torch.float64))
            lines.append(f"  {'top generator':<15} {text}")
        elif last.generators:
            matrix = _matrix_lines(last.generators[0])
            lines.append(f"  {'top generator':<15} {matrix[0]}")
            lines += [f"  {'':<15} {row}" for row in matrix[1:]]
    for cause, count in skipped.items():
        label = "skipped" if records else "nothing analysed:"
        lines.append(f"  {label:<15} {cause} ({count} of {attempted})")
    return "\n".join(lines)
