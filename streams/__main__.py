"""``python -m streams``: run the worker (what ``nearline worker`` runs)."""

from __future__ import annotations

import sys

from schemas.errors import NearlineError
from streams.command import main

try:
    sys.exit(main())
except NearlineError as exc:
    print(f"nearline: error: {exc}", file=sys.stderr)
    sys.exit(2)
