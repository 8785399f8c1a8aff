"""levekår — living-conditions and segregation statistics for small city areas (NOU 2020:16)."""

__version__ = "0.1.0"
METHOD_VERSION = "0.1"
