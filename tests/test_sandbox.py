"""The bwrap sandbox against hostile code, as real processes: model-written programs (HumanEval's path) and agents
must not read secrets or files outside their folder, write outside it, reach the network, outlive the run, flood
the parent with output, fill the disk or fork without bound."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from registry_cli.engine.isolation.bwrap import BwrapSandbox, bwrap_works
from registry_cli.engine.isolation.containers import container_works
from registry_cli.engine.isolation.sandbox import Limits
from solvers.humaneval import HumanEvalDatum, build_program, load_problems, run_program
from tests.conftest import Env, processes_with
from tests.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed or cannot run here")]


def run_code(code: str, tmp_path: Path, **limits: float) -> tuple[int | None, str, str, bool, str]:
    work = tmp_path / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    (work / "program.py").write_text(code)
    lim = Limits(**{"timeout_s": 20.0, **limits})  # type: ignore[arg-type]
    box = BwrapSandbox()
    done = asyncio.run(box.run([box.python(), "-I", "program.py"], work, {}, lim))
    return done.returncode, done.stdout.text(), done.stderr.text(), done.timed_out, done.exceeded


def test_secrets_files_and_network_are_out_of_reach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    canary = tmp_path / "canary.txt"
    canary.write_text(secret)
    canary.chmod(0o600)
    outside = tmp_path / "outside.txt"
    got: list[bytes] = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]

    def accept() -> None:
        listener.settimeout(15)
        try:
            conn, _ = listener.accept()
            got.append(conn.recv(100))
        except OSError:
            pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    probe = f"""
import glob, os, socket
found = []
if {secret!r} in repr(dict(os.environ)): found.append("environ")
for p in glob.glob("/proc/*/environ"):
    try:
        if {secret!r}.encode() in open(p, "rb").read(): found.append(p)
    except OSError: pass
for p in [{str(canary)!r}, "/root/.bash_history", {str(Path.home())!r} + "/.aws/credentials"]:
    try:
        found.append(open(p).read()[:20])
    except OSError: pass
try:
    open({str(outside)!r}, "w").write("x"); found.append("wrote")
except OSError: pass
try:
    s = socket.create_connection(("127.0.0.1", {port}), 2); s.sendall(b"leak"); found.append("net")
except OSError: pass
print("FOUND", found)
assert not found
"""
    rc, out, err, _, _ = run_code(probe, tmp_path)
    listener.close()
    t.join(1)
    assert "FOUND []" in out and rc == 0, (out, err)
    assert not outside.exists() and got == [] and secret not in out + err


def test_background_processes_die_with_the_run(tmp_path: Path) -> None:
    marker = uuid.uuid4().hex
    code = f"""
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "sleeper-{marker}"],
                         start_new_session=True)
if os.fork() == 0:
    os.setsid(); os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "forked-{marker}"])
time.sleep(0.5)
alive = [p for p in os.listdir("/proc") if p.isdigit() and b"{marker}" in open(f"/proc/{{p}}/cmdline", "rb").read()]
print("started", len(alive), child.poll())
"""
    _, out, _, _, _ = run_code(code, tmp_path)
    assert "started 2 None" in out  # both background processes were running when the program ended
    left = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker.encode() in (p / "cmdline").read_bytes():
                    left.append(p.name)
            except OSError:
                pass
    assert left == []


def test_output_flood_is_bounded(tmp_path: Path) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = "import sys\nblock = b'x' * (1 << 20)\nfor _ in range(3 * 1024):\n    sys.stdout.buffer.write(block)\n"
    rc, out, _, timed_out, _ = run_code(code, tmp_path, timeout_s=120)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert rc == 0 and not timed_out
    assert len(out) < 300 * 1024 and f"[... {3 * 2**30 - 256 * 1024} bytes omitted ...]" in out
    assert (after - before) < 100 * 1024  # KiB: the parent never held the 3 GiB


def test_disk_and_forks_are_bounded(tmp_path: Path) -> None:
    fill = """
import os
n = 0
try:
    while True:
        with open(f"f{n}", "wb") as f:
            f.write(b"x" * (8 << 20))
        n += 1
except OSError as e:
    print("stopped", n, e)
"""
    _, out, _, _, exceeded = run_code(fill, tmp_path, disk_mb=64, file_mb=16, timeout_s=30)
    assert exceeded == "disk" or "stopped" in out
    written = sum(f.stat().st_size for d in tmp_path.glob("work-*") for f in d.iterdir())
    assert written < 64 * 2**20 + 300 * 2**20  # the limit plus what one poll interval can let through
    tmpfill = fill.replace('f"f{n}"', 'f"/tmp/f{n}"')
    _, out, _, _, _ = run_code(tmpfill, tmp_path, disk_mb=32, file_mb=16)
    assert "stopped" in out and "No space left" in out
    bomb = """
import os, time
n = 0
try:
    while n < 5000:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print("fork failed after", n, e)
"""
    _, out, _, _, _ = run_code(bomb, tmp_path, nproc=64, timeout_s=20)
    assert "fork failed after" in out and int(out.split("after ")[1].split()[0]) < 64


def test_canonical_humaneval_solutions_pass_in_the_sandbox() -> None:
    problems = load_problems()
    box = BwrapSandbox()

    async def all_() -> list[tuple[str, str]]:
        sem = asyncio.Semaphore(8)

        async def one(p: dict[str, Any]) -> tuple[str, str]:
            async with sem:
                return await run_program(build_program(HumanEvalDatum(**p), p["canonical_solution"]), 20, 1024, box)

        return await asyncio.gather(*(one(p) for p in problems))

    assert [r for r in asyncio.run(all_()) if r[0] != "passed"] == []


def test_agents_run_sandboxed(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from examples.make_addition_dataset import build
    from tests.conftest import ROOT

    secret = f"sk-agent-canary-{uuid.uuid4().hex}"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret))
    ds = build(tmp_path / "3_digit_addition", size=4)
    ok = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}",
                 f"--agent={ROOT / 'examples' / 'addition_agent'}", "--quiet", "--sandbox=bwrap", check=True)
    assert "Final score:" in ok.stdout and "Final score: 0/" not in ok.stdout
    spy = tmp_path / "spy_agent"
    spy.mkdir()
    home = local_env.home
    (spy / "agent.py").write_text(f"""
import glob, os
def run(env):
    found = []
    for p in glob.glob("/proc/*/environ"):
        try:
            if {secret!r}.encode() in open(p, "rb").read(): found.append(p)
        except OSError: pass
    if os.path.exists({str(home)!r}): found.append("home")
    try:
        open({str(tmp_path / 'agent_wrote')!r}, "w").write("x"); found.append("wrote")
    except OSError: pass
    return "found " + ",".join(found)
""")
    out = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", f"--api_base={server.url}",
                  f"--agent={spy}", "--quiet", "--sandbox=bwrap", "--limit=1", "--record")
    assert out.returncode == 0 and not (tmp_path / "agent_wrote").exists()
    solutions = env.run("evaluation", "read_solutions", out.stdout.split("recorded evaluation ")[1].split()[0],
                        "--verbose", check=True).stdout
    assert '"answer": "found"' in solutions and secret not in solutions  # the agent found nothing
    assert os.environ.get("OPENAI_API_KEY") != secret


def test_killing_the_benchmark_leaves_no_sandboxed_process(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    from examples.make_addition_dataset import build

    marker = uuid.uuid4().hex
    agent = tmp_path / "lingering_agent"
    agent.mkdir()
    (agent / "agent.py").write_text(f"""
import subprocess, sys, time
def run(env):
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "linger-{marker}"],
                     start_new_session=True)
    time.sleep(300)
""")
    ds = build(tmp_path / "3_digit_addition", size=3)
    proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", str(ds), "ThreeDigitAdditionSolver",
                             "--model=m", f"--api_base={server.url}", f"--agent={agent}", "--quiet", "--sandbox=bwrap"],
                            env=local_env.vars, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    deadline = time.time() + 60
    while len(processes_with(marker)) < 3 and time.time() < deadline:
        time.sleep(0.2)
    assert len(processes_with(marker)) == 3  # one per datum, all running
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while processes_with(marker) and time.time() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == []


def test_agent_disk_limit_and_unavailable_backend(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from examples.make_addition_dataset import build
    from tests.conftest import ROOT

    hog = tmp_path / "hog_agent"
    hog.mkdir()
    (hog / "agent.py").write_text("def run(env):\n    for i in range(100):\n"
                                  "        open(f'f{i}', 'wb').write(b'x' * (32 << 20))\n    return '1'\n")
    ds = build(tmp_path / "3_digit_addition", size=1)
    out = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--agent={hog}", "--quiet")
    assert out.returncode == 3 and "agent exceeded the disk limit (512 MiB)" in out.stdout
    bare_path = tmp_path / "bin"  # a machine without podman: only bwrap on the PATH
    bare_path.mkdir()
    (bare_path / "bwrap").symlink_to(shutil.which("bwrap") or "/usr/bin/bwrap")
    no_podman = Env(local_env.home, dict(local_env.vars, PATH=str(bare_path)))
    missing = no_podman.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--agent={hog}",
                            "--sandbox=podman")
    assert missing.returncode == 2 and "--sandbox=podman: no podman daemon answers here" in missing.stderr
    assert missing.stderr.count("\n") == 1
    if container_works("podman"):  # podman here, but not the image: one line before any datum, not an error each
        no_image = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--agent={hog}",
                                 "--sandbox=podman", "--docker_image=localhost/nearai-absent:1")
        assert no_image.returncode == 2 and no_image.stderr.count("\n") == 1
        assert "image localhost/nearai-absent:1 is not on this machine" in no_image.stderr
    configured = Env(local_env.home, dict(local_env.vars, NEARAI_SANDBOX="native"))
    native = configured.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                            f"--api_base={server.url}", f"--agent={ROOT / 'examples' / 'addition_agent'}", "--quiet")
    assert native.returncode == 0 and "warning: --sandbox=native" in native.stderr  # the configured default
    bogus = Env(local_env.home, dict(local_env.vars, NEARAI_SANDBOX="chroot"))
    refused = bogus.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--agent={hog}")
    assert refused.returncode == 2 and "NEARAI_SANDBOX: sandbox must be one of" in refused.stderr


@pytest.mark.skipif(not container_works("docker"),
                    reason="no docker daemon answers here (the docker backend needs one and a local python image)")
def test_docker_backend_runs_humaneval_isolated(tmp_path: Path) -> None:
    from registry_cli.engine.isolation.containers import ContainerSandbox

    box = ContainerSandbox("docker", "python:3.11-slim")
    problems = load_problems()[:3]

    async def all_() -> list[tuple[str, str]]:
        return [await run_program(build_program(HumanEvalDatum(**p), p["canonical_solution"]), 60, 512, box)
                for p in problems]

    assert [r for r in asyncio.run(all_()) if r[0] != "passed"] == []
    status, _ = asyncio.run(run_program("import socket\nsocket.create_connection(('1.1.1.1', 53), 3)\n",
                                             20, 256, box))
    assert status == "failed"


def test_agents_send_and_print_big_messages(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from examples.make_addition_dataset import build

    chatty = tmp_path / "chatty_agent"
    chatty.mkdir()
    (chatty / "agent.py").write_text(
        "def run(env):\n"
        "    print('p' * 300_000)\n"  # one print line far over 64 KiB
        "    task = env.get_last_message()['content']\n"
        "    env.add_system_log('l' * 200_000)\n"
        "    return env.completion([{'role': 'user', 'content': task + '\\n' + 'y' * 500_000}])\n")
    ds = build(tmp_path / "3_digit_addition", size=6)
    for _ in range(3):  # it used to hang in about half of the tries
        out = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                            f"--api_base={server.url}", f"--agent={chatty}", "--quiet", "--force", "--timeout=60",
                            timeout=90)
        assert out.returncode == 0 and "errors" not in out.stdout.split("Final")[-1], out.stdout + out.stderr
        assert "Final score: 0/" not in out.stdout
