"""``python -m serving``: the server, with nearline's errors as one line (like the CLI)."""

from __future__ import annotations

import sys

from schemas.errors import NearlineError
from serving.command import main

try:
    main()
except NearlineError as exc:
    print(f"nearline: error: {exc}", file=sys.stderr)
    sys.exit(1)
