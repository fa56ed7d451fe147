"""Public test helpers: hypothesis strategies and dtype-keyed tolerances."""
