"""Closed forms, one module per mathematical setting (numpy/scipy, float64).

`krr` (kernel self-distillation), `meta` (anchored recursion on the simplex), `paced`
(Beta-kernel weights and gradient SNR), `taid` (interpolated distillation and its schedule).
Import the modules directly: `from sdtheory.theory import krr`.
"""
