"""meander: streaming MLOps for online models.

The foundation lives here: configuration (:mod:`meander.config`), event contracts
(:mod:`meander.events`), topics and Redis keys (:mod:`meander.topics`, :mod:`meander.keys`), the
words the parts share (:mod:`meander.vocabulary`), the bus (:mod:`meander.bus`), the store
(:mod:`meander.store`), metrics (:mod:`meander.telemetry`), dead letters and logs. Above it:
:mod:`meander.models` and :mod:`meander.producers`, the components (:mod:`meander.consumers`),
the applications (:mod:`meander.backtest`, :mod:`meander.batch`, :mod:`meander.demo`), the
HTTP service (:mod:`meander.services`) and the command line (:mod:`meander.cli`). Imports run
only downwards; ``make lint`` checks it.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
