"""The result of a layer-wise analysis: one :class:`SymmetryReport` per layer, in forward order."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from .._checks import LieGGError
from .report import SymmetryReport

__all__ = ["LayerwiseReport"]


def _ratio(decades: float) -> str:
    """A gap in decades (:attr:`SymmetryReport.gap`) as the printed ratio, ``x42.6``."""
    return "-" if math.isnan(decades) else f"x{10.0**decades:.3g}"


#: column, format (a format string, or a function of the value).
_COLUMNS = (
    ("layer", "{}"),
    ("relative_variance", "{:.3e}"),
    ("gap", _ratio),
    ("symmetry_dim", "{:d}"),
    ("symmetry_bias", "{:.4f}"),
    ("subspace_distance", "{:.4f}"),
    ("reference_variance", "{:.3e}"),
)


class LayerwiseReport(Mapping[str, SymmetryReport]):
    """Where in the network a symmetry sits: layer name -> :class:`SymmetryReport`.

    Returned by :func:`lightning_liegg.liegg` and ``LieGG.compute()`` with ``layers=``. A
    read-only mapping in forward order (the order in which the layers ran), the model's final
    output last under ``"output"``: ``report["output"]``, ``for name, rep in report.items()``.

    Example:
        >>> import torch, lightning_liegg as lg
        >>> model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Tanh())
        >>> rep = lg.liegg(model, torch.randn(16, 3, dtype=torch.float64),
        ...                lg.VectorAction(dim=3), layers=["0"])
        >>> list(rep)
        ['0', 'output']
    """

    def __init__(self, reports: Mapping[str, SymmetryReport]) -> None:
        if not reports:
            raise LieGGError("Expected at least one layer report, but got none.")
        self._reports = dict(reports)

    def __getitem__(self, name: str) -> SymmetryReport:
        try:
            return self._reports[name]
        except KeyError:
            raise KeyError(f"{name!r} (layers: {list(self._reports)})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._reports)

    def __len__(self) -> int:
        return len(self._reports)

    def rows(self) -> list[dict[str, object]]:
        """One dict per layer, the columns of :meth:`to_table`.

        ``relative_variance``: of the most symmetric generator; ``gap``: see
        :attr:`SymmetryReport.gap` (decades; :meth:`to_table` prints it as the ratio
        ``10**gap``); ``symmetry_dim``; with a reference also ``symmetry_bias``
        (of the most symmetric generator), ``subspace_distance`` (reference-sized subspace)
        and ``reference_variance``: the mean relative Lie derivative along the reference
        algebra's basis (``report.reference_variance(relative=True).mean()``), the
        lie-deriv style number for the reference symmetry itself.
        """
        out: list[dict[str, object]] = []
        for name, rep in self._reports.items():
            row: dict[str, object] = {
                "layer": name,
                "relative_variance": rep.relative_variance,
                "gap": rep.gap,
                "symmetry_dim": rep.symmetry_dim,
            }
            if rep.reference is not None:
                bias = rep.symmetry_bias
                row["symmetry_bias"] = float(bias[0]) if bias is not None else math.nan
                row["subspace_distance"] = rep.subspace_distance()
                row["reference_variance"] = float(rep.reference_variance(relative=True).mean())
            out.append(row)
        return out

    def to_table(self) -> str:
        """A plain-text table, one row per layer in forward order (see :meth:`rows`).

        The ``gap`` column is printed as a ratio of variances (``x42.6``: the next direction's
        relative variance is 42.6 times the last symmetric one's), the unit of every printed
        gap in this library and its demos; :meth:`rows` keeps :attr:`SymmetryReport.gap` in
        decades (log10 of that ratio).
        """
        rows = self.rows()
        keys = [k for k, _ in _COLUMNS if any(k in r for r in rows)]
        fmt = dict(_COLUMNS)

        def cell(key: str, row: dict[str, object]) -> str:
            if key not in row:
                return "-"
            f = fmt[key]
            return f(row[key]) if callable(f) else f.format(row[key])

        cells = [[cell(k, r) for k in keys] for r in rows]
        widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
        lines = [
            "  ".join(
                k.ljust(w) if i == 0 else k.rjust(w)
                for i, (k, w) in enumerate(zip(keys, widths, strict=True))
            )
        ]
        for c in cells:
            lines.append(
                "  ".join(
                    v.ljust(w) if i == 0 else v.rjust(w)
                    for i, (v, w) in enumerate(zip(c, widths, strict=True))
                )
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"LayerwiseReport({len(self)} layers)\n{self.to_table()}"
