"""What AutoGenBench scenarios cost here: N tasks of a benchmark folder (a template with a requirements.txt and a
custom_tabulate.py scorer) run in bwrap, against the floor of the same N `python -c pass` in bwrap; then the cached
rerun (run folders written again from stored outputs) against the computed run.

    python bench/scenario_speed.py [N]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, fresh_home, start_server

from tests.wheels import tiny_wheel  # found once _common has put the project on sys.path


def cli(*args: str, cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "registry_cli", *args], cwd=cwd, check=False, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    fresh_home()
    root = Path(tempfile.mkdtemp(prefix="scenario-bench-")) / "Bench"
    template = root / "Templates" / "Ask"
    template.mkdir(parents=True)
    wheel = tiny_wheel(root, "benchdep", "VALUE = 1\n")
    (template / "requirements.txt").write_text(f"{wheel}\n")
    (template / "scenario.py").write_text(
        "import json, os, urllib.request, benchdep\n"
        "body = json.dumps({'messages': [{'role': 'user', 'content': open('prompt.txt').read()}]}).encode()\n"
        "r = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body)\n"
        "print('FINAL ANSWER: ' + json.load(urllib.request.urlopen(r))['choices'][0]['message']['content'])\n")
    (template / "prompt.txt").write_text("__PROMPT__")
    (template / "expected_answer.txt").write_text("__EXPECTED__")
    (root / "Scripts").mkdir()
    (root / "Scripts" / "custom_tabulate.py").write_text(
        "import os, re\n\ndef scorer(d):\n    m = re.search(r'FINAL ANSWER: (.*)', open(os.path.join(d, 'console_log.txt')).read())\n"
        "    return bool(m) and m.group(1).strip() == open(os.path.join(d, 'expected_answer.txt')).read().strip()\n")
    (root / "Tasks").mkdir()
    lines = [{"id": f"t{i}", "template": "../Templates/Ask",
              "substitutions": {"prompt.txt": {"__PROMPT__": f"add the following numbers together: {i} + 10"},
                                "expected_answer.txt": {"__EXPECTED__": str(i + 10)}}} for i in range(n)]
    (root / "Tasks" / "ask.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    server, url = start_server(0.0)
    try:
        floor_t0 = time.perf_counter()
        for _ in range(n):
            subprocess.run(["bwrap", "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", sys.executable, "-c",
                            "pass"], check=True)
        floor = time.perf_counter() - floor_t0
        run = ("benchmark", "run", str(root / "Tasks"), "ScenarioSolver", "--model=fake", f"--api_base={url}",
               "--quiet", "--max_concurrent=1", f"--results_dir={root / 'Results'}")
        computed = cli(*run, cwd=ROOT)
        shutil.rmtree(root / "Results")
        cached = cli(*run, cwd=ROOT)
        kept = len(list((root / "Results").glob("ask/*/0/console_log.txt")))
        print(f"{n} scenarios one at a time: {computed:.2f} s ({computed / n * 1000:.0f} ms each) vs {n} bare bwrap "
              f"python starts {floor:.2f} s ({computed / floor:.2f}x; the first includes the pip install)")
        print(f"cached rerun: {cached:.2f} s ({cached / computed:.2f}x the computed run), {kept}/{n} run folders "
              "written again")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
