"""The long-running components, one subpackage each, every one runnable as ``meander run NAME``.

:mod:`~meander.consumers.predictor`, :mod:`~meander.consumers.learner`,
:mod:`~meander.consumers.trainer`, :mod:`~meander.consumers.monitor` and
:mod:`~meander.consumers.notifier` each hold a component with its own helpers; the sixth, the
producer, is :mod:`meander.producers.runner`. :mod:`~meander.consumers.assembly` is the one
builder that starts any of them (``meander run``, ``meander serve --with``), and
:mod:`~meander.consumers.loop` steps one stream's loop in one thread (backtest, demo,
benchmarks). :data:`COMPONENTS` names them all, as docker-compose.yml does.
"""

from __future__ import annotations

from meander.vocabulary import COMPONENTS

__all__ = ["COMPONENTS"]
