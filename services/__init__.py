"""The HTTP service (``meander serve``): publish events and feedback, get predictions (by id, SSE,
WebSocket, sync, batch), alerts and webhook subscriptions, models and their decisions, stream
profiles, the dashboard, health and metrics."""

from meander.services.app import create_app

__all__ = ["create_app"]
