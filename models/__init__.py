"""River models for meander: safe specs, the model registry, evaluation and export.

- :mod:`models.specs` builds River estimators and drift detectors from spec text (such as
  ``"preprocessing.StandardScaler | linear_model.LinearRegression"``) or TOML, without ``eval``.
- :mod:`models.registry` keeps a stream's versions in Redis: signed model snapshots, the champion
  and challenger aliases, lineage, and the reasons behind every status change.
- :mod:`models.signing` signs model blobs so nothing unverified is ever unpickled.
- :mod:`models.export` writes a version as a plain pickle that needs only River to load.
- :mod:`models.evaluation`, :mod:`models.validation` and :mod:`models.inference` score models,
  gate promotions and run predictions.
"""

from models.export import export_model, load_exported
from models.registry import Registry
from models.signing import Signer, signer_for
from models.specs import build_detector, build_model, check_task, spec_text
from models.versions import Heads, ModelVersion

__all__ = [
    "Heads",
    "ModelVersion",
    "Registry",
    "Signer",
    "build_detector",
    "build_model",
    "check_task",
    "export_model",
    "load_exported",
    "signer_for",
    "spec_text",
]
