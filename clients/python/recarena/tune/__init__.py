"""recarena-tune: hyperparameter search for recarena-meta on Optuna (docs/tune.md).

    python -m recarena.tune search --space space.toml --trials 30 --out tune-out
    python -m recarena.tune pbt --space space.toml --population 8 --ready 10 --out pbt-out

Modules: space (search-space files), runner (one recarena-meta subprocess and its JSONL
metrics), search (the Optuna study: samplers, ASHA / Hyperband, budget, resumption), pbt
(population-based training), report (table, JSON, plots, best.cfg), cli (the command line).
Importing the package imports Optuna only through its submodules.
"""
from .space import Dim, Space, SpaceError, load_space, parse_space  # noqa: F401
