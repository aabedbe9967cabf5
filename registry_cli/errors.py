"""One exception hierarchy. Every error a user can cause is a NearaiError whose message is one line with a hint."""

from __future__ import annotations


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
