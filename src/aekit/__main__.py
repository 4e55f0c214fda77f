"""``python -m aekit``: the aekit command line (as the ``aekit`` script)."""

import sys

from aekit.console import main

sys.exit(main())
