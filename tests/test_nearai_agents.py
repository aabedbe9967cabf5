"""nearai agents written in upstream's style run unchanged, as real processes in the sandbox: every method of
`nearai.agents.environment.Environment` an agent can use without the hub, agent data kept between tasks, tools
called by the model, registry agents started by agents, declared requirements, and metadata as upstream wrote it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.openai_server import FakeOpenAI
from tests.wheels import tiny_wheel

pytestmark = pytest.mark.slow

# An agent as upstream's users wrote them: a class over `env`, run when the runner defines `env`, exercising the
# Environment's threads, messages, files, logs, tools, agent data, other agents and a hub-only method.
KITCHEN_SINK = '''
import json
from typing import Optional

from nearai.agents.environment import Environment, ThreadMode, RunMode
from nearai.shared.models import ThreadMode as SharedThreadMode


def add_numbers(a: int, b: int, note: Optional[str] = None) -> int:
    """Add two whole numbers.
    a: the first number
    b: the second number
    """
    return a + b


class Agent:
    def __init__(self, env: Environment):
        self.env = env

    def run(self):
        env = self.env
        report = {}
        thread = env.get_thread()
        report["thread_is_main"] = thread.id == env.get_thread_id() and not thread.metadata.get("parent_id")
        task = env.get_last_message()["content"]
        report["task"] = task
        report["same_enum"] = ThreadMode is SharedThreadMode
        env.add_system_log("starting")
        env.add_agent_log("agent log line")
        registry = env.get_tool_registry(new=True)
        registry.register_tool(add_numbers)
        report["tool_schema"] = registry.get_tool_definition("add_numbers")["function"]["parameters"]
        tools = registry.get_all_tool_definitions()
        env.completions_and_run_tools([{"role": "user", "content": "TOOLCALL please add"}], tools=tools)
        report["tool_answer"] = [m["content"] for m in env.list_messages() if m["content"] == "5"]
        got = env.completion_and_get_tools_calls([{"role": "user", "content": "TOOLCALL again"}], tools=tools)
        report["calls"] = [c.function.name for c in got.tool_calls]
        report["plain"] = env.completion([{"role": "user", "content": "say hello"}], temperature=0.25, max_tokens=7)
        env.write_file("notes/out.txt", "written by the agent")
        report["read_back"] = env.read_file("notes/out.txt")
        report["own_file"] = env.read_file("prompt.txt")
        report["listed"] = env.list_files("notes")
        files = env.list_files_from_thread()
        report["thread_files"] = [f.filename for f in files]
        report["by_id"] = env.read_file_by_id(files[0].id)
        count = env.get_agent_data_by_key("runs", default=0)["value"] + 1
        env.save_agent_data("runs", count)
        report["runs"] = count
        report["all_data_keys"] = sorted(d["key"] for d in env.get_agent_data())
        child = env.run_agent("tester/echo/0.0.1", query="ping", thread_mode=ThreadMode.CHILD,
                              run_mode=RunMode.WITH_CALLBACK)
        report["child_parent"] = env.get_thread(child).metadata.get("parent_id") == env.get_thread_id()
        report["child_says"] = [m["content"] for m in env.list_messages(thread_id=child) if m["role"] == "assistant"]
        try:
            env.generate_image("a cat")
        except NotImplementedError as e:
            report["hub_only"] = str(e)
        try:
            env.query_vector_store("vs_1", "q")
        except NotImplementedError as e:
            report["vector"] = str(e)
        report["primary"] = env.get_primary_agent().name
        env.add_reply(json.dumps(report))
        env.mark_done()


if globals().get("env", None):
    Agent(globals().get("env")).run()
'''

ECHO = '''
from nearai.agents.environment import Environment

env.add_reply("echo: " + env.get_last_message()["content"])
'''


def write_agent(folder: Path, code: str, metadata: dict[str, object], files: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / "agent.py").write_text(code)
    (folder / "metadata.json").write_text(json.dumps(metadata))
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


def agent_metadata(name: str, defaults: dict[str, object] | None = None) -> dict[str, object]:
    return {"name": name, "version": "0.0.1", "category": "agent", "description": name, "tags": [],
            "details": {"agent": {"defaults": defaults or {}}}, "show_entry": True}


def test_an_upstream_agent_uses_the_whole_environment(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    server.tool_replies = {"TOOLCALL": [("add_numbers", '{"a": "2", "b": 3}')]}
    echo = write_agent(tmp_path / "echo", ECHO, agent_metadata("echo"))
    local_env.run("registry", "upload", str(echo), check=True)
    sink = write_agent(tmp_path / "sink", KITCHEN_SINK, agent_metadata("sink"), {"prompt.txt": "packaged"})

    def task() -> dict[str, object]:
        out = local_env.run("agent", "task", str(sink), "What is 2 + 3?", "--model=fake",
                            f"--api_base={server.url}", check=True)
        return dict(json.loads(out.stdout.strip().splitlines()[0]))

    report = task()
    assert report["thread_is_main"] and report["task"] == "What is 2 + 3?" and report["same_enum"]
    assert report["tool_schema"] == {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"description": "the first number", "type": "integer"},
        "b": {"description": "the second number", "type": "integer"},
        "note": {"description": "", "type": "string"}}}
    assert report["tool_answer"] == ["5"] and report["calls"] == ["add_numbers"]  # the tool ran in the agent
    assert report["plain"] == "I don't know."
    plain = next(b for b in server.bodies if b["messages"][-1]["content"] == "say hello")
    assert plain["temperature"] == 0.25 and plain["max_tokens"] == 7  # the agent's own parameters reach the model
    assert all("tools" in b for b in server.bodies if "TOOLCALL" in json.dumps(b["messages"]))
    assert report["read_back"] == "written by the agent" and report["own_file"] == "packaged"
    assert report["listed"] == ["out.txt"] and report["thread_files"] == ["notes/out.txt"]
    assert report["by_id"] == "written by the agent"
    assert report["child_parent"] and report["child_says"] == ["echo: ping"]  # a registry agent, in its own sandbox
    assert "env.generate_image() needs the nearai hub" in str(report["hub_only"])
    assert "vector stores" in str(report["vector"]) and report["primary"] == "sink"
    assert report["runs"] == 1 and report["all_data_keys"] == ["runs"]
    assert task()["runs"] == 2  # agent data is kept between tasks, per agent


def test_metadata_defaults_as_upstream_wrote_them(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"input": "add the following numbers together: 1 + 2", "output": "3"}]
                               ).save_to_disk(str(tmp_path / "3_digit_addition"))
    reply = "env.add_reply(env.completion(env.list_messages()))\n"
    tuned = write_agent(tmp_path / "tuned", reply, agent_metadata("tuned", {
        "model": "fake", "model_provider": "local", "model_temperature": 0.7, "model_max_tokens": 123,
        "max_iterations": 1, "inference_framework": "nearai"}))
    out = local_env.run("benchmark", "run", str(tmp_path / "3_digit_addition"), "ThreeDigitAdditionSolver",
                        f"--agent={tuned}", f"--api_base={server.url}", check=True)
    assert "Final score: 1/1" in out.stdout
    assert server.bodies[-1]["temperature"] == 0.7 and server.bodies[-1]["max_tokens"] == 123
    assert out.stderr.count("inference_framework") == 1 and "not used here" in out.stderr  # named once
    again = local_env.run("benchmark", "run", str(tmp_path / "3_digit_addition"), "ThreeDigitAdditionSolver",
                          f"--agent={tuned}", f"--api_base={server.url}", "--temperature=0", check=True)
    assert "0 cached" in again.stdout and server.bodies[-1]["temperature"] == 0.0  # the run's own flag wins
    listed = write_agent(tmp_path / "listed", reply, agent_metadata("listed", {"models": [
        {"model": "fake", "model_provider": "local", "model_temperature": 0.3}]}))
    local_env.run("benchmark", "run", str(tmp_path / "3_digit_addition"), "ThreeDigitAdditionSolver",
                  f"--agent={listed}", f"--api_base={server.url}", check=True)
    assert server.bodies[-1]["temperature"] == 0.3  # defaults.models[0]
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "agent.py").write_text(reply)
    (broken / "metadata.json").write_text("{not json")
    for args in (("benchmark", "run", str(tmp_path / "3_digit_addition"), "ThreeDigitAdditionSolver",
                  f"--agent={broken}", f"--api_base={server.url}", "--model=fake"),
                 ("agent", "task", str(broken), "hi", f"--api_base={server.url}", "--model=fake"),
                 ("agent", "upload", str(broken))):
        bad = local_env.run(*args)
        assert bad.returncode == 1 and "metadata.json is not valid JSON" in bad.stderr, args
        assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr




def test_requirements_install_once_outside_and_mount_read_only(local_env: Env, server: FakeOpenAI,
                                                                tmp_path: Path) -> None:
    wheel = tiny_wheel(tmp_path, "tinydep", "VALUE = 41\n")
    code = ("import os, tinydep\n"
            "try:\n    open(os.path.join(os.path.dirname(tinydep.__file__), 'x'), 'w')\n    writable = True\n"
            "except OSError:\n    writable = False\n"
            "env.add_reply(f'{tinydep.VALUE + 1} writable={writable}')\n")
    agent = write_agent(tmp_path / "needs", code, agent_metadata("needs"), {"requirements.txt": f"{wheel}\n"})
    local_env.vars["PIP_NO_INDEX"] = "1"
    out = local_env.run("agent", "task", str(agent), "go", check=True, timeout=300)
    assert out.stdout.startswith("42 writable=False")
    envs = list((local_env.home / "cache" / "envs").iterdir())
    assert len(envs) == 1 and (envs[0] / "tinydep" / "__init__.py").is_file()
    stamp = (envs[0] / ".complete").stat().st_mtime_ns
    local_env.run("agent", "task", str(agent), "go", check=True)
    assert (envs[0] / ".complete").stat().st_mtime_ns == stamp  # reused, not installed again
    (agent / "requirements.txt").write_text("surely-not-a-package-xyz==0.0.1\n")
    bad = local_env.run("agent", "task", str(agent), "go")
    assert bad.returncode == 1 and "installing the requirements failed" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_nearai_imports_in_every_sandbox_and_hub_only_is_one_clear_error(local_env: Env, tmp_path: Path) -> None:
    code = ("import nearai, nearai.config\n"
            "from nearai.agents.environment import Environment, ThreadMode, RunMode\n"
            "from nearai.shared.models import StaticFileChunkingStrategyParam\n"
            "from nearai.config import Config, load_config_file\n"
            "missing = []\n"
            "for name in ('add_user_memory', 'schedule_run', 'find_agents', 'signed_completion', 'set_near'):\n"
            "    try:\n        getattr(env, name)('x')\n"
            "    except NotImplementedError as e:\n        missing.append(str(e).split(' (')[0])\n"
            "try:\n    env.no_such_method()\nexcept AttributeError as e:\n    missing.append(str(e))\n"
            "env.add_reply(' | '.join(missing))\n")
    agent = write_agent(tmp_path / "hubby", code, agent_metadata("hubby"))
    out = local_env.run("agent", "task", str(agent), "go", check=True).stdout
    again = ("if env.get_last_message()['content'] == 'inner':\n    env.add_reply('inner done')\n"
             "else:\n    env.call_agent(0, 'inner')\n    env.add_reply('outer saw: ' + env.list_messages()[-1]['content'])\n")
    twice = write_agent(tmp_path / "twice", again, agent_metadata("twice"))
    assert local_env.run("agent", "task", str(twice), "go", check=True).stdout.strip() == "outer saw: inner done"
    assert "env.add_user_memory() needs the nearai hub, which has shut down" in out
    assert "env.set_near() needs" in out and "env.find_agents() needs" in out
    assert "the nearai Environment has no method 'no_such_method'" in out
