"""JAX: trained networks and differentiable simulations that check theory against runs (`jax` extra).

Library code never flips `jax_enable_x64`; sims and tests do.
"""
