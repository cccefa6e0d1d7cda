"""``python -m commands`` (used with ``torchrun -m commands train lm ...``)."""

from __future__ import annotations

import sys

from commands.main import main

sys.exit(main())
