"""What goes on a benchmark script's ``PYTHONPATH`` inside the sandbox: a compatible ``agbench`` package (this folder
itself is the path entry; nothing imports it as ``registry_cli...support``)."""

__all__ = ["agbench"]
