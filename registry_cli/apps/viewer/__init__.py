"""`nearai view`: a local, read-only web app over the registry and this machine's suite runs.

- ``web``: the Flask app (routes, security headers); ``server``: waitress, bound to loopback by default;
  ``links``: the running viewer's URL for terminal commands to print;
- what the pages show, as data: ``tables`` (the evaluation table's pivot, filtered, sorted, paged), ``datums`` (an
  evaluation's per-datum results and one datum's record) over ``solutions`` (an index of a solutions file made
  without parsing it), ``compare`` (paired differences and flips), ``runs`` (suite runs and live progress),
  ``entries`` (registry entries, versions, files); ``charts``: SVG error bars and forest plots.
"""

__all__ = ["charts", "compare", "datums", "entries", "links", "runs", "server", "solutions", "tables", "web"]
