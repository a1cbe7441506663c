"""The ``meander`` command line: the commands (:mod:`meander.cli.app`), ``serve`` and ``keys``
(:mod:`meander.cli.serve`), and the options they share (:mod:`meander.cli.options`)."""

from meander.cli.app import app

__all__ = ["app"]
