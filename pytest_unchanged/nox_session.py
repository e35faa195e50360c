"""Kept for users' noxfiles: ``from pytest_unchanged.nox_session import upstream_tip``.

The session lives in :mod:`pytest_unchanged.upstream.nox_session`.
"""

from __future__ import annotations

from .upstream.nox_session import upstream_refs, upstream_tip

__all__ = ["upstream_refs", "upstream_tip"]
