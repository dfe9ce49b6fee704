"""The autodiff rules of the row engine (private).

* :mod:`.isolation`: ``isolated()``, the analysis without side effects (modes, RNG, autograd,
  fused kernels);
* :mod:`.fallback`: auto mode's fall-back from forward to reverse differentiation, remembered
  per model;
* :mod:`.constant_weights`: lean forward-mode rules for layers whose weights are constants;
* :mod:`.memory`: CPU sub-batches, from a one-sample probe of the largest temporary.
"""
