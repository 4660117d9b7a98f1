"""Benchmark suites: every method on the same teacher, images, measurements and seeds.

``load_suite`` reads and checks a suite file; ``run_suite`` runs it (resumable, sharded under
torchrun) and writes the report; ``report_suite`` writes the report of the cells finished so far.
The command is ``ncvsd-bench``.
"""

from .methods import METHODS, DeepinvDenoiser, Models
from .runner import report_suite, run_suite
from .suite import Suite, SuiteError, load_suite

__all__ = ["METHODS", "DeepinvDenoiser", "Models", "Suite", "SuiteError", "load_suite", "report_suite", "run_suite"]
