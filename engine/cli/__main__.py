"""``python -m engine.cli`` (used with ``torchrun -m engine.cli train lm ...``)."""

from __future__ import annotations

import sys

from engine.cli.main import main

sys.exit(main())
