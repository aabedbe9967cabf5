"""A compatible ``agbench`` for benchmarks' ``custom_tabulate.py`` scripts (``from agbench.tabulate_cmd import
default_tabulate``), written by nearai: agbench itself is not on the package index. Standard library only; it runs
in the sandbox beside the script."""

__all__ = ["load_module", "tabulate_cmd"]
__version__ = "0.0.1-nearai"
