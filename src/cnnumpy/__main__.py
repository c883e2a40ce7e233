"""``python -m cnnumpy``: the same as the ``cnnumpy`` command."""

import sys

from cnnumpy._launch import main

sys.exit(main())
