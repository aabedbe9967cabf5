"""Prepared tasks (the rollouts orchestrator's) run from the seed's TOML shape, in real podman containers built
from each task's Dockerfile, with a scripted CLI agent reaching the model through the relay, graded by rubric."""

from __future__ import annotations

import json
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
    beta = json.loads((tmp_path / "runs" / "beta" / "hello" / "1" / "evaluation_results.json").read_text())
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

    again = env.run("suite", "run", str(tmp_path / "rollouts.toml"), cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and server.requests == 9  # cached: the same task, model, overrides and rollout


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
    orphan = prepared_task(tmp_path / "orphan", "localhost/nowhere-to-be-found:1", META)
    missing = env.run("benchmark", "run", str(orphan), "PreparedTaskSolver", "--model=alpha",
                      f"--api_base={server.url}", timeout=300)
    assert missing.returncode == 3 and "FROM image localhost/nowhere-to-be-found:1 is not on this machine" in missing.stdout
