"""Talking to the model under test: the completion client with retries (``client``), keys, credentials and
redaction (``credentials``), tokens and cost (``usage``), the HTTP pool of the direct path (``http``), litellm's
request translation sent by that pool (``translated``), and the per-datum record of completions that lets a run be
graded again without the model (``transcript``)."""

__all__ = ["client", "credentials", "http", "transcript", "translated", "usage"]  # the modules other packages may import
