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


def _launched_group() -> bool:
    """Whether this process is one of a search's several, with the group the search created (torch is imported
    only where a search ran)."""
    distributed = sys.modules.get("nasviz.train.distributed")
    return distributed is not None and distributed.created()


try:
    code = main()
except Exception:
    if not _launched_group():
        raise
    import traceback

    traceback.print_exc()
    code = 1
if _launched_group():  # ends it now, without PyTorch's teardown of the group (see `end_process`)
    sys.modules["nasviz.train.distributed"].end_process(code)
sys.exit(code)
