"""Thread and run modes, and the small typed shapes agents import from upstream's ``nearai.shared.models``."""

from __future__ import annotations

from enum import Enum
from typing import Any, Literal, TypedDict


class ThreadMode(Enum):
    """Where a child agent started with ``env.run_agent`` writes: this thread, a copy of it, or a new sub-thread."""

    SAME = 1
    FORK = 2
    CHILD = 3


class RunMode(Enum):
    """``WITH_CALLBACK``: upstream ran the parent again when the child finished; here the child runs to its end
    before ``run_agent`` returns, so both modes behave the same."""

    SIMPLE = 0
    WITH_CALLBACK = 1


class StaticFileChunkingStrategyParam(TypedDict, total=False):
    chunk_overlap_tokens: int
    max_chunk_size_tokens: int


class StaticFileChunkingStrategyObjectParam(TypedDict, total=False):
    static: StaticFileChunkingStrategyParam
    type: Literal["static"]


class AutoFileChunkingStrategyParam(TypedDict, total=False):
    type: Literal["auto"]


class ExpiresAfter(TypedDict, total=False):
    anchor: Literal["last_active_at"]
    days: int


class GitHubSource(TypedDict, total=False):
    type: Literal["github"]
    owner: str
    repo: str
    branch: str | None


class GitLabSource(TypedDict, total=False):
    type: Literal["gitlab"]
    owner: str
    repo: str
    branch: str | None


ChunkingStrategy = dict[str, Any]

__all__ = ["AutoFileChunkingStrategyParam", "ChunkingStrategy", "ExpiresAfter", "GitHubSource", "GitLabSource",
           "RunMode", "StaticFileChunkingStrategyObjectParam", "StaticFileChunkingStrategyParam", "ThreadMode"]
