"""The warning policy: LieGGWarnings, each cause once; errors raised only under ``strict``.

Analysis trouble must never stop training unless the user asked for it (``strict=True``);
otherwise it becomes one :class:`LieGGWarning` per cause.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from .exceptions import LieGGWarning

__all__ = ["Warner"]


class Warner:
    """Warn with :class:`LieGGWarning`, each message once unless told otherwise.

    Args:
        strict: :meth:`guard` and :meth:`fail` raise instead of warning.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._seen: set[str] = set()
        self.skipped: dict[str, int] = {}

    def skip(self, cause: BaseException | str, step: int) -> None:
        """An evaluation was skipped: raise an error cause under ``strict``, else count it.

        The first evaluation skipped for a cause warns at once; the others are counted, and
        :meth:`report_skips` says how many when the run ends.
        """
        if self.strict and isinstance(cause, BaseException):
            raise cause
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        self.skipped[text] = self.skipped.get(text, 0) + 1
        if self.skipped[text] == 1:
            self(
                f"LieGG skipped the evaluation at step {step}: {text} (later evaluations "
                "skipped for the same reason are counted and reported when the run ends)",
                once=False,
                stacklevel=4,
            )

    def report_skips(self, attempted: int) -> None:
        """One warning per cause: ``"LieGG skipped 7 of 7 evaluations: <cause>"``."""
        for text, count in self.skipped.items():
            self(f"LieGG skipped {count} of {attempted} evaluations: {text}", once=False)

    def __call__(self, message: str, once: bool = True, stacklevel: int = 3) -> None:
        """Warn (rank-local); with ``once``, each message only the first time."""
        if once and message in self._seen:
            return
        self._seen.add(message)
        warnings.warn(message, LieGGWarning, stacklevel=stacklevel)

    def fail(self, err: BaseException, what: str, once: bool = True) -> None:
        """Raise ``err`` if strict, else warn ``"<what>: <ErrorType>: <message>"``."""
        if self.strict:
            raise err
        self(f"{what}: {type(err).__name__}: {err}", once=once, stacklevel=4)

    @contextmanager
    def guard(self, what: str, once: bool = True) -> Iterator[None]:
        """Run a block whose failure is :meth:`fail`-ed: a warning unless strict."""
        try:
            yield
        except Exception as err:  # noqa: BLE001 - never stop training unless strict
            self.fail(err, what, once=once)
