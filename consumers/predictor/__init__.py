"""The predictor component: scores a stream's events with the champion (and challengers in
shadow) and publishes the predictions (:mod:`meander.consumers.predictor.predictor`)."""

from meander.consumers.predictor.predictor import Predictor

__all__ = ["Predictor"]
