import os

import hypothesis

try:  # optional extra; tests that need it use importorskip
    import jax
except ImportError:  # pragma: no cover
    jax = None
else:
    jax.config.update("jax_enable_x64", True)

hypothesis.settings.register_profile(
    "ci", deadline=None, print_blob=True, database=None, derandomize=True, max_examples=60
)
hypothesis.settings.register_profile("dev", deadline=None, max_examples=300)
# random (not derandomised), many examples: run once by hand to look for what `ci` misses,
#   SDTHEORY_HYPOTHESIS_PROFILE=thorough pytest -p no:randomly tests/core tests/theory ...
hypothesis.settings.register_profile(
    "thorough", deadline=None, print_blob=True, database=None, max_examples=2000
)
hypothesis.settings.load_profile(os.environ.get("SDTHEORY_HYPOTHESIS_PROFILE", "ci"))
