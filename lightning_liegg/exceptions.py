"""The exception and warning classes of lightning-liegg, in one place.

Every user error is a :class:`LieGGError` (a ``ValueError``) worded "Expected ..., but got ...";
every warning the package emits is a :class:`LieGGWarning` (or a subclass), so a user can
filter all of them at once (``warnings.simplefilter("error", lg.LieGGWarning)``).

This module imports nothing from the package: every other module may import it.
"""

from __future__ import annotations

__all__ = [
    "LieGGError",
    "NonFiniteError",
    "LieGGWarning",
    "DegenerateWarning",
]


class LieGGError(ValueError):
    """A user error: an input, a generator, an action or a configuration that does not fit."""


class NonFiniteError(LieGGError, ArithmeticError):
    """The model produced NaN or infinite outputs or gradients on some samples."""


class LieGGWarning(UserWarning):
    """A skipped evaluation, a fallback taken, or a logger that cannot show LieGG's media."""


class DegenerateWarning(LieGGWarning):
    """The polarization matrix is (numerically) zero: the output does not depend on the input."""
