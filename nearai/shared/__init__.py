"""Upstream's ``nearai.shared``: the names agents import from it (standard library only)."""

__all__ = ["models"]
