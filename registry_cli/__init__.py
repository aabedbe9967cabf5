"""nearai: a content-addressed registry and a cached benchmark runner for models and agents."""

__version__ = "0.1.0"
