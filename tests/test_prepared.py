"""Prepared tasks (the rollouts orchestrator's) run from the seed's TOML shape, in real podman containers built
from each task's Dockerfile, with a scripted CLI agent reaching the model through the relay, graded by rubric."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow

# A scripted CLI agent, as a coding agent would be: it asks the model (with a tool it may call), writes files in the
# repository, and exits 0.
AGENT = '''
import json, os, sys, urllib.request

prompt = open(sys.argv[1]).read()
def ask(content, tools=None):
    body = {"model": os.environ["OPENAI_MODEL"], "messages": [{"role": "user", "content": content}]}
    if tools:
        body["tools"] = tools
    request = urllib.request.Request(os.environ["OPENAI_BASE_URL"] + "/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + os.environ["OPENAI_API_KEY"],
                                              "Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(request))["choices"][0]["message"]

tool = [{"type": "function", "function": {"name": "write_file", "parameters": {"type": "object", "properties": {
    "path": {"type": "string"}, "content": {"type": "string"}}}}}]
for call in ask("TOOLCALL " + prompt, tool).get("tool_calls") or []:
    args = json.loads(call["function"]["arguments"])
    open(args["path"], "w").write(args["content"])
answer = ask("add the following numbers together: 2 + 3")["content"]
open("hello.py", "w").write(f"ANSWER = {answer}\\n")
print("agent done", prompt.strip()[:40])
'''

META = {
    "task_id": "hello",
    "repo": {"git_url": "https://example.invalid/repo.git", "branch": "main"},
    "lm": {"instructions": "Write hello.py defining ANSWER, the sum of 2 and 3."},
    "evaluation": {
        "rubrics": [{"id": "works", "criterion": "ANSWER is right", "weight": 0.75},
                    {"id": "notes", "criterion": "notes were written", "weight": 0.25}],
        "test_scripts": [
            {"path": "tests/test_answer.py", "rubric_id": "works",
             "content": "import hello\n\ndef test_answer():\n    assert hello.ANSWER == 5\n"},
            {"path": "tests/test_exists.py", "rubric_id": "works",
             "content": "import os\n\ndef test_exists():\n    assert os.path.exists('hello.py')\n"},
            {"path": "tests/test_notes.py", "rubric_id": "notes",
             "content": "import os\n\ndef test_notes():\n    assert os.path.exists('notes.txt')\n"},
        ],
    },
}


# A user's analysis of a rollout folder, as the rollouts guide shows it: manifest results[], each run's
# evaluation_results.json
ANALYSIS = """
import json, sys
from pathlib import Path

rollout_dir = Path(sys.argv[1])
manifest = json.loads((rollout_dir / "manifest.json").read_text())
for result in manifest["results"]:
    run_dir = Path(result["run_dir"])
    if (run_dir / "evaluation_results.json").exists():
        eval_data = json.loads((run_dir / "evaluation_results.json").read_text())
        print(f"Task: {result['task_dir']}")
        print(f"Score: {eval_data.get('total_score', 'N/A')}")
"""


def prepared_task(folder: Path, base: str, meta: Mapping[str, object]) -> Path:
    (folder / "repo").mkdir(parents=True)
    (folder / "repo" / "README.md").write_text("# a repository\n")
    (folder / "overlay_files").mkdir()
    (folder / "overlay_files" / "agent.py").write_text(AGENT)
    (folder / "tb_meta.json").write_text(json.dumps(meta, indent=2))
    (folder / "Dockerfile").write_text(
        f"FROM {base}\nCOPY repo/ /app/repo/\nCOPY overlay_files/ /app/\nCOPY overlay_repo_files/ /app/repo/\n"
        "RUN cd /app/repo && git init -q && git add -A && git -c user.email=t@t -c user.name=t commit -qm init "
        "&& chmod -R 777 /app/repo\nWORKDIR /app\n")
    (folder / "overlay_repo_files").mkdir()
    return folder


def test_the_seeds_toml_runs_prepared_tasks_in_podman(local_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                      podman_image: tuple[str, str]) -> None:
    base, conf = podman_image
    secret = "sk-prepared-never-written"
    env = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=conf, OPENAI_API_KEY=secret))
    server.tool_replies = {"TOOLCALL": [("write_file", '{"path": "notes.txt", "content": "noted"}')]}
    server.skew = {"beta": 5}  # beta gets 2 + 3 wrong (7): half of "works"
    prepared_task(tmp_path / "tasks" / "hello", base, META)
    b_meta = {**META, "task_id": "extra"}
    b = prepared_task(tmp_path / "tasks" / "extra", base, b_meta)
    (b / "overrides.json").write_text(json.dumps({
        "prompt": "Overridden: write hello.py and notes.", "overlay_repo_files": {"EXTRA.md": "from the overrides\n"},
        "evaluation": {"rubrics": [{"id": "extra", "criterion": "the override's file is there", "weight": 1.0}],
                       "test_scripts": [{"path": "tests/test_extra.py", "rubric_id": "extra",
                                         "content": "import os\n\ndef test_extra():\n    assert os.path.exists('EXTRA.md')\n"}]}}))
    before = {p: p.read_bytes() for p in (tmp_path / "tasks").rglob("*") if p.is_file()}
    agent = "python3 /app/agent.py {prompt_file}"
    (tmp_path / "rollouts.toml").write_text(f"""
name = "rollouts"
parallel = 2

[defaults]
api_base = "{server.url}"
results_dir = "{tmp_path / 'runs'}"
timeout = 120
agent_command = "{agent}"

[[tasks]]
prepared_dir = "tasks/hello"
model = ["alpha", "beta"]
rollouts = 2

[[tasks]]
prepared_dir = "tasks/extra"
model = "alpha"
rollouts = 1
apply_overrides = true
overrides = "tasks/extra/overrides.json"
""")
    out = env.run("suite", "run", str(tmp_path / "rollouts.toml"), "--record", cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    # (2 models x 2 rollouts + 1) runs x 2 calls, less one: alpha's second question, in rollout 0, is the same
    # in both tasks, and the relay's completion cache (keyed by model, messages and rollout) answers it once
    assert server.requests == 9
    alpha = json.loads((tmp_path / "runs" / "alpha" / "hello" / "0" / "evaluation_results.json").read_text())
    beta_run = tmp_path / "runs" / "beta" / "hello" / "1"
    beta = json.loads((beta_run / "evaluation_results.json").read_text())
    assert alpha["evaluation"]["total_score"] == 1.0
    assert beta["evaluation"]["rubrics"]["works"]["score"] == 0.5
    assert beta["evaluation"]["total_score"] == pytest.approx((0.75 * 0.5 + 0.25 * 1.0) / 1.0)  # by hand: 0.625
    assert alpha["agent_metrics"]["requests"] == 2 and alpha["agent_metrics"]["tool_calls"] == 1  # the relay's counts
    run = tmp_path / "runs" / "alpha" / "hello" / "0"
    assert "+ANSWER = 5" in (run / "artifacts" / "diff.patch").read_text()
    assert "agent done Write hello.py" in (run / "artifacts" / "agent.log").read_text()
    assert (run / "scoring_results.md").read_text().startswith("# Scoring results: hello")
    assert (run / "logs" / "eval.log").is_file()
    extra = json.loads((tmp_path / "runs" / "extra" / "0" / "evaluation_results.json").read_text())
    assert extra["evaluation"]["total_score"] == 1.0  # the overrides' file, prompt and rubric
    assert "agent done Overridden" in (tmp_path / "runs" / "extra" / "0" / "artifacts" / "agent.log").read_text()
    assert before == {p: p.read_bytes() for p in (tmp_path / "tasks").rglob("*") if p.is_file()}  # never written
    everything = [p for p in [*(tmp_path / "runs").rglob("*"), *local_env.home.rglob("*")] if p.is_file()]
    assert not [p for p in everything if secret.encode() in p.read_bytes()]
    table = json.loads(env.run("evaluation", "table", "--format=json", "--all_metrics", check=True).stdout)
    scores = sorted(r.get("prepared_tasks/total_score") for r in table["rows"]
                    if r.get("prepared_tasks/total_score") is not None)
    assert scores == [0.625, 1.0, 1.0]  # the mean rubric total per model and task (beta: both rollouts 0.625)

    # the rollout folder as the orchestrator lays it out: results[] and runs.txt, read by the guide's own analysis
    rollout = max((local_env.home / "suites" / "rollouts").iterdir())
    manifest = json.loads((rollout / "manifest.json").read_text())
    results = manifest["results"]
    assert len(results) == 5 and {r["status"] for r in results} == {"completed"} and {r["rc"] for r in results} == {0}
    assert {Path(r["task_dir"]).name for r in results} == {"hello", "extra"}
    assert len({r["run_id"] for r in results}) == 5 and all(r["run_id"].startswith(rollout.name) for r in results)
    assert (rollout / "runs.txt").read_text().split() == [r["run_dir"] for r in results]
    analysis = subprocess.run([sys.executable, "-c", ANALYSIS, str(rollout)], capture_output=True, text=True, check=True)
    assert sorted(line for line in analysis.stdout.splitlines() if line.startswith("Score")) == \
        ["Score: 0.625", "Score: 0.625", "Score: 1.0", "Score: 1.0", "Score: 1.0"]

    # the seed's --rollout flag; per task across rollouts, and per model over the tasks both ran
    summary = json.loads(env.run("suite", "summarize", "rollouts", f"--rollout={rollout.name}", "--format=json",
                                 check=True).stdout)
    tasks = {(t["task"], t["model"].split("/")[-1]): t for t in summary["tasks"]}
    assert tasks[("task1", "alpha")]["mean"] == 1.0 and tasks[("task1", "beta")]["per_rollout"] == [0.625, 0.625]
    assert tasks[("task1", "beta")]["ci95_low"] == tasks[("task1", "beta")]["ci95_high"] == 0.625
    assert tasks[("task1", "alpha")]["pass@2"] == 1.0 and tasks[("task1", "beta")]["pass@2"] == 0.0
    [pair] = summary["model_pairs"]
    assert (pair["a"], pair["b"], pair["tasks"], pair["n"]) == ("openai/alpha", "openai/beta", 1, 1)
    assert pair["diff"] == pytest.approx(0.375)  # over the one task both ran (extra is alpha's alone)
    assert {m["who"]: m["tasks"] for m in summary["models"]} == {"openai/alpha": 2, "openai/beta": 1}
    runs = {(r["task"], r["model"].split("/")[-1], r["rollout"]): r for r in summary["runs"]}  # the per-run table
    assert len(runs) == 5 and runs[("hello", "beta", 1)]["score"] == 0.625
    assert runs[("hello", "alpha", 0)]["tool_calls"] == 1 and runs[("hello", "alpha", 0)]["tokens"] > 0

    # cached: the same task, model, overrides and rollout; the run folders are written again where now asked
    moved = (tmp_path / "rollouts.toml").read_text().replace(str(tmp_path / "runs"), str(tmp_path / "runs2"))
    (tmp_path / "moved.toml").write_text(moved.replace('name = "rollouts"', 'name = "moved"'))
    again = env.run("suite", "run", str(tmp_path / "moved.toml"), "-v", cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and server.requests == 9, again.stdout + again.stderr
    restored = json.loads((tmp_path / "runs2" / "alpha" / "hello" / "0" / "evaluation_results.json").read_text())
    assert restored["total_score"] == 1.0 and restored["agent_metrics"]["tool_calls_total"] == 1
    assert "+ANSWER = 5" in (tmp_path / "runs2" / "alpha" / "hello" / "0" / "artifacts" / "diff.patch").read_text()
    assert again.stdout.count(", cached -> ") == 5, again.stdout  # -v: a line per run, with its folder

    # `suite eval` grades the stored diffs again, with the task's tests as they are now, and runs no agent
    meta = json.loads((tmp_path / "tasks" / "hello" / "tb_meta.json").read_text())
    meta["evaluation"]["test_scripts"][0]["content"] = "import hello\n\ndef test_answer():\n    assert hello.ANSWER in (5, 7)\n"
    (tmp_path / "tasks" / "hello" / "tb_meta.json").write_text(json.dumps(meta))
    regraded = env.run("suite", "eval", "rollouts", "--latest", timeout=600)
    assert regraded.returncode == 0, regraded.stdout + regraded.stderr
    assert server.requests == 9  # no agent ran
    [written] = rollout.glob("regrade-*.json")
    cells = {c["label"]: c for c in json.loads(written.read_text())["cells"]}
    assert cells["task1 · beta"]["score_then"] == 0.625 and cells["task1 · beta"]["score_now"] == 1.0
    assert cells["task1 · beta"]["changed"] == 2 and cells["task1 · alpha"]["changed"] == 0
    assert json.loads((beta_run / "evaluation_results.json").read_text())["total_score"] == 1.0
    assert json.loads((beta_run / "evaluation_results.json").read_text())["agent_metrics"]["requests"] == 2


def test_a_stuck_agent_or_a_missing_base_image_is_an_error_not_a_score(local_env: Env, server: FakeOpenAI,
                                                                       tmp_path: Path,
                                                                       podman_image: tuple[str, str]) -> None:
    base, conf = podman_image
    env = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=conf))
    task = prepared_task(tmp_path / "hello", base, META)
    stuck = env.run("benchmark", "run", str(task), "PreparedTaskSolver", "--model=alpha", f"--api_base={server.url}",
                    "--agent_command=sleep 300", "--timeout=5", f"--results_dir={tmp_path / 'runs'}", timeout=300)
    assert stuck.returncode == 3 and "the agent timed out after 5s" in stuck.stdout
    assert "Final score: 0/1 - 0.00% (1 errors, not cached" in stuck.stdout
    failed = tmp_path / "runs" / "hello" / "0"  # what the agent left, and why there is no grade
    assert "timed out" in (failed / "logs" / "error.txt").read_text() and not (failed / "evaluation_results.json").exists()
    orphan = prepared_task(tmp_path / "orphan", "localhost/nowhere-to-be-found:1", META)
    missing = env.run("benchmark", "run", str(orphan), "PreparedTaskSolver", "--model=alpha",
                      f"--api_base={server.url}", timeout=300)
    # said once, before any agent runs, as one line: not a datum error per rollout, never a score
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "FROM image localhost/nowhere-to-be-found:1 is not on this machine" in missing.stderr
    assert "Final score" not in missing.stdout


def _containers_of(conf: str, pid: int) -> list[str]:
    listed = subprocess.run(["podman", "ps", "-a", "--filter", "label=nearai.owner", "--format",
                             '{{.Names}} {{index .Labels "nearai.owner"}}'], capture_output=True, text=True,
                            env={**os.environ, "CONTAINERS_CONF": conf}, check=True)
    return [line.split()[0] for line in listed.stdout.splitlines() if line.split()[-1].startswith(f"{pid}:")]


def test_a_suite_killed_with_9_resumes_where_it_was(local_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                    podman_image: tuple[str, str]) -> None:
    base, conf = podman_image
    env = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=conf))
    prepared_task(tmp_path / "tasks" / "quick", base, {**META, "task_id": "quick"})
    prepared_task(tmp_path / "tasks" / "slow", base, {**META, "task_id": "slow"})
    config = """
name = "resumed"
parallel = 2

[defaults]
api_base = "{url}"
results_dir = "{runs}"
timeout = 300
model = "alpha"

[[tasks]]
prepared_dir = "tasks/quick"
agent_command = "python3 /app/agent.py {{prompt_file}}"

[[tasks]]
prepared_dir = "tasks/slow"
agent_command = "python3 /app/agent.py {{prompt_file}} {slow}"
"""
    runs = tmp_path / "runs"
    (tmp_path / "suite.toml").write_text(config.format(url=server.url, runs=runs, slow="&& sleep 600"))
    proc = subprocess.Popen([*Env.cli(), "suite", "run", str(tmp_path / "suite.toml")], env=env.vars, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (runs / "quick" / "0" / "evaluation_results.json").is_file() or not _containers_of(conf, proc.pid):
        assert time.monotonic() < deadline and proc.poll() is None, "the quick task never finished"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _containers_of(conf, proc.pid)  # the slow agent's container outlives the killed process
    killed = max((local_env.home / "suites" / "resumed").iterdir())
    manifest = json.loads((killed / "manifest.json").read_text())  # whole: every write was atomic
    assert [r["run_dir"] for r in manifest["results"]] == [str(runs / "quick" / "0")]  # listed as soon as it ended
    asked = server.requests

    # started again (the slow task's agent now quick): the finished run is not redone, the orphan is removed
    (tmp_path / "suite.toml").write_text(config.format(url=server.url, runs=runs, slow=""))
    again = env.run("suite", "run", str(tmp_path / "suite.toml"), "-v", cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    results = {Path(r["task_dir"]).name: r for r in json.loads(
        (max((local_env.home / "suites" / "resumed").iterdir()) / "manifest.json").read_text())["results"]}
    assert results["quick"]["cached"] and not results["slow"]["cached"]
    assert results["slow"]["status"] == "completed" and results["slow"]["score"] == 0.75  # no tool call: no notes
    assert server.requests - asked <= 2  # the slow task's two questions at most: nothing of the quick one again
    assert not _containers_of(conf, proc.pid)


# A nearai agent, written as upstream's are (module-level code over a global ``env``), as the coding agent
CODER = '''
from nearai.agents.environment import Environment

task = env.list_messages()[-1]["content"]
answer = env.completion([{"role": "user", "content": "add the following numbers together: 2 + 3"}])
env.write_file("hello.py", f"ANSWER = {answer}\\n")
with open("notes.txt", "w") as notes:
    notes.write("worked on: " + task[:40])
print("coder wrote hello.py")
env.add_reply("done")
'''


def test_a_nearai_agent_is_the_coding_agent_in_the_tasks_container(local_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                                   podman_image: tuple[str, str]) -> None:
    base, conf = podman_image
    secret = "sk-coder-never-written"
    env = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=conf, OPENAI_API_KEY=secret))
    prepared_task(tmp_path / "tasks" / "hello", base, META)
    coder = tmp_path / "coder"
    coder.mkdir()
    (coder / "agent.py").write_text(CODER)
    (coder / "metadata.json").write_text(json.dumps({
        "name": "coder", "version": "0.0.1", "category": "agent", "description": "writes hello.py", "tags": [],
        "details": {"agent": {"defaults": {}}}, "show_entry": True}))
    (tmp_path / "suite.toml").write_text(f"""
name = "coders"

[[tasks]]
prepared_dir = "tasks/hello"
agent = "coder"
model = "alpha"
api_base = "{server.url}"
results_dir = "{tmp_path / 'runs'}"
rollouts = 2
""")
    out = env.run("suite", "run", str(tmp_path / "suite.toml"), cwd=tmp_path, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert server.requests == 2  # one question per rollout, over the agent's channel
    run = tmp_path / "runs" / "hello" / "0"
    result = json.loads((run / "evaluation_results.json").read_text())
    assert result["total_score"] == 1.0  # hello.py and notes.txt, written in /app/repo by the agent
    diff = (run / "artifacts" / "diff.patch").read_text()
    assert "+ANSWER = 5" in diff and "notes.txt" in diff and "agent.py" not in diff  # its own files stay out
    assert "coder wrote hello.py" in (run / "artifacts" / "agent.log").read_text()
    everything = [p for p in [*(tmp_path / "runs").rglob("*"), *local_env.home.rglob("*")] if p.is_file()]
    assert not [p for p in everything if secret.encode() in p.read_bytes()]
