"""Design exploration: a constrained Optuna search over AttendNeXt specs (`search`), its design space (`space`) and
its reports (`report`). See `search` for the procedure."""

from attendnext_keras.experiments.explore.report import ExploreResult, select_best, write_report  # noqa: F401
from attendnext_keras.experiments.explore.search import (Evaluator, evaluated_trials, evaluator_for,  # noqa: F401
                                                         explore, open_study)
from attendnext_keras.experiments.explore.space import (Limits, SearchSpace, check_candidate, netscore,  # noqa: F401
                                                        netscore_of, sample_spec)
