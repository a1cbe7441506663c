"""The HTTP service: health, readiness and metrics today; the full API grows here."""

from services.app import create_app

__all__ = ["create_app"]
