"""meander: streaming MLOps for online models.

The core: configuration (:mod:`meander.config`), event contracts (:mod:`meander.events`), the
bus (:mod:`meander.bus`), the store (:mod:`meander.store`), the dead-letter topic
(:mod:`meander.deadletter`) and the command line (:mod:`meander.cli`).
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
