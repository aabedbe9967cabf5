"""nearai: a content-addressed registry and a cached benchmark runner for models and agents."""

__version__ = "0.1.0"

__all__ = ["__main__", "apps", "caches", "core", "engine", "errors", "shell"]  # the modules other packages may import
