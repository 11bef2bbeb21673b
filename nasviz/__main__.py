"""`python -m nasviz ...`"""

import sys

from nasviz.cli import main

sys.exit(main())
