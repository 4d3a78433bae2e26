"""``python -m anchoring.auditor verify|monitor ...``."""

import sys

from anchoring.auditor.cli import main

sys.exit(main())
