"""Everything that publishes source events and feedback into meander."""

from producers.synthetic import CONCEPTS, DriftingStream, publish_stream

__all__ = ["CONCEPTS", "DriftingStream", "publish_stream"]
