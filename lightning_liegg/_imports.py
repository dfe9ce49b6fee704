"""Optional dependencies behind one check: what to install when a feature needs more.

Required are only what the callback and the functional API need. The rest comes with an
extra: ``scikit-learn`` with ``[datasets]`` (the bundled digits loader), ``jsonargparse``
with ``[cli]`` (``python -m lightning_liegg.replay``); ``[dev]`` has all of them. Each is
imported lazily where it is used, through :meth:`Requirement.require`, which says which
extra to install when the module is missing (as torchmetrics' ``RequirementCache`` does).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from .exceptions import LieGGError

__all__ = ["Requirement", "SKLEARN", "JSONARGPARSE"]


@dataclass(frozen=True)
class Requirement:
    """An optional module, the extra that installs it, and what it is for.

    Args:
        module: the import name (``"sklearn"``).
        package: the distribution's name (``"scikit-learn"``).
        extra: the extra of lightning-liegg that installs it (``"datasets"``).
        purpose: what needs it, for the error message.
    """

    module: str
    package: str
    extra: str
    purpose: str

    def __bool__(self) -> bool:
        """Whether the module can be imported."""
        try:
            importlib.import_module(self.module)
        except ImportError:
            return False
        return True

    def require(self) -> ModuleType:
        """Import the module, or raise a :class:`LieGGError` naming the extra to install."""
        try:
            return importlib.import_module(self.module)
        except ImportError as err:
            raise LieGGError(
                f"Expected {self.package} for {self.purpose}, but it is not installed "
                f"({type(err).__name__}). Install it with: "
                f"pip install 'lightning-liegg[{self.extra}]'"
            ) from err


SKLEARN = Requirement("sklearn", "scikit-learn", "datasets", "the bundled digits loader")
JSONARGPARSE = Requirement(
    "jsonargparse", "jsonargparse", "cli", "the replay command line (python -m ...replay)"
)
