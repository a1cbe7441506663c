"""The trainer component (:mod:`meander.consumers.trainer.trainer`): answers retrain requests with
challengers built on the replayed recent window (``retraining``) and judges their races."""

from meander.consumers.trainer.trainer import Trainer

__all__ = ["Trainer"]
