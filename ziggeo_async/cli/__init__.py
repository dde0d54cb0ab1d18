"""The ``ziggeo-async`` command line; ``main(argv)`` returns the exit code."""

from ._main import build_parser, main

__all__ = ["build_parser", "main"]
