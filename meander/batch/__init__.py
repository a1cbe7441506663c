"""Batch serving (``meander predict``): a CSV or Parquet file scored in chunks
(:mod:`meander.batch.score`) with a registry or exported model (:mod:`meander.batch.model`),
written whole or not at all (:mod:`meander.batch.output`)."""

from meander.batch.model import ServingModel, load_serving_model, open_registry
from meander.batch.output import BatchError
from meander.batch.score import BatchResult, model_task, score_file

__all__ = [
    "BatchError",
    "BatchResult",
    "ServingModel",
    "load_serving_model",
    "model_task",
    "open_registry",
    "score_file",
]
