"""Lazy attribute loading for package ``__init__`` modules (PEP 562)."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def attach(package: str, names: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Return ``__getattr__``, ``__dir__`` and ``__all__`` for a package.

    ``names`` maps each public name to the submodule (relative to ``package``) that
    defines it, so ``import skstrf`` stays cheap and torch is imported only when an
    estimator is actually used.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            module = importlib.import_module(f"{package}.{names[name]}")
            return getattr(module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(names)

    return __getattr__, __dir__, sorted(names)
