"""What prepared-task rollouts cost here: 2 tasks x 2 models x K rollouts in podman (each: the agent's container,
then a grading container), against the floor of the same number of bare containers (`podman run --rm IMAGE true`,
two per rollout, two at a time as the suite runs them); then the cached rerun and `suite eval` (grading the stored
diffs again) against the computed run.

    python bench/prepared_speed.py [K]

Needs podman and the tests' base image (localhost/nearai-test-base:2: run tests/test_prepared.py once to build it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import fresh_home, start_server

from tests.conftest import BASE_IMAGE, CONTAINERS_CONF  # found once _common has put the project on sys.path
from tests.test_prepared import META, prepared_task


def cli(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "registry_cli", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"nearai {' '.join(args)} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - t0


def main() -> None:
    k = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    fresh_home()
    root = Path(tempfile.mkdtemp(prefix="prepared-bench-"))
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    os.environ["CONTAINERS_CONF"] = str(root / "containers.conf")
    if subprocess.run(["podman", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
        sys.exit(f"{BASE_IMAGE} is not here: run `pytest tests/test_prepared.py` once to build it")
    server, url = start_server(0.0)
    try:
        for name in ("a", "b"):
            prepared_task(root / "tasks" / name, BASE_IMAGE, {**META, "task_id": f"bench-{name}-{time.time_ns()}"})
        tasks = "".join(f'\n[[tasks]]\nprepared_dir = "tasks/{n}"\nmodel = ["alpha", "beta"]\nrollouts = {k}\n'
                        for n in ("a", "b"))
        (root / "suite.toml").write_text(
            f'name = "bench"\nparallel = 2\n\n[defaults]\napi_base = "{url}"\nresults_dir = "{root / "runs"}"\n'
            f'agent_command = "python3 /app/agent.py {{prompt_file}}"\n{tasks}')
        computed = cli("suite", "run", str(root / "suite.toml"), cwd=root)
        cached = cli("suite", "run", str(root / "suite.toml"), cwd=root)
        regraded = cli("suite", "eval", "bench", "--latest", cwd=root)
    finally:
        server.terminate()
    rollouts = 4 * k

    def bare(_: int) -> None:
        subprocess.run(["podman", "run", "--rm", BASE_IMAGE, "true"], capture_output=True, check=True)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(bare, range(2 * rollouts)))
    floor = time.perf_counter() - t0
    print(f"{rollouts} rollouts (image builds included): {computed:.2f} s vs {2 * rollouts} bare containers "
          f"{floor:.2f} s ({computed / floor:.2f}x)")
    print(f"cached rerun: {cached:.2f} s ({cached / computed:.3f}x the computed run)")
    print(f"suite eval (every diff graded again): {regraded:.2f} s ({regraded / computed:.2f}x the computed run, "
          f"{regraded / floor:.2f}x the floor)")


if __name__ == "__main__":
    main()
