"""``python -m permopt``: the same command line as the ``permopt`` script."""
import sys

from .cli import main

sys.exit(main())
