"""The claim registry, the one decision rule, check results and the report writer.

A *claim* is one prediction of a theory, stated so that a run can confirm or refute it. Theory
modules compute predictions; sims (and `sdtheory validate`) measure them and return
`CheckResult`s; `write_report` puts prediction, measurement, band and verdict side by side.

- Deterministic checks (closed form against brute force, a solver, an identity):
  `check_close`, `check_bound`, `check_true`.
- Everything measured with noise goes through the one decision rule (`sdtheory.claims._rule`):
  `check_paired` (paired seeds), `check_mean` (one value per seed), `check_bootstrap`
  (independent units), `check_band` (a band computed elsewhere), `check_all` (a claim
  that holds only if every part holds), `check_consistent` (noisy estimates against exact
  predictions, max |z| with a Bonferroni bound), and `binned` for curves.
  Verdicts: held, failed, inconclusive, or `needs-scale` (cannot decide at this scale; listed,
  not counted). A non-finite measurement is failed.

Claims are declared in the light modules of `sdtheory.claims.catalog` (no torch, JAX or
matplotlib), so `sdtheory list` shows every claim; sims and experiments import them from there.
`simio.save_checks` writes results to `checks.json`, which `sdtheory reproduce` reads back.
"""

from ._registry import REGISTRY as REGISTRY
from ._registry import Claim as Claim
from ._registry import Source as Source
from ._registry import SourceKind as SourceKind
from ._registry import claim as claim
from ._registry import register as register
from ._report import load_checks as load_checks
from ._report import summary_line as summary_line
from ._report import verdict_counts as verdict_counts
from ._report import write_report as write_report
from ._results import VERDICTS as VERDICTS
from ._results import CheckResult as CheckResult
from ._results import Verdict as Verdict
from ._results import check_bound as check_bound
from ._results import check_close as check_close
from ._results import check_true as check_true
from ._results import make_result as make_result
from ._results import needs_scale as needs_scale
from ._rule import RULE as RULE
from ._rule import Band as Band
from ._rule import BinEstimate as BinEstimate
from ._rule import Rule as Rule
from ._rule import binned as binned
from ._rule import bonferroni as bonferroni
from ._rule import bootstrap_band as bootstrap_band
from ._rule import check_all as check_all
from ._rule import check_band as check_band
from ._rule import check_bootstrap as check_bootstrap
from ._rule import check_consistent as check_consistent
from ._rule import check_mean as check_mean
from ._rule import check_paired as check_paired
from ._rule import decide as decide
from ._rule import replicate_band as replicate_band
from ._rule import t_band as t_band
