"""The shell: the ``nearai`` command line. Each command parses its flags, calls one library function and renders
what it returns; nothing below imports it.

- ``cli``: the entry point, help and flag checks; ``commands``: how a command is declared (its flags are declared
  and checked by ``core.flags`` before it runs); one module per command group: ``registry_cmds``,
  ``benchmark_cmds``, ``evaluation_cmds`` (with ``scenario``), ``suite_cmds``, ``agent_cmds`` (with ``config`` and
  the commands without a group); ``reference``: docs/cli.md, generated from the declarations;
- ``render``, ``render_evaluation`` and ``render_suites``: tables, progress and summaries (rich), the only place
  that prints.
"""

__all__ = ["cli", "reference", "render_evaluation"]  # the modules other packages may import
