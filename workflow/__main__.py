"""`python -m workflow`: the command line (workflow.cli)."""

import sys

from workflow.cli import main

sys.exit(main())
