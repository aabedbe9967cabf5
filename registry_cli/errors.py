"""One exception hierarchy. Every error a user can cause is a NearaiError whose message is one line with a hint."""

from __future__ import annotations

from typing import Any


class NearaiError(Exception):
    """Base of all user-facing errors: ``str(err)`` is a one-line message that says what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(NearaiError):
    """Bad command-line input: unknown flag, wrong type, missing argument."""

    exit_code = 2


class InvalidNameError(UsageError):
    """A namespace, name, version or path component that is not allowed."""


class MetadataError(NearaiError):
    """metadata.json is missing or malformed."""


class EntryNotFoundError(NearaiError):
    """The registry has no such entry or version."""


class VersionExistsError(NearaiError):
    """A create-only publish found the version already taken by someone else."""


class IntegrityError(NearaiError):
    """Downloaded bytes do not match the manifest's sha256, or a manifest is corrupt."""


class StoreError(NearaiError):
    """The object store failed: unreachable, denied, missing bucket, too many retries."""


class NotFoundInStore(Exception):
    """Internal: a key is absent from the store (callers translate it into a NearaiError)."""


class DatasetError(NearaiError):
    """The dataset cannot be loaded or does not fit the solver."""


class SolverError(NearaiError):
    """Unknown solver or solver misconfiguration."""


class InferenceError(NearaiError):
    """Model/agent configuration errors detected before running (not per-datum failures)."""


class AgentError(NearaiError):
    """An agent run by `agent task` failed (crashed, timed out, broke the protocol)."""


class JobError(NearaiError):
    """A Ray job could not be submitted or followed."""


class SandboxUnavailable(NearaiError):
    """The sandbox could not start the code (no process or uid to spare, a failed mount): the machine's fault, so
    the datum is an error, retried on the next run, never a verdict."""


class InferenceFailure(NearaiError):
    """A completion failed after all retries; the datum is recorded as an error (never cached)."""


class EmptyAnswer(InferenceFailure):
    """The model kept answering with nothing (null or blank content) after all retries: no verdict, counted apart
    as ``empty`` and never cached."""


class AgentFailure(NearaiError):
    """The agent crashed, broke the protocol or timed out: the datum is an error (not cached). ``trace``: what the
    agent did until then (an ``AgentTrace``)."""

    def __init__(self, message: str, trace: Any = None) -> None:
        super().__init__(message)
        self.trace = trace


class ScenarioFailed(NearaiError):
    """The scenario crashed, timed out or gave no verdict: an error, not a failure."""


class RecordRefused(NearaiError):
    """The run cannot stand as an evaluation (e.g. no datum has a verdict)."""

    exit_code = 3


class SuiteConfigError(UsageError):
    """The suite config is invalid; the message names the file, line and key."""


class HttpError(Exception):
    """Internal: a connection failed, broke mid-response or timed out (the inference client retries it)."""


class UnsafeCacheValue(Exception):
    """Internal: a cache row that is not JSON (e.g. a planted pickle). It is treated as a miss, never deserialized."""
