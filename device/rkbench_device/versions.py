"""Versions of installed packages without importing them."""

from __future__ import annotations

import importlib.util
from typing import Optional, Sequence


def dist_version(names: Sequence[str]) -> Optional[str]:
    """The installed version of the first distribution found among `names`.

    importlib.metadata first; pkg_resources only when importlib.metadata is missing or
    fails for another reason than "not installed" (seen with odd 3.8 vendor images).
    """
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        metadata = None  # type: ignore[assignment]
    for name in names:
        if metadata is not None:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
            except Exception:
                pass
        version = _pkg_resources_version(name)
        if version is not None:
            return version
    return None


def _pkg_resources_version(name: str) -> Optional[str]:
    try:
        import pkg_resources  # type: ignore[import]

        return str(pkg_resources.get_distribution(name).version)
    except Exception:
        return None


def module_found(name: str) -> bool:
    """True when `import name` would find the module (it is not imported; for a dotted
    name the parent package is)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def numpy_version() -> Optional[str]:
    try:
        import numpy

        return str(numpy.__version__)
    except Exception:
        return None
