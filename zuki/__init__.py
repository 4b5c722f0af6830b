"""zuki: a work-stealing async runtime for free-threaded CPython."""

from zuki._version import __version__

__all__ = ["__version__"]
