import sys

from nasviz.table.cli import main

sys.exit(main())
