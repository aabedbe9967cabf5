"""AutoGenBench benchmarks written in each upstream style run unchanged, as real processes in the sandbox: a benchmark
folder (Templates/, Scripts/custom_tabulate.py, Tasks/ as init_tasks.py writes them, config.yaml, ENV.yaml), an
AgentChat-style template with requirements.txt and config.yaml, a 0.2-style one with testbed_utils and
OAI_CONFIG_LIST, a crash, a timeout, stdin, per-file subsampling, cached reruns that still leave run folders,
`scenario tabulate` through the benchmark's own script, `scenario clone`, and a suite sweeping models and settings."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from registry_cli.engine.isolation.bwrap import bwrap_works
from tests.conftest import CONTAINERS_CONF, Env
from tests.openai_server import FakeOpenAI
from tests.wheels import tiny_wheel

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_works(), reason="bubblewrap cannot run here")]

AGENTCHAT = '''
import json, urllib.request
import yaml
import tinyhelper

config = yaml.safe_load(open("config.yaml"))["model_config"]["config"]
prompt = open("prompt.txt").read().strip()
body = json.dumps({"model": config["model"], "messages": [{"role": "user", "content": prompt}]}).encode()
request = urllib.request.Request(config["base_url"] + "/chat/completions", data=body,
                                 headers={"Authorization": "Bearer " + config["api_key"],
                                          "Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request))["choices"][0]["message"]["content"]
print(tinyhelper.banner())
print("FINAL ANSWER: " + answer)
'''

TWO_AGENTS = '''
import json, os, urllib.request
import testbed_utils

testbed_utils.init()
config_list = [c for c in json.load(open("OAI_CONFIG_LIST")) if c["model"] in ["__MODEL__"]]
llm_config = testbed_utils.default_llm_config(config_list, timeout=60)
entry = llm_config["config_list"][0]
body = json.dumps({"model": entry["model"], "messages": [{"role": "user", "content": "__PROMPT__"}]}).encode()
request = urllib.request.Request(entry["base_url"] + "/chat/completions", data=body,
                                 headers={"Authorization": "Bearer " + entry["api_key"],
                                          "Content-Type": "application/json"})
answer = json.load(urllib.request.urlopen(request))["choices"][0]["message"]["content"]
print("ENV", json.dumps({k: os.environ.get(k) for k in ("SETTING_A", "OPENAI_API_KEY", "BING_API_KEY", "MODEL_CONFIG")}))
print("ANSWER", answer)
if answer == "__EXPECTED__":
    print("ALL TESTS PASSED !#!#")
testbed_utils.finalize(agents=[])
'''

CUSTOM_TABULATE = '''
import os, re, sys
from agbench.tabulate_cmd import default_scorer, default_tabulate


def scorer(instance_dir):
    expected_file = os.path.join(instance_dir, "expected_answer.txt")
    console_file = os.path.join(instance_dir, "console_log.txt")
    if not os.path.isfile(expected_file):
        return default_scorer(instance_dir)
    if not os.path.isfile(console_file):
        return None
    found = re.search(r"FINAL ANSWER:(.*?)\\n", open(console_file).read(), re.DOTALL)
    if found is None:
        return None
    return found.group(1).strip() == open(expected_file).read().strip()


def main(args):
    default_tabulate(args, scorer=scorer)


if __name__ == "__main__" and __package__ is None:
    main(sys.argv)
'''


def wheel(folder: Path) -> Path:
    return tiny_wheel(folder, "tinyhelper", "def banner():\n    return 'tinyhelper ready'\n")


def benchmark(root: Path) -> Path:
    """A benchmark folder laid out as AutoGenBench's are, with its tasks written as init_tasks.py writes them."""
    agentchat = root / "Templates" / "AgentChat"
    agentchat.mkdir(parents=True)
    (agentchat / "scenario.py").write_text(AGENTCHAT)
    (agentchat / "prompt.txt").write_text("__PROMPT__")
    (agentchat / "expected_answer.txt").write_text("__EXPECTED__")
    (agentchat / "requirements.txt").write_text(f"{wheel(root)}\n")
    two = root / "Templates" / "TwoAgents"
    two.mkdir(parents=True)
    (two / "scenario.py").write_text(TWO_AGENTS)
    (root / "Templates" / "Crash.py").write_text("raise SystemExit('the agent fell over')\n")
    (root / "Templates" / "Slow.py").write_text("import time\ntime.sleep(60)\n")
    (root / "Scripts").mkdir()
    (root / "Scripts" / "custom_tabulate.py").write_text(CUSTOM_TABULATE)
    (root / "config.yaml").write_text("model_config:\n  provider: autogen_ext.models.openai.OpenAIChatCompletionClient\n"
                                      "  config:\n    model: gpt-4o\n")
    (root / "ENV.yaml").write_text("SETTING_A: ${HOST_SETTING}\nOPENAI_API_KEY: ${OPENAI_API_KEY}\n"
                                   "BING_API_KEY: literal-secret-value\nMODEL_CONFIG:\n  config:\n    model: gpt-4o\n")
    tasks = root / "Tasks"
    tasks.mkdir()
    chat = [{"id": f"add_{a}_{b}", "template": str(agentchat.resolve()),
             "substitutions": {"prompt.txt": {"__PROMPT__": f"add the following numbers together: {a} + {b}"},
                               "expected_answer.txt": {"__EXPECTED__": str(a + b)}}} for a, b in ((19, 22), (3, 4))]
    (tasks / "agentchat.jsonl").write_text("".join(json.dumps(t) + "\n" for t in chat))
    old = [{"id": "two_1_2", "template": "../Templates/TwoAgents",
            "substitutions": {"scenario.py": {"__MODEL__": "gpt-4", "__PROMPT__": "add the following numbers together: 1 + 2",
                                              "__EXPECTED__": "3"}}},
           {"id": "listed", "template": [["../Templates/TwoAgents/scenario.py", "scenario.py"]],
            "values": {"__MODEL__": "gpt-4", "__PROMPT__": "add the following numbers together: 2 + 6", "__EXPECTED__": "8"}},
           {"id": "crash", "template": "../Templates/Crash.py", "substitutions": {}},
           {"id": "slow", "template": "../Templates/Slow.py", "substitutions": {}}]
    (tasks / "twoagents.jsonl").write_text("".join(json.dumps(t) + "\n" for t in old))
    return root


def run(env: Env, source: str, server: FakeOpenAI, results: Path, *args: str, cwd: Path | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*env.cli(), "benchmark", "run", source, "ScenarioSolver", "--model=fake", f"--api_base={server.url}",
            f"--results_dir={results}", "--quiet", *args]
    return subprocess.run(argv, env=env.vars, capture_output=True, text=True, timeout=600, cwd=cwd, input=stdin)


def test_an_upstream_benchmark_runs_unchanged(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    secret = f"sk-host-{uuid.uuid4().hex}"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret, HOST_SETTING="from-the-host",
                                   OAI_CONFIG_LIST=json.dumps([{"model": "gpt-4", "api_key": secret}]),
                                   PIP_NO_INDEX="1"))
    root = benchmark(tmp_path / "HumanEvalLike")
    results = tmp_path / "Results"
    out = run(env, str(root / "Tasks"), server, results, "--timeout=10", cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Final score: 3/6" in out.stdout  # 19+22 (custom scorer), 1+2 and 2+5 pass; 3+4 (answered 8) fails
    assert "twoagents/crash: crashed: scenario.py exited with code 1" in out.stdout
    assert "twoagents/slow: timed out after 10s" in out.stdout
    chat = results / "agentchat" / "add_19_22" / "0"
    console = (chat / "console_log.txt").read_text()
    assert "tinyhelper ready" in console and "FINAL ANSWER: 41" in console  # requirements installed, relay reached
    config = (chat / "config.yaml").read_text()
    assert "base_url: http://127.0.0.1:8800/v1" in config and "sk-nearai-relay-no-key" in config
    old = (results / "twoagents" / "two_1_2" / "0" / "console_log.txt").read_text()
    seen = json.loads(old.split("ENV ", 1)[1].splitlines()[0])
    assert seen["SETTING_A"] == "from-the-host" and seen["OPENAI_API_KEY"] == "sk-nearai-relay-no-key"
    assert seen["BING_API_KEY"] is None and json.loads(seen["MODEL_CONFIG"]) == {"config": {"model": "gpt-4o"}}
    assert "AUTOGEN_TESTBED_SETTING: [Bwrap]" in old and "SCENARIO.PY RUNTIME:" in old
    assert (results / "twoagents" / "two_1_2" / "0" / "messages").is_dir()  # testbed_utils.finalize wrote there
    everything = "".join(p.read_text(errors="replace") for p in results.rglob("*") if p.is_file())
    assert secret not in everything and "literal-secret-value" not in everything
    assert len(list((local_env.home / "cache" / "envs").iterdir())) == 1  # installed once for both tasks

    table = env.run("scenario", "tabulate", str(results / "agentchat"), cwd=root, check=True)
    assert "using the tabulation method of" in table.stderr and "add_19_22" in table.stdout
    assert "True" in table.stdout and "False" in table.stdout  # the benchmark's scorer, run in the sandbox

    import shutil

    shutil.rmtree(results)
    again = run(env, str(root / "Tasks"), server, results, "--timeout=10", cwd=tmp_path)
    assert "4 cached" in again.stdout and "Final score: 3/6" in again.stdout
    assert (results / "agentchat" / "add_19_22" / "0" / "console_log.txt").read_text().count("FINAL ANSWER: 41") == 1
    ours = json.loads(env.run("scenario", "tabulate", str(results), "--script=none", "--format=json", check=True).stdout)
    assert ours["summary"]["successes"] == 3 and ours["summary"]["errors"] == 2


def test_tasks_from_stdin_subsampled_per_file_and_kept_inside_the_benchmark(local_env: Env, server: FakeOpenAI,
                                                                              tmp_path: Path) -> None:
    root = tmp_path / "Bench"
    (root / "Templates").mkdir(parents=True)
    (root / "Templates" / "Echo.py").write_text("import os\nprint('GREETING', os.environ['GREETING'])\n"
                                                "print('ALL TESTS PASSED !#!#')\n")
    (root / "ENV.json").write_text(json.dumps({"GREETING": "hello-from-json", "GITHUB_TOKEN": "ghp-not-for-you"}))
    tasks = root / "Tasks"
    tasks.mkdir()
    for name in ("first", "second"):
        (tasks / f"{name}.jsonl").write_text("".join(
            json.dumps({"id": f"{name}{i}", "template": "../Templates/Echo.py"}) + "\n" for i in range(4)))
    results = tmp_path / "Results"
    half = run(local_env, str(tasks), server, results, "--subsample=0.5", "--seed=3")
    assert "4 results" in half.stdout and "Final score: 4/4" in half.stdout
    assert {p.parent.parent.name for p in results.glob("*/*/0")} == {"first", "second"}
    assert all(len(list((results / n).iterdir())) == 2 for n in ("first", "second"))  # two of each file
    one = next(results.glob("first/*/0"))
    assert "GREETING hello-from-json" in (one / "console_log.txt").read_text()  # ENV.json, as 0.2 benchmarks had
    assert json.loads((one / "result.json").read_text())["withheld"] == ["GITHUB_TOKEN"]
    piped = run(local_env, "-", server, tmp_path / "Piped", cwd=tasks, stdin=(tasks / "first.jsonl").read_text())
    assert "Final score: 4/4" in piped.stdout and (tmp_path / "Piped" / "stdin" / "first0" / "0").is_dir()
    escape = tmp_path / "escape.jsonl"
    escape.write_text(json.dumps({"id": "x", "template": "/etc/passwd"}) + "\n")
    refused = run(local_env, str(escape), server, results)
    assert refused.returncode == 1 and "is outside the benchmark folder" in refused.stderr
    assert refused.stderr.count("\n") == 1


def test_scenario_clone_from_a_folder_and_a_git_url(local_env: Env, tmp_path: Path) -> None:
    root = benchmark(tmp_path / "src" / "HumanEvalLike")
    made = local_env.run("scenario", "clone", str(root), "--dest", str(tmp_path / "copy"), check=True)
    assert (tmp_path / "copy" / "Templates" / "AgentChat" / "scenario.py").is_file() and "cloned" in made.stdout
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    import shutil

    shutil.copytree(root, repo / "benchmarks" / "HumanEvalLike")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x"], check=True)
    local_env.run("scenario", "clone", repo.as_uri(), "--path", "benchmarks/HumanEvalLike",
                  "--dest", str(tmp_path / "fromgit"), check=True)
    assert (tmp_path / "fromgit" / "Scripts" / "custom_tabulate.py").is_file()
    bad = local_env.run("scenario", "clone", str(tmp_path / "src"))
    assert bad.returncode == 2 and "is not an AutoGenBench benchmark (no Templates or Scripts)" in bad.stderr
    again = local_env.run("scenario", "clone", str(root), "--dest", str(tmp_path / "copy"))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_suite_sweeps_models_and_settings_into_folders_of_their_own(local_env: Env, server: FakeOpenAI,
                                                                       tmp_path: Path) -> None:
    root = tmp_path / "Bench"
    (root / "Templates").mkdir(parents=True)
    (root / "Templates" / "Level.py").write_text(
        "import os, json, urllib.request\n"
        "ask = 'add the following numbers together: 1 + ' + os.environ['LEVEL']\n"
        "body = json.dumps({'messages': [{'role': 'user', 'content': ask}]}).encode()\n"
        "request = urllib.request.Request(os.environ['OPENAI_BASE_URL'] + '/chat/completions', data=body)\n"
        "print('LEVEL', os.environ['LEVEL'], 'ANSWER', json.load(urllib.request.urlopen(request))['choices'][0]['message']['content'])\n"
        "print('ALL TESTS PASSED !#!#')\n")
    (root / "Tasks").mkdir()
    (root / "Tasks" / "levels.jsonl").write_text(json.dumps({"id": "one", "template": "../Templates/Level.py"}) + "\n")
    (tmp_path / "suite.toml").write_text(f"""
name = "sweep"
[defaults]
api_base = "{server.url}"
results_dir = "{tmp_path / 'Results'}"
[[tasks]]
dataset = "{root / 'Tasks'}"
solver = "ScenarioSolver"
model = ["alpha", "beta"]
environment_variables = [{{LEVEL = "1"}}, {{LEVEL = "2"}}]
""")
    out = local_env.run("suite", "run", str(tmp_path / "suite.toml"), cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    consoles = sorted((tmp_path / "Results").glob("*/levels/one/0/console_log.txt"))
    assert len(consoles) == 4  # 2 models x 2 settings, none overwriting another
    assert sorted(c.parent.parent.parent.parent.name for c in consoles) == [
        "alpha-LEVEL=1", "alpha-LEVEL=2", "beta-LEVEL=1", "beta-LEVEL=2"]
    assert {("LEVEL 2" in c.read_text()) for c in consoles} == {True, False}
    assert sorted(m for m, _ in server.asked) == ["alpha", "alpha", "beta", "beta"]  # no setting served from cache
    again = local_env.run("suite", "run", str(tmp_path / "suite.toml"), "--record", cwd=tmp_path, timeout=300)
    assert again.returncode == 0 and len(server.asked) == 4  # all cached now, and recorded apart:
    table = json.loads(local_env.run("evaluation", "table", "--format=json", check=True).stdout)
    rows = {(r["model"], r["environment"]) for r in table["rows"]}
    assert len(rows) == 4 and all(e.startswith("LEVEL=sha256:") for _, e in rows)  # values hashed, never in clear
    assert len({e for _, e in rows}) == 2 and {m for m, _ in rows} == {"openai/alpha", "openai/beta"}


def test_the_benchmark_runs_in_podman_containers(local_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                 podman_image: tuple[str, str]) -> None:
    tag, conf = podman_image
    env = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=conf,
                                   OAI_CONFIG_LIST=json.dumps([{"model": "gpt-4", "api_key": "sk-user"}])))
    root = benchmark(tmp_path / "Bench")
    requirements = root / "Templates" / "AgentChat" / "requirements.txt"  # the image has only Debian's python3:
    requirements.write_text("pyyaml\n" + requirements.read_text())  # pyyaml from the package index, as upstream's
    (root / "Tasks" / "twoagents.jsonl").write_text(
        "".join(line + "\n" for line in (root / "Tasks" / "twoagents.jsonl").read_text().splitlines()[:3]))
    results = tmp_path / "Results"
    out = run(env, str(root / "Tasks"), server, results, "--sandbox=podman", f"--docker_image={tag}", "--timeout=60")
    assert out.returncode == 3, out.stdout + out.stderr
    assert "Final score: 3/5" in out.stdout and "twoagents/crash: crashed: scenario.py exited with code 1" in out.stdout
    console = (results / "agentchat" / "add_19_22" / "0" / "console_log.txt").read_text()
    assert "AUTOGEN_TESTBED_SETTING: [Podman]" in console and "tinyhelper ready" in console
    assert "FINAL ANSWER: 41" in console  # the requirements mounted read-only, the model through the relay
    broken = Env(local_env.home, dict(local_env.vars, CONTAINERS_CONF=str(tmp_path / "broken.conf")))
    (tmp_path / "broken.conf").write_text(CONTAINERS_CONF.replace("[engine]", 'seccomp_profile = "/no/such.json"\n[engine]'))
    fault = run(broken, str(root / "Tasks"), server, tmp_path / "R2", "--sandbox=podman", f"--docker_image={tag}",
                "--force")  # podman answers, but no container can start: the machine's fault, never a verdict
    assert fault.returncode == 3 and "the podman sandbox could not start the code" in fault.stdout
    assert "Final score: 0/5 - 0.00% (5 errors, not cached" in fault.stdout
