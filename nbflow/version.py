"""nbflow's version, for every layer that reports it (the package root re-exports it)."""

__version__ = "0.1.0"
