"""Helpers for bench scripts: a fake OpenAI server in its own process, a throwaway NEARAI_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The processes a bench times run as installed users' do, with bytecode caches: where the environment forbids writing
# them, every CLI process would compile the project's modules from source again (~35 ms of each start-up here).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def start_server(latency: float, pin: bool = False) -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process. ``pin``: the server on the last core, this process on the others, so
    the floor and the measured run get the same CPU whatever else the machine does."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.openai_server", str(latency)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    cores = sorted(os.sched_getaffinity(0))
    if pin and len(cores) >= 2:
        os.sched_setaffinity(proc.pid, {cores[-1]})
        os.sched_setaffinity(0, set(cores[:-1]))
    return proc, proc.stdout.readline().strip()


def fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="nearai-bench-"))
    os.environ["NEARAI_HOME"] = str(home)
    os.environ["NEARAI_NAMESPACE"] = "bench"
    os.environ.pop("NEARAI_STORE", None)
    return home
