"""``python -m cnnumpy``: the same as the ``cnnumpy`` command."""

import sys

from cnnumpy.cli import main

sys.exit(main())
