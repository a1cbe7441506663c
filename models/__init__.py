"""River models for meander: safe specs, the model registry, evaluation and export.

- :mod:`meander.models.specs` builds River estimators and drift detectors from spec text (such as
  ``"preprocessing.StandardScaler | linear_model.LinearRegression"``) or TOML, without ``eval``.
- :mod:`meander.models.registry` keeps a stream's versions in Redis: signed model snapshots, the
  champion and challenger aliases, lineage, and the reasons behind every status change.
- :mod:`meander.models.signing` signs model blobs so nothing unverified is ever unpickled;
  :mod:`meander.models.blobs` pickles them without the random states no tree reads.
- :mod:`meander.models.export` writes a version as a plain pickle that needs only River to load.
- :mod:`meander.models.evaluation` scores models, :mod:`meander.models.race` races a challenger
  against the champion, :mod:`meander.models.validation` gates promotions and
  :mod:`meander.models.inference` runs predictions.
"""

from meander.models.export import export_model, load_exported
from meander.models.registry import Registry
from meander.models.signing import Signer, signer_for
from meander.models.specs import build_detector, build_model, check_task, spec_text
from meander.models.versions import Heads, ModelVersion

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
