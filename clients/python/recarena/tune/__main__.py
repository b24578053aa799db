"""`python -m recarena.tune`: the recarena-tune command line (docs/tune.md)."""
import sys

from .cli import main

sys.exit(main())
