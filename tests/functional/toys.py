"""The exactly invariant toys the tests use are the ones shipped for users."""

from lightning_liegg.testing import (
    bordered_images,
    lorentz_invariant,
    o5_invariant,
    shear_invariant,
)

o5_target = o5_invariant
row_sum_functional = shear_invariant

__all__ = ["bordered_images", "lorentz_invariant", "o5_target", "row_sum_functional"]
