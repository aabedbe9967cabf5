"""A prepared task's container image and what runs in its containers.

The image is built from a private copy of the task folder (overrides applied), tagged by that copy's content
(``localhost/nearai-task-<hash>``): rollouts of one task share an identical image, different tasks never share a
tag, and a build of a tag happens once at a time on the machine (a thread lock, and a file lock across processes).
A FROM image that is not on this machine is a one-line error.

`AGENT_SH` runs a CLI agent in the task's repository (``/app/repo``, as the upstream images lay it out) and leaves
``diff.patch`` (against a baseline commit made first: `BASELINE_SH`, then `DIFF_SH`) and the agent's log in the
run's folder (a nearai agent runs between the same two steps, in the agent host); `GRADE_PY` applies a
diff in a fresh container, writes the task's test scripts and runs each with pytest.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from registry_cli.core import env
from registry_cli.core.content import sha256_hex
from registry_cli.errors import SandboxUnavailable, UsageError

_LOCKS: dict[str, threading.Lock] = {}
AGENT_EXIT = "NEARAI AGENT EXITED "
GRADE_MARKER = "NEARAI_GRADE "

# before the agent, in the task's repository: the removals the overrides ask for, and a baseline commit
BASELINE_SH = """cd /app/repo 2>/dev/null || { echo "nearai: the image has no /app/repo" >&2; exit 97; }
git config --global --add safe.directory '*'
git config --global user.email nearai@localhost
git config --global user.name nearai
if [ -f /app/remove_repo_paths.txt ]; then
  while IFS= read -r p; do [ -n "$p" ] && rm -rf "/app/repo/$p"; done < /app/remove_repo_paths.txt
fi
git add -A >/dev/null 2>&1
git commit -q --allow-empty -m "nearai baseline" >/dev/null 2>&1
git rev-parse HEAD > /nearai/work/.baseline
"""

# after the agent: what it changed since the baseline, as a patch in the run's folder
DIFF_SH = """cd /app/repo && git add -A >/dev/null 2>&1
git diff --cached --binary "$(cat /nearai/work/.baseline)" > /nearai/work/diff.patch
"""

AGENT_SH = f"""set -u
OUT=/nearai/work
{BASELINE_SH}sh -c "$NEARAI_AGENT_COMMAND" > "$OUT/agent.log" 2>&1
RC=$?
echo "{AGENT_EXIT}$RC"
{DIFF_SH}exit 0
"""

GRADE_PY = f"""import json, os, subprocess, sys
out = "/nearai/work"
os.chdir("/app/repo")
subprocess.run(["git", "config", "--global", "--add", "safe.directory", "*"])
patch = os.path.join(out, "diff.patch")
applied = True
if os.path.getsize(patch) > 0:
    applied = subprocess.run(["git", "apply", "--whitespace=nowarn", patch]).returncode == 0
    if not applied:
        applied = subprocess.run(["git", "apply", "--3way", patch]).returncode == 0
results = {{}}
for n, test in enumerate(json.load(open(os.path.join(out, "tests.json")))):
    path = os.path.realpath(os.path.join("/app/repo", test["path"]))
    if not path.startswith("/app/repo/"):
        results[test["path"]] = [False, "the test's path leaves the repository"]
        continue
    os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(test.get("content", ""))
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", path, "-q", "--tb=short", "-p", "no:cacheprovider"],
                              capture_output=True, text=True, timeout=float(os.environ.get("NEARAI_TEST_TIMEOUT", "60")))
        results[test["path"]] = [done.returncode == 0, (done.stdout + done.stderr)[-4000:]]
    except subprocess.TimeoutExpired:
        results[test["path"]] = [False, "timed out"]
print({GRADE_MARKER!r} + json.dumps({{"applied": applied, "tests": results}}))
"""


def image_tag(context_digest: str) -> str:
    return f"localhost/nearai-task-{context_digest[:16]}"


def _present(kind: str, tag: str) -> bool:
    import subprocess

    done = subprocess.run([kind, "image", "inspect", tag], capture_output=True, env=_env(), timeout=120)
    return done.returncode == 0


def _env() -> dict[str, str]:
    return {**env.container_settings(), "PATH": env.host_path()}


@contextlib.contextmanager
def _machine_lock(tag: str) -> Iterator[None]:
    """One build of ``tag`` at a time on this machine, across processes (two suites, Ray workers)."""
    import fcntl
    import tempfile

    folder = Path(tempfile.gettempdir()) / "nearai-image-locks"
    folder.mkdir(mode=0o700, exist_ok=True)
    with open(folder / f"{sha256_hex(tag.encode())[:24]}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(kind: str, context: Path, tag: str, timeout: float = 1800.0) -> str:
    """Build ``tag`` from ``context`` unless present; returns the build log's tail. Raises `UsageError` for a FROM
    image that is not here (the task cannot run on this machine until it is), `SandboxUnavailable` otherwise."""
    import subprocess

    with _LOCKS.setdefault(tag, threading.Lock()), _machine_lock(tag):
        if _present(kind, tag):
            return ""
        try:
            done = subprocess.run([kind, "build", "--network=none", "-t", tag, str(context)], capture_output=True,
                                  text=True, env=_env(), timeout=timeout)
        except (OSError, subprocess.SubprocessError) as e:
            raise SandboxUnavailable(f"{kind} build failed: {e}", f"check {kind}; the run is retried next time") from None
        log = (done.stdout + done.stderr)[-4000:]
        if done.returncode != 0:
            missing = _missing_base(kind, context, log)
            if missing:
                raise UsageError(f"the task's FROM image {missing} is not on this machine",
                                 f"build or import it first ({kind} import rootfs.tar {missing}); no registry is used")
            last = (log.strip().splitlines() or ["build failed"])[-1][:300]
            raise SandboxUnavailable(f"{kind} build of the task image failed: {last}", "see the task's Dockerfile")
        return log


def _missing_base(kind: str, context: Path, log: str) -> str:
    """The FROM image a failed build lacked ("" when the build failed for another reason)."""
    said = log.lower()
    if not any(word in said for word in ("pull", "not found", "unknown", "resolve")):
        return ""
    return next(iter(missing_bases(kind, context / "Dockerfile")), "")


def missing_bases(kind: str, dockerfile: Path) -> list[str]:
    """The FROM images of ``dockerfile`` that are not on this machine (build stages and ``$ARG`` images aside)."""
    stages: set[str] = set()
    missing: list[str] = []
    for line in dockerfile.read_text(errors="replace").splitlines():
        words = [w for w in line.split() if not w.startswith("--")]
        if len(words) < 2 or words[0].upper() != "FROM":
            continue
        image = words[1]
        if len(words) >= 4 and words[2].upper() == "AS":
            stages.add(words[3].lower())
        if image.lower() in stages or "$" in image or image == "scratch" or image in missing:
            continue
        if not _present(kind, image):
            missing.append(image)
    return missing


def check_bases(kind: str, folders: list[Path]) -> None:
    """Before a run: every task's FROM image is here, else one error naming them all (no registry is used)."""
    missing = sorted({image for folder in folders for image in missing_bases(kind, folder / "Dockerfile")})
    if missing:
        raise UsageError(f"the tasks' FROM image{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                         f"{'are' if len(missing) > 1 else 'is'} not on this machine",
                         f"build or import {'them' if len(missing) > 1 else 'it'} first ({kind} import rootfs.tar "
                         f"{missing[0]}); no registry is used")


async def build_async(kind: str, context: Path, tag: str) -> str:
    return await asyncio.to_thread(build, kind, context, tag)


def context_digest(folder: Path) -> str:
    """The build context's content: every file's relative path and bytes."""
    import hashlib

    digest = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            digest.update(p.relative_to(folder).as_posix().encode() + b"\0" + sha256_hex(p.read_bytes()).encode())
    return digest.hexdigest()


__all__ = ["AGENT_EXIT", "AGENT_SH", "BASELINE_SH", "DIFF_SH", "GRADE_MARKER", "GRADE_PY", "build_async", "check_bases", "context_digest",
           "image_tag", "missing_bases"]
