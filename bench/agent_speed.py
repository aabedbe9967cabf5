"""What running nearai agents costs: a benchmark of N addition datums answered by an upstream-style agent (each task
its own sandboxed process with the `nearai` package) against the same run answered by the model directly (the
floor: no agent); and an agent's declared requirements, installed once, against their reuse.

    python bench/agent_speed.py [N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, fresh_home, start_server

from tests.wheels import tiny_wheel  # found once _common has put the project on sys.path

AGENT = '''
from nearai.agents.environment import Environment


class Agent:
    def __init__(self, env: Environment):
        self.env = env

    def run(self):
        self.env.add_system_log("answering")
        self.env.add_reply(self.env.completion(self.env.list_messages()))


if globals().get("env", None):
    Agent(globals().get("env")).run()
'''


def cli(*args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "registry_cli", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    fresh_home()
    work = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    from examples.make_addition_dataset import build

    data = build(work / "3_digit_addition", size=n)
    agent = work / "agent"
    agent.mkdir()
    (agent / "agent.py").write_text(AGENT)
    (agent / "metadata.json").write_text(json.dumps({"name": "bench-agent", "version": "0.0.1", "category": "agent",
                                                     "details": {"agent": {"defaults": {}}}}))
    server, url = start_server(0.0)
    try:
        base = (str(data), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={url}", "--quiet",
                "--max_concurrent=8", "--force")
        floor = cli("benchmark", "run", *base)
        agents = cli("benchmark", "run", *base, f"--agent={agent}")
        print(f"{n} datums, 8 at once: model directly {floor:.2f} s, through the agent {agents:.2f} s "
              f"({agents / floor:.2f}x; {(agents - floor) / n * 1000:.0f} ms more a task)")
        wheel = tiny_wheel(work, "benchdep", "VALUE = 1\n")
        (agent / "requirements.txt").write_text(f"{wheel}\n")
        (agent / "agent.py").write_text("import benchdep\n" + AGENT)
        task = ("agent", "task", str(agent), "add the following numbers together: 1 + 2", "--model=fake",
                f"--api_base={url}")
        first = cli(*task)
        again = cli(*task)
        print(f"agent task with requirements: first (pip install) {first:.2f} s, again (reused) {again:.2f} s "
              f"({again / first:.2f}x)")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
