"""Talking to the model under test: the completion client with retries (``client``), the model's spec, backend and
the checks made before a run (``endpoints``), keys, credentials and redaction (``credentials``), tokens and cost
(``usage``), the HTTP pool of the direct path (``http``), litellm's request translation sent by that pool for
OpenAI-shaped providers (``translated``) and for Anthropic's and Gemini's own formats (``providers``), and the
per-datum record of completions that lets a run be graded again without the model (``transcript``)."""

# the modules other packages may import
__all__ = ["client", "credentials", "endpoints", "http", "providers", "transcript", "translated", "usage"]
