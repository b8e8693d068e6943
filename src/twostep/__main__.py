"""`python -m twostep`: the `twostep` command (how `twostep serve` starts its queue worker)."""

import sys

from .cli import main

sys.exit(main())
