"""``python -m aekit.cli``: the aekit command line."""

import sys

from aekit.cli import main

sys.exit(main())
