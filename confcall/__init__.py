"""confcall: a conference line on one Bandwidth number."""

__version__ = "0.1.0"
