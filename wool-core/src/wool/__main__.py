"""``python -m wool``: the ``wool`` command (see ``wool --help``)."""

import sys

from wool._cli import main

if __name__ == "__main__":
    sys.exit(main())
