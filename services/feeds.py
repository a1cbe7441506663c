"""Routes under construction in this change (filled by its own commit)."""

from __future__ import annotations

from fastapi import APIRouter

__all__ = ["router"]

router = APIRouter()
