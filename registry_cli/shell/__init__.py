"""The shell: the ``nearai`` command line. Each command parses its flags, calls one library function and renders
what it returns; nothing below imports it.

- ``cli``: the entry point, help and flag checks; one module per command group (``registry_cmds``,
  ``benchmark_cmds``, ``evaluation_cmds``, ``suite_cmds``, ``agent_cmds``) built on ``commands`` (their flags are
  declared and checked by ``core.flags`` before a
  command runs); ``render`` and ``render_suites``: tables, progress and summaries (rich), the only place that
  prints.
"""
