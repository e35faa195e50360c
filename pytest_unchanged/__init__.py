"""pytest-unchanged: skip tests whose declared inputs have not changed, by git object ID."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

__all__ = ["__version__"]
