"""`python -m nasviz ...`"""

import os
import sys

try:
    from nasviz.cli import main
except KeyboardInterrupt:  # Ctrl-C while the command line starts: as at any other moment, one line and 130
    try:
        from nasviz.options import report  # under a launcher: once, not by every process

        report("nasviz: interrupted")
    except BaseException:
        if os.environ.get("WORLD_SIZE", "1") == "1":
            print("nasviz: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
