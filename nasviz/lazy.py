"""Package re-exports imported on first use (PEP 562), so that importing a layer's package stays cheap: its
torch-heavy modules load only when one of their names is asked for."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` for `package` that returns `exports[name]`'s attribute `name` of the submodule
    `package.exports[name]`; any other name is an AttributeError (so `from package import submodule` still works)."""

    def __getattr__(name: str) -> Any:
        if name in exports:
            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
