"""Helpers for bench scripts: a fake OpenAI server in its own process, a throwaway NEARAI_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.openai_server", str(latency)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="nearai-bench-"))
    os.environ["NEARAI_HOME"] = str(home)
    os.environ["NEARAI_NAMESPACE"] = "bench"
    os.environ.pop("NEARAI_STORE", None)
    return home
