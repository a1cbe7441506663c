"""The HTTP service's routes, one module per resource. :data:`API_ROUTERS` are mounted under
``/v1`` in this order (the order of the OpenAPI document), the dashboard's router at the root.
The plumbing they share (auth, limits, bodies, live feeds, the index) sits beside this package.
"""

from meander.services.routes import (
    alerts,
    batch,
    dashboard,
    feeds,
    models,
    predict,
    predictions,
    publish,
    streams,
    subscriptions,
)

__all__ = ["API_ROUTERS", "dashboard"]

API_ROUTERS = (
    publish.router,
    predict.router,
    predictions.router,
    feeds.router,
    batch.router,
    alerts.router,
    subscriptions.router,
    models.router,
    streams.router,
)
