"""The learner component (:mod:`meander.consumers.learner.learner`) and its helpers: the join of
late labels (``join``), learning one label without I/O (``learning``), its inputs read in order
(``learner_inputs``), its checkpoint (``checkpoint``) and its side of the model lifecycle
(``lifecycle``)."""

from meander.consumers.learner.learner import Learner
from meander.consumers.learner.learning import LearnerState

__all__ = ["Learner", "LearnerState"]
