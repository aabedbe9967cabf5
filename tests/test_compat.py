"""What nearai users bring runs unchanged: upstream-style agents (global `env`, `run(env)`), the docs' synchronous
solver, MBPP on local data, few-shot MMLU/GSM8K, and the rest of the CLI (config, benchmark list, version, agent,
submit on a local Ray cluster). Everything runs as real processes against the local OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, RayHead, free_port
from tests.openai_server import FakeOpenAI, expected_addition

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier

UPSTREAM_AGENT = '''import os
from nearai.agents.environment import Environment


def run(env: Environment):
    task = env.get_last_message()["content"]
    env.add_system_log(f"style={env.env_vars.get('ANSWER_STYLE')} os={os.environ.get('ANSWER_STYLE')}")
    print("agent prints to its log")
    reply = env.completions([{"role": "system", "content": "Reply with the number only."}] + env.list_messages())
    env.add_reply(reply.choices[0].message.content.strip())
    env.write_file("notes/task.txt", task)
    assert env.read_file("notes/task.txt") == task and env.read_file("missing.txt") is None
    assert env.list_files("notes") == ["task.txt"] and env.get_primary_agent_temp_dir().is_dir()
    env.mark_done()


run(env)
'''

RUN_ENV_AGENT = '''def run(env):
    answer = env.completion(env.task).strip()
    env.write_file("result.txt", answer)
    return "see result.txt"
'''

# The docs' example solver (../shared/seeds/002), unchanged apart from the import lines.
DOC_SOLVER = '''import os
from pydantic import BaseModel
from datasets import Dataset
from solvers import SolverStrategy
from typing import Dict, List



class ThreeDigitAdditionDatum(BaseModel):
    input: str
    output: str


class ThreeDigitAdditionSolver(SolverStrategy):
    """Solver for the 3 digit addition benchmark."""

    def __init__(self, dataset_ref: Dataset, model: str = "", agent: str = ""):
        super().__init__(model, agent)
        self.dataset_ref = dataset_ref

    def evaluation_name(self) -> str:
        return "3_digit_addition"

    def compatible_datasets(self) -> List[str]:
        return ["3_digit_addition"]

    def solve(self, datum: Dict[str, str]) -> bool:
        datum = ThreeDigitAdditionDatum(**datum)
        label = datum.input.replace(" + ", "+")
        session = self.start_inference_session(label)

        goal = f"""Please add the following numbers together: {datum.input}\\n\\nOutput the result only."""
        result = session.run_task(goal).strip()
        return result == datum.output


class ThreeDigitAdditionFileSolver(ThreeDigitAdditionSolver):
    def solve(self, datum: Dict[str, str]) -> bool:
        datum = ThreeDigitAdditionDatum(**datum)
        label = datum.input.replace(" + ", "+")
        session = self.start_inference_session(label)

        goal = f"""Please add the following numbers together: {datum.input}\\n\\nOutput the result in a file called 'result.txt'."""
        session.run_task(goal)
        with open(os.path.join(session.path, "result.txt"), "r") as f:
            result = f.read().strip()
        return result == datum.output
'''


def expected_passes(ds: Path, limit: int) -> int:
    import datasets

    rows = datasets.load_from_disk(str(ds)).to_list()[:limit]
    return sum(expected_addition(*map(int, r["input"].split(" + "))) == r["output"] for r in rows)


def make_agent(folder: Path, code: str, **details: object) -> Path:
    folder.mkdir(parents=True)
    (folder / "agent.py").write_text(code)
    meta = {"name": folder.name, "version": "0.0.1", "category": "agent", "description": "", "tags": [],
            "details": details, "show_entry": True}
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


def test_upstream_agent_with_global_env_defaults_env_vars_and_log(local_env: Env, server: FakeOpenAI,
                                                                  tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=20)
    agent = make_agent(tmp_path / "upstream_agent", UPSTREAM_AGENT,
                       agent={"defaults": {"model": "llama-fake", "temperature": 0.0, "max_tokens": 64}},
                       env_vars={"ANSWER_STYLE": "terse"})
    out = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--agent={agent}",
                        f"--api_base={server.url}", "--record", "--max_concurrent=-1", check=True)
    want = expected_passes(ds, 20)
    assert f"Final score: {want}/20" in out.stdout
    assert server.models == {"llama-fake"}  # details.agent.defaults, as no --model was given
    found = re.search(r"recorded evaluation (\S+)", out.stdout)
    assert found is not None
    entry = found.group(1)
    shown = local_env.run("evaluation", "read_solutions", entry, "--verbose", check=True).stdout
    rows = [json.loads(block) for block in re.split(r"\n(?=\{)", shown.strip()) if block.startswith("{")]
    assert len(rows) == 20 and all(r["input"]["input"] for r in rows)  # the datum's input is shown
    trace = rows[0]["agent"][0]
    assert trace["logs"][0]["message"] == "style=terse os=terse"
    assert "agent prints to its log" in trace["stderr"]
    assert [m["role"] for m in trace["messages"]] == ["user", "assistant"]
    table = local_env.run("evaluation", "read_solutions", entry, check=True).stdout
    assert rows[0]["input"]["input"] in table


def test_doc_solver_runs_with_a_model_and_with_a_run_env_agent(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=24)
    solver_file = tmp_path / "doc_solver.py"
    solver_file.write_text(DOC_SOLVER)
    want = expected_passes(ds, 24)
    with_model = local_env.run("benchmark", "run", str(ds), f"{solver_file}:ThreeDigitAdditionSolver", "--model=fake",
                               f"--api_base={server.url}", "--max_concurrent=8", check=True)
    assert f"Final score: {want}/24" in with_model.stdout and server.requests == 24
    again = local_env.run("benchmark", "run", str(ds), f"{solver_file}:ThreeDigitAdditionSolver", "--model=fake",
                          f"--api_base={server.url}", check=True)
    assert "24 cached" in again.stdout and server.requests == 24
    agent = make_agent(tmp_path / "file_agent", RUN_ENV_AGENT)
    with_agent = local_env.run("benchmark", "run", str(ds), f"{solver_file}:ThreeDigitAdditionFileSolver",
                               f"--agent={agent}", "--model=fake", f"--api_base={server.url}", "--limit=10", check=True)
    assert f"Final score: {expected_passes(ds, 10)}/10" in with_agent.stdout
    outside = local_env.run("benchmark", "run", str(ds), f"{tmp_path / 'nope.py'}:X", "--model=fake")
    assert outside.returncode != 0 and "no solver file" in outside.stderr and outside.stderr.count("\n") == 1


MBPP: list[dict[str, Any]] = [  # task ids 1-10 are the few-shot prompt split, 11-510 the test split
    {"task_id": 1, "text": "Write a function to return the larger of two numbers.",
     "code": "def bigger(a, b):\n    return a if a > b else b", "test_list": ["assert bigger(1, 2) == 2"]},
    {"task_id": 2, "text": "Write a function to reverse a string.",
     "code": "def rev(s):\n    return s[::-1]", "test_list": ["assert rev('ab') == 'ba'"]},
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character.",
     "code": "def remove_Occ(s, ch):\n    s = s.replace(ch, '', 1)\n    return s[::-1].replace(ch, '', 1)[::-1]",
     "test_list": ["assert remove_Occ('hello','l') == 'heo'", "assert remove_Occ('abcda','a') == 'bcd'"]},
    {"task_id": 12, "text": "Write a function to sort a matrix by the sum of its rows.",
     "code": "def sort_matrix(m):\n    return sorted(m, key=sum)",
     "test_list": ["assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]]) == [[1, 1, 1], [1, 2, 3], [2, 4, 5]]"]},
    {"task_id": 13, "text": "Write a function to count words using a shared counter.",
     "code": "def count_words(ws):\n    return COUNTER(ws)",
     "test_list": ["assert count_words(['a', 'a', 'b'])['a'] == 2"],
     "test_setup_code": "from collections import Counter as COUNTER"},
    {"task_id": 14, "text": "Write a python function to find the volume of a triangular prism.",
     "code": "def find_Volume(l, b, h):\n    return (l * b * h) / 2",
     "test_list": ["assert find_Volume(10, 8, 6) == 240"], "challenge_test_list": ["assert find_Volume(1, 2, 1) == 1"]},
]


def test_mbpp_on_local_data_runs_tests_in_the_sandbox(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from examples.make_mbpp_dataset import build as build_mbpp

    source = tmp_path / "mbpp.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in MBPP))
    ds = build_mbpp(source, tmp_path / "mbpp")
    for row in MBPP[2:]:
        server.replies[row["text"]] = f"Here you go:\n```python\n{row['code']}\n```"
    server.replies[MBPP[5]["text"]] = "```python\ndef find_Volume(l, b, h):\n    return l * b * h\n```"  # wrong
    out = local_env.run("benchmark", "run", str(ds), "MBPPSolverStrategy", "--subset=test", "--model=fake",
                        f"--api_base={server.url}", "--shots=2", "--sandbox=native", check=False)
    assert out.returncode == 0, out.stderr
    assert "Final score: 3/4" in out.stdout  # task 13 passes only because test_setup_code ran first
    assert all(MBPP[0]["text"] in p and MBPP[1]["code"] in p for p in server.prompts)  # two shots from `prompt`
    bad = local_env.run("benchmark", "run", str(ds), "MBPPSolverStrategy", "--subset=test", "--model=fake",
                        f"--api_base={server.url}", "--shots=5")
    assert bad.returncode == 1 and "offers only 2 examples" in bad.stderr and server.requests == 4


def test_few_shot_mmlu_and_gsm8k(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    def q(i: int, answer: int) -> dict[str, object]:
        return {"question": f"Question number {i}?", "choices": ["w", "x", "y", "z"], "answer": answer, "subject": "s"}

    datasets.DatasetDict({"dev": datasets.Dataset.from_list([q(i, i % 4) for i in range(100, 111)]),
                          "test": datasets.Dataset.from_list([q(1, 0), q(2, 0), q(3, 1)])}
                         ).save_to_disk(str(tmp_path / "mmlu"))
    out = local_env.run("benchmark", "run", str(tmp_path / "mmlu"), "MMLUSolverStrategy", "--subset=test",
                        "--model=fake", f"--api_base={server.url}", "--shots=2", check=True)
    assert "Final score: 2/3" in out.stdout
    assert all("Question number 100?" in p and "Question number 105?" in p and "Question number 101?" not in p
               and "Answer: B" in p for p in server.prompts)  # dev rows 0 and 5, as upstream strides the dev split
    zero = local_env.run("benchmark", "run", str(tmp_path / "mmlu"), "MMLUSolverStrategy", "--subset=test",
                         "--model=fake", f"--api_base={server.url}", "--shots=0", check=True)
    assert "0 cached" in zero.stdout and "Question number 100?" not in server.prompts[-1]  # shots key the cache
    default = local_env.run("benchmark", "run", str(tmp_path / "mmlu"), "MMLUSolverStrategy", "--subset=test",
                            "--model=fake", f"--api_base={server.url}", "--record", check=True)
    assert "0 cached" in default.stdout and server.prompts[-1].count("\nAnswer: ") == 8  # upstream's 8 by default
    assert "evaluation_mmlu_8shots_" in default.stdout  # the default names the evaluation, as upstream named it
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"question": "Train q?", "answer": "so #### 5"}]),
                          "test": datasets.Dataset.from_list([{"question": "Test q?", "answer": "#### 42"}])}
                         ).save_to_disk(str(tmp_path / "gsm8k"))
    gsm = local_env.run("benchmark", "run", str(tmp_path / "gsm8k"), "GSM8KSolverStrategy", "--subset=test",
                        "--model=fake", f"--api_base={server.url}", "--shots=1", check=True)
    assert "Final score: 1/1" in gsm.stdout and "Question: Train q?\nAnswer: so #### 5" in server.prompts[-1]
    datasets.DatasetDict({"test": datasets.Dataset.from_list([q(1, 0)])}).save_to_disk(str(tmp_path / "mmlu_test_only"))
    before = server.requests
    missing = local_env.run("benchmark", "run", str(tmp_path / "mmlu_test_only"), "MMLUSolverStrategy", "--subset=test",
                            "--model=fake", f"--api_base={server.url}", "--shots=1")
    assert missing.returncode == 1 and "--shots=1 needs one of the splits dev" in missing.stderr
    assert missing.stderr.count("\n") == 1 and server.requests == before


def test_config_commands_layer_home_project_and_environment(local_env: Env, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    no_env = Env(local_env.home, {k: v for k, v in local_env.vars.items() if k != "NEARAI_NAMESPACE"})
    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return no_env.run(*a, cwd=project)

    assert run("config", "set", "namespace", "alice").returncode == 0
    assert run("config", "set", "namespace", "bob", "--local").returncode == 0
    assert json.loads((project / ".nearai" / "config.json").read_text()) == {"namespace": "bob"}
    assert "namespace = bob" in run("config", "get", "namespace").stdout
    assert "namespace = alice" in no_env.run("config", "get", "namespace", cwd=tmp_path).stdout
    shown = run("config", "show").stdout
    assert "bob" in shown and str(project / ".nearai" / "config.json") in shown
    overridden = Env(local_env.home, dict(local_env.vars, NEARAI_NAMESPACE="carol"))
    assert "carol  (NEARAI_NAMESPACE)" in overridden.run("config", "get", "namespace", cwd=project).stdout
    folder = tmp_path / "entry"
    folder.mkdir()
    (folder / "metadata.json").write_text(json.dumps({"name": "thing", "version": "1.0.0", "category": "dataset"}))
    (folder / "a.txt").write_text("x")
    assert "uploaded bob/thing/1.0.0" in no_env.run("registry", "upload", str(folder), cwd=project, check=True).stdout
    for args, message in ((("config", "set", "namespac", "x"), "did you mean namespace?"),
                          (("config", "set", "sandbox", "vm"), "sandbox must be one of"),
                          (("config", "get"), "missing KEY")):
        bad = run(*args)
        assert bad.returncode == 2 and message in bad.stderr and bad.stderr.count("\n") == 1
    assert run("config", "set", "namespace", "", "--local").returncode == 0
    assert "namespace = alice" in run("config", "get", "namespace").stdout


def test_version_benchmark_list_and_agent_commands(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    assert re.fullmatch(r"nearai \S+\n", local_env.run("version", check=True).stdout)
    ds = build(tmp_path / "3_digit_addition", size=10)
    agent = tmp_path / "adder"
    made = local_env.run("agent", "create", str(agent), "--model=fake-default", check=True)
    assert "created agent" in made.stdout and (agent / "agent.py").is_file()
    task = local_env.run("agent", "task", str(agent), "Please add the following numbers together: 2 + 3",
                         f"--api_base={server.url}", "--verbose", check=True)
    assert task.stdout.splitlines()[-1] == "5" and "[user] Please add" in task.stdout
    assert server.models == {"fake-default"}
    uploaded = local_env.run("agent", "upload", str(agent), check=True)
    assert "uploaded tester/adder/0.0.1" in uploaded.stdout
    local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--agent=tester/adder/0.0.1",
                  f"--api_base={server.url}", "--limit=4", check=True)
    local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                  "--record", check=True)
    listed = local_env.run("benchmark", "list", check=True).stdout
    lines = [ln for ln in listed.splitlines() if "3_digit_addition" in ln]
    assert len(lines) == 2, listed  # the recorded run once, under its entry; the agent run as local
    assert any("tester/adder/0.0.1" in ln and "local" in ln for ln in lines)
    assert any("tester/evaluation" in ln or "tester/" in ln.split()[-1] for ln in lines)
    crash = tmp_path / "crash"
    crash.mkdir()
    (crash / "agent.py").write_text("raise ValueError('broken agent')\n")
    failed = local_env.run("agent", "task", str(crash), "hi", "--model=fake", f"--api_base={server.url}")
    assert failed.returncode == 1 and "broken agent" in failed.stderr and failed.stderr.count("\n") == 1
    not_agent = local_env.run("agent", "upload", str(ds))
    assert not_agent.returncode != 0 and "no agent.py" in not_agent.stderr


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
@pytest.mark.parametrize("ray_head", ["token+dashboard"], indirect=True)
def test_submit_runs_a_ray_job_from_this_folder(local_env: Env, ray_head: RayHead, tmp_path: Path) -> None:
    """On a cluster with token authentication, given only its token (RAY_AUTH_TOKEN, no RAY_AUTH_MODE)."""
    address = ray_head.dashboard
    env = Env(local_env.home, dict(local_env.vars, RAY_AUTH_TOKEN=ray_head.token, OPENAI_API_KEY="sk-secret-not-shipped"))
    project = tmp_path / "experiment"
    project.mkdir()
    (project / "job.py").write_text("import os, pathlib\nprint('job ran with', pathlib.Path('data.txt').read_text(),"
                                    " os.environ['NEARAI_EXPERIMENT'], os.environ.get('OPENAI_API_KEY'))\n")
    (project / "data.txt").write_text("local-data")
    out = env.run("submit", "--command", "python job.py", "--name=exp1", f"--cluster={address}", cwd=project,
                  check=True, timeout=180)
    submitted = re.search(r"job (exp1-[0-9a-f]{8}): PENDING", out.stdout)
    assert submitted is not None
    job_id = submitted.group(1)
    deadline = time.time() + 180
    status = ""
    while time.time() < deadline:
        status = env.run("submit", f"--status={job_id}", f"--cluster={address}", check=True).stdout
        if "SUCCEEDED" in status or "FAILED" in status:
            break
        time.sleep(1)
    assert "SUCCEEDED" in status, status
    logs = env.run("submit", f"--logs={job_id}", f"--cluster={address}", check=True).stdout
    assert "job ran with local-data exp1 None" in logs  # the folder travelled, the key did not
    too_many = env.run("submit", "--command", "python job.py", "--name=exp2", "--nodes=3", f"--cluster={address}",
                       cwd=project)
    assert too_many.returncode == 1 and "has 1 alive node" in too_many.stderr and too_many.stderr.count("\n") == 1
    nowhere = env.run("submit", "--command", "true", "--name=x", f"--cluster=http://127.0.0.1:{free_port()}")
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("error: cannot reach the Ray cluster")
    assert nowhere.stderr.count("\n") == 1
    tokenless = local_env.run("submit", "--command", "true", "--name=x", f"--cluster={address}", cwd=project)
    assert tokenless.returncode == 1 and "RAY_AUTH_TOKEN" in tokenless.stderr and tokenless.stderr.count("\n") == 1
