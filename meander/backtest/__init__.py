"""``meander backtest``: a labelled file replayed through the real closed loop
(:mod:`meander.backtest.run`), the stream it runs as (:mod:`meander.backtest.stream`), what it
served and decided (:mod:`meander.backtest.report`) and its picture
(:mod:`meander.backtest.plot`)."""

from meander.backtest.plot import plot_report
from meander.backtest.report import Report, build_report, summary
from meander.backtest.run import BacktestRun, run_backtest
from meander.backtest.stream import resolve_stream

__all__ = [
    "BacktestRun",
    "Report",
    "build_report",
    "plot_report",
    "resolve_stream",
    "run_backtest",
    "summary",
]
