"""The version of nasviz (its own module, so the engine can record it without importing the package's front)."""

__version__ = "0.1.0"
