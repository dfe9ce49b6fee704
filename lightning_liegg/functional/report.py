"""From the Gram matrix G = E^T E to the symmetry report.

eigh(G) gives the squared singular values of E (ascending) and the right singular vectors:
the generators, most symmetric first.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from .._checks import DegenerateWarning, LieGGError, check_basis, orthonormal_rows, shown

__all__ = ["SymmetryReport", "fix_signs", "principal_angles"]

#: log10 gap (decades) the relative spectrum must show for ``symmetry_dim`` to count it.
MIN_GAP_DECADES = 1.0
_FLOOR = 1e-300
#: default relative variance (sigma^2 / sigma_max^2) below which a direction counts as small for
#: ``symmetry_dim``; a direction whose Lie derivative is above ~17% of the largest one (in RMS)
#: is not a symmetry, however wide a gap sits above it. Settable per report (``tolerance=``).
SYMMETRY_TOLERANCE = 0.03
#: relative variances below this are numerical zeros (float64 eigh of a Gram matrix).
NOISE_FLOOR = 1e-15


def fix_signs(vectors: Tensor) -> Tensor:
    """Flip each row so that its first entry of at least half the largest magnitude is positive.

    Args:
        vectors: ``(m, d)``.

    Returns:
        ``(m, d)``, each row multiplied by +1 or -1 (deterministic, so consecutive evaluations
        of similar generators compare).
    """
    mag = vectors.abs()
    big = mag >= 0.5 * mag.max(dim=1, keepdim=True).values
    first = big.to(torch.int64).argmax(dim=1)
    signs = torch.sign(vectors.gather(1, first[:, None]))
    signs[signs == 0] = 1
    return vectors * signs


def principal_angles(a: Tensor, b: Tensor) -> Tensor:
    """Principal angles between the row spans of orthonormal ``a`` (k, d) and ``b`` (r, d).

    Small angles come from sines (the residual of ``a`` off span(b)), large ones from cosines,
    so both ends are accurate to machine precision (arccos alone loses half the digits near 0).

    Returns:
        ``(min(k, r),)`` angles in radians, ascending.
    """
    if a.shape[0] > b.shape[0]:
        a, b = b, a
    cos = torch.linalg.svdvals(a @ b.T).clamp(0.0, 1.0)  # descending
    sin = torch.linalg.svdvals(a - (a @ b.T) @ b).clamp(0.0, 1.0).flip(0)  # ascending
    return torch.where(cos > 0.5**0.5, torch.arcsin(sin), torch.arccos(cos))


class SymmetryReport:
    """What LieGG found: the spectrum of the polarization matrix and its generators.

    Built from the Gram matrix of the polarization matrix; usually returned by
    :func:`lightning_liegg.liegg` or ``LieGG.compute()``.

    Args:
        gram: ``(m, m)`` float64 E^T E.
        num_samples: N, the number of samples (not rows) that built ``gram``.
        basis: ``(m, p, q)`` orthonormal basis the coordinates of ``gram`` refer to.
        reference: optional ``(k, p, q)`` reference algebra (``lg.algebras.so(5)``, ...).
        num_generators: how many generators ``repr`` and ``to_dict`` show.
        tolerance: relative variance below which a direction may count in ``symmetry_dim``
            (default ``SYMMETRY_TOLERANCE``, 0.03).
        describe: optional ``generator -> str`` (an action's ``format_generator``, e.g. the
            vector-field text ``'p ∂q - q^3 ∂p'``), used for the generators ``repr`` shows.

    Attributes:
        spectrum: ``(m,)`` float64, ascending sigma^2 / N: the symmetry variance of each
            generator, E_x ||L_v F(x)||^2 summed over outputs.
        relative_spectrum: ``(m,)`` sigma^2 / sigma_max^2, scale free.
        generators: ``(m, p, q)`` unit Frobenius norm, same order as ``spectrum``.
        degenerate: True when E is zero (the output does not depend on the input); the
            generators are then NaN, since every direction is equally a symmetry.
        descriptions: with ``describe``, the text of the first ``num_generators``
            generators; else None.
    """

    def __init__(
        self,
        gram: Tensor,
        num_samples: int,
        basis: Tensor,
        reference: Tensor | None = None,
        num_generators: int = 4,
        tolerance: float = SYMMETRY_TOLERANCE,
        describe: Callable[[Tensor], str] | None = None,
    ) -> None:
        gram = gram.detach().to(device="cpu", dtype=torch.float64)
        m = basis.shape[0]
        if gram.shape != (m, m):
            raise LieGGError(
                f"Expected a Gram matrix of shape ({m}, {m}), but got {tuple(gram.shape)}."
            )
        if int(num_samples) < 1:
            raise LieGGError(f"Expected at least one sample, but got num_samples={num_samples}.")
        self.gram = gram
        self.num_samples = int(num_samples)
        self.basis = basis.detach().to(device="cpu", dtype=torch.float64)
        self.generator_shape = tuple(self.basis.shape[1:])
        self.num_generators = num_generators
        number = not isinstance(tolerance, bool) and isinstance(tolerance, (int, float))
        if not number or not 0 < tolerance <= 1:
            raise LieGGError(
                f"Expected tolerance to be a number in (0, 1], but got {shown(tolerance)}."
            )
        self.tolerance = float(tolerance)
        self.reference: Tensor | None = None
        if reference is not None:
            ref = check_basis(reference, self.generator_shape, "reference", "for this action")
            self.reference = orthonormal_rows(ref, "reference", "for this action")

        evals, evecs = torch.linalg.eigh(0.5 * (gram + gram.T))
        evals = evals.clamp_min(0.0)
        self.singular_values = evals.sqrt()
        self.spectrum = evals / self.num_samples
        top = float(evals[-1])
        self.degenerate = not (top > _FLOOR) or not math.isfinite(top)
        p, q = self.generator_shape
        if self.degenerate:
            warnings.warn(
                "The polarization matrix is zero: the model's output does not depend on its "
                "input (or every gradient vanished), so no generator can be singled out. The "
                "report is flagged `degenerate` and its generators are NaN.",
                DegenerateWarning,
                stacklevel=2,
            )
            self.relative_spectrum = torch.full_like(evals, float("nan"))
            self.generators = torch.full((m, p, q), float("nan"), dtype=torch.float64)
        else:
            self.relative_spectrum = evals / top
            flat = evecs.T @ self.basis.reshape(m, p * q)  # (m, pq) orthonormal rows
            self.generators = fix_signs(flat).reshape(m, p, q)
        self.descriptions: tuple[str, ...] | None = None
        if describe is not None:
            k = min(num_generators, m)
            self.descriptions = tuple(describe(g) for g in self.generators[:k])

    # -- scalars --------------------------------------------------------------------------
    @property
    def symmetry_variance(self) -> float:
        """Symmetry variance of the most symmetric generator (smallest sigma^2 / N)."""
        return float(self.spectrum[0])

    @property
    def relative_variance(self) -> float:
        """Scale-free symmetry variance of the most symmetric generator, sigma_min^2/sigma_max^2."""
        return float(self.relative_spectrum[0])

    @property
    def symmetry_bias(self) -> Tensor | None:
        """``(m,)`` distance ||v - P_B v|| of each unit generator to the reference algebra.

        0: the generator lies in the reference; 1: orthogonal to it. ``None`` without reference.
        """
        if self.reference is None:
            return None
        d = self.generators.shape[1] * self.generators.shape[2]
        v = self.generators.reshape(-1, d)
        b = self.reference.reshape(-1, d)
        residual = v - (v @ b.T) @ b
        return torch.linalg.vector_norm(residual, dim=1)

    def _require_reference(self, what: str) -> Tensor:
        if self.reference is None:
            raise LieGGError(
                f"Expected a reference algebra for {what}, but the report has none: pass "
                "reference=lg.algebras.so(n) (or any (k, p, q) tensor) to liegg()/LieGG."
            )
        return self.reference

    def _check_k(self, k: int, what: str) -> int:
        m = self.generators.shape[0]
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= m:
            raise LieGGError(
                f"Expected k for {what} to be an integer in [0, {m}], but got {shown(k)}."
            )
        return k

    def subspace_distance(self, k: int | None = None) -> float:
        """Grassmann distance between the k most symmetric generators and the reference.

        sqrt(sum theta_i^2) over the principal angles between the two spans, plus (pi/2)^2 for
        each dimension by which k and the reference dimension differ. 0 means equal subspaces.

        Args:
            k: number of generators; defaults to the reference's dimension.
        """
        ref = self._require_reference("subspace_distance")
        r = ref.shape[0]
        k = self._check_k(r if k is None else k, "subspace_distance")
        if self.degenerate:
            return float("nan")
        d = ref.shape[1] * ref.shape[2]
        angles = principal_angles(self.generators[:k].reshape(k, d), ref.reshape(r, d))
        total = float((angles**2).sum()) + abs(k - r) * (math.pi / 2) ** 2
        return math.sqrt(total)

    @property
    def symmetry_dim(self) -> int:
        """How many generators are both small and set apart from the rest by the largest gap.

        Only gaps of the log relative spectrum just above a *small* direction (relative
        variance below ``self.tolerance``, default ``SYMMETRY_TOLERANCE`` = 0.03) are
        candidates; the widest of them counts if it spans at least ``MIN_GAP_DECADES`` (a
        factor 10), and the directions below it are the symmetries. A gap above directions
        that are not near zero (a spectrum like [0.023, 0.044, 0.09, 1], with one direction
        varying far more than the rest) is no symmetry: 0. Relative variances below
        ``NOISE_FLOOR`` count as exact zeros. A degenerate report (every direction a symmetry)
        reports all m.
        """
        m = self.relative_spectrum.shape[0]
        if self.degenerate:
            return m
        if m < 2:
            return 0
        rel = self.relative_spectrum
        logs = torch.log10(rel.clamp_min(NOISE_FLOOR))
        gaps = logs[1:] - logs[:-1]
        small = rel[:-1] < self.tolerance
        if not bool(small.any()):
            return 0
        gaps = torch.where(small, gaps, torch.full_like(gaps, -math.inf))
        i = int(gaps.argmax())
        return i + 1 if float(gaps[i]) >= MIN_GAP_DECADES else 0

    def closure(self, k: int | None = None) -> float:
        """How far the span of the k most symmetric generators is from being a Lie algebra.

        The commutators [V_i, V_j] (i < j) are projected off span(V_1..V_k); the residual norm
        over the commutators' norm is returned: 0 = closed under the bracket, 1 = commutators
        orthogonal to the span. 2x3 affine generators are embedded as 3x3 [[A, b], [0, 0]].

        With no generator (k = 0, the default when ``symmetry_dim`` is 0: no symmetry found)
        there is nothing to close and the result is NaN, not 0, so that "no symmetry" never
        reads as "a closed algebra"; also NaN for a degenerate report. One generator always
        spans an algebra: 0.

        Args:
            k: number of generators; defaults to ``symmetry_dim``.
        """
        k = self._check_k(self.symmetry_dim if k is None else k, "closure")
        if self.degenerate or k == 0:
            return float("nan")
        if k < 2:
            return 0.0
        v = self.generators[:k]
        p, q = v.shape[1:]
        if p != q:
            sq = torch.zeros(k, q, q, dtype=v.dtype)
            sq[:, :p, :] = v
            v = sq
        i, j = torch.triu_indices(k, k, offset=1)
        comm = (v[i] @ v[j] - v[j] @ v[i]).flatten(1)
        basis = v.flatten(1)  # orthonormal rows (embedding keeps norms)
        residual = comm - (comm @ basis.T) @ basis
        norm = float(torch.linalg.vector_norm(comm))
        if norm <= 1e-300:
            return 0.0
        return float(torch.linalg.vector_norm(residual)) / norm

    def reference_variance(self, relative: bool = False) -> Tensor:
        """The Lie derivative along each reference basis element: h^T G h / N, ``(k,)``.

        For each element h of the (orthonormalised) reference algebra, the variance of the
        model's Lie derivative along h, E_x ||L_h F(x)||^2 summed over outputs: the
        lie-deriv style "Lie derivative along a given generator", read off the Gram matrix
        without another pass. Where the reference is not in the span of the searched basis,
        its component in that span is used. Its mean is basis independent (the trace of G on
        the reference subspace over k and N).

        Args:
            relative: divide by sigma_max^2 instead of N, comparable with
                ``relative_spectrum`` (scale free).

        Raises:
            LieGGError: without a reference.
        """
        ref = self._require_reference("reference_variance")
        d = ref.shape[1] * ref.shape[2]
        coords = ref.reshape(-1, d) @ self.basis.reshape(self.basis.shape[0], d).T  # (k, m)
        quad = ((coords @ self.gram) * coords).sum(dim=1).clamp_min(0.0)  # PSD, up to rounding
        if relative:
            top = float(self.singular_values[-1]) ** 2
            return quad / top if top > _FLOOR else torch.full_like(quad, float("nan"))
        return quad / self.num_samples

    @property
    def gap(self) -> float:
        """Decades (log10) between the last symmetric direction and the next one.

        At ``symmetry_dim`` (the gap that counts it), or above the most symmetric direction
        when ``symmetry_dim`` is 0; NaN for a degenerate report or a 1-dimensional search.
        """
        m = self.relative_spectrum.shape[0]
        d = max(self.symmetry_dim, 1)
        if self.degenerate or d >= m:
            return float("nan")
        logs = torch.log10(self.relative_spectrum.clamp_min(NOISE_FLOOR))
        return float(logs[d] - logs[d - 1])

    # -- export ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, float]:
        """Scalars for logging.

        Variances, dimension and closure (NaN when ``symmetry_dim`` is 0, see :meth:`closure`);
        with a reference also the bias of the most symmetric generator and the subspace distance
        of the reference-sized subspace.
        """
        out: dict[str, float] = {
            "symmetry_variance": self.symmetry_variance,
            "relative_variance": self.relative_variance,
            "symmetry_dim": float(self.symmetry_dim),
            "closure": self.closure(),
            "num_samples": float(self.num_samples),
        }
        bias = self.symmetry_bias
        if bias is not None:
            out["symmetry_bias"] = float(bias[0])
            out["subspace_distance"] = self.subspace_distance()
        return out

    def __repr__(self) -> str:
        k = min(self.num_generators, self.generators.shape[0])
        bias = self.symmetry_bias
        lines = [
            f"SymmetryReport(N={self.num_samples}, dim={self.generators.shape[0]}, "
            f"generator_shape={self.generator_shape}, symmetry_dim={self.symmetry_dim}"
            + (", degenerate" if self.degenerate else "")
            + ")",
            "   #   variance   relative"
            + ("      bias" if bias is not None else "")
            + "  generator",
        ]
        for i in range(k):
            gen = (
                self.descriptions[i]
                if self.descriptions is not None and i < len(self.descriptions)
                else self.generators[i].numpy().round(3).tolist()
            )
            row = f"{i:4d}  {float(self.spectrum[i]):9.3e}  {float(self.relative_spectrum[i]):9.3e}"
            if bias is not None:
                row += f"  {float(bias[i]):8.4f}"
            lines.append(f"{row}  {gen}")
        if bias is not None:
            lines.append(
                f"subspace_distance(k={self.reference.shape[0]}) = {self.subspace_distance():.4g}"
            )
        return "\n".join(lines)
