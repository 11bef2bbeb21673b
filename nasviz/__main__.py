"""`python -m nasviz ...`"""

import sys

try:
    from nasviz.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line starts: as at any other moment, one line and 130
    print("nasviz: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
