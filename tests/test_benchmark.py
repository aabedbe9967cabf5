"""`nearai benchmark run` end to end: real HF datasets on disk, a real local OpenAI-compatible HTTP server,
real subprocesses for the CLI, agents and HumanEval programs, and the moto S3 server for the shared cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import ROOT, Env, second_home, stored_keys
from tests.openai_server import FakeOpenAI, expected_addition

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


@pytest.fixture
def addition(tmp_path: Path) -> Path:
    return build(tmp_path / "3_digit_addition", size=60)


def expected_passes(ds_path: Path) -> int:
    import datasets

    rows = datasets.load_from_disk(str(ds_path)).to_list()
    return sum(expected_addition(*map(int, r["input"].split(" + "))) == r["output"] for r in rows)


def bench(env: Env, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return env.run("benchmark", "run", *args, "--quiet", **kw)  # type: ignore[arg-type]


def test_scores_cache_and_force(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    want = expected_passes(addition)
    assert 0 < want < 60
    first = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                  check=True)
    assert f"Final score: {want}/60 - {100 * want / 60:.2f}%" in first.stdout
    assert server.requests == 60 and server.models == {"fake"}
    again = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                  "--timeout=5", "--num_inference_retries=1", check=True)  # timeouts/retries are not in the key
    assert server.requests == 60 and "60 cached" in again.stdout and f"Final score: {want}/60" in again.stdout
    forced = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                   "--force", check=True)
    assert server.requests == 120 and "0 cached" in forced.stdout
    hotter = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                   "--temperature=0.7", check=True)  # generation params are in the key
    assert server.requests == 180 and "0 cached" in hotter.stdout


def test_errors_are_reported_not_cached_and_retried(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    import datasets

    victim = datasets.load_from_disk(str(addition))[3]["input"]
    server.fail_substrings = (victim,)
    args = (str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
            "--num_inference_retries=2")
    first = bench(local_env, *args)
    assert first.returncode == 3 and "(1 errors, not cached: rerun to retry them)" in first.stdout
    assert "HTTP 500" in first.stdout and "Traceback" not in first.stderr
    assert server.requests == 59 + 3  # three attempts for the failing datum
    server.fail_substrings = ()
    second = bench(local_env, *args, check=True)
    assert server.requests == 63 and "59 cached" in second.stdout and "errors" not in second.stdout.split("Final")[1]


def test_rate_limits_are_retried(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    server.fail_first = 7
    out = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                "--max_concurrent=4", check=True)
    assert server.requests == 67 and f"Final score: {expected_passes(addition)}/60" in out.stdout


def test_resume_after_kill_loses_only_in_flight(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    server.latency = 0.1
    proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", str(addition),
                             "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                             "--max_concurrent=4", "--quiet"], env=local_env.vars, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while server.requests < 25 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = server.requests
    assert 25 <= before < 60
    server.latency = 0.0
    out = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                check=True)
    computed = server.requests - before
    cached = int(out.stdout.split(" cached")[0].rsplit(" ", 1)[1])
    assert cached + computed == 60 and cached >= before - 4 - 1  # at most the in-flight datums were lost
    assert f"Final score: {expected_passes(addition)}/60" in out.stdout


def test_remote_cache_shared_between_machines(s3_env: Env, server: FakeOpenAI, addition: Path, tmp_path: Path) -> None:
    args = (str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}")
    bench(s3_env, *args, check=True)
    assert server.requests == 60
    other = second_home(s3_env, tmp_path)  # empty local cache, same S3 store
    out = bench(other, *args, check=True)
    assert server.requests == 60 and "60 cached" in out.stdout
    assert f"Final score: {expected_passes(addition)}/60" in out.stdout


def test_a_second_machine_mid_run_computes_only_what_is_not_shared_yet(s3_env: Env, server: FakeOpenAI,
                                                                       tmp_path: Path) -> None:
    """Results reach the store while a run is in flight (a pack every few seconds), so a second machine starting the
    same benchmark meanwhile takes them, and the ones shared while it runs, instead of asking the model again."""
    server.latency = 0.1
    s3_env = Env(s3_env.home, dict(s3_env.vars, NEARAI_SHARE_SECONDS="1"))
    ds = build(tmp_path / "3_digit_addition", size=400)
    args = [str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}", "--max_concurrent=4"]
    first = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", *args, "--quiet"],
                             env=s3_env.vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not stored_keys(s3_env) and first.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    shared_before = len(stored_keys(s3_env))
    assert first.poll() is None and 0 < shared_before < 400  # shared while the first run goes on
    second = bench(second_home(s3_env, tmp_path), *args, check=True, timeout=120)
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-2000:]
    want = f"Final score: {expected_passes(ds)}/400"
    assert want in out and want in second.stdout
    cached = int(second.stdout.split(" cached")[0].rsplit(" ", 1)[1])
    assert cached >= shared_before, second.stdout
    # the second goes from the other end and both skip what the other shares meanwhile: they meet once (without
    # that, every datum not shared when the second started would be asked twice)
    assert server.requests - 400 <= (400 - shared_before) // 2, (server.requests, shared_before)


def test_dataset_from_registry_entry(any_env: Env, server: FakeOpenAI, addition: Path) -> None:
    any_env.run("registry", "upload", str(addition), check=True)
    out = bench(any_env, "tester/3_digit_addition/1.0.0", "ThreeDigitAdditionSolver", "--model=fake",
                f"--api_base={server.url}", check=True)
    assert f"Final score: {expected_passes(addition)}/60" in out.stdout


def test_api_key_never_stored(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    secret = "sk-test-SECRETVALUE123"
    env = Env(local_env.home, dict(local_env.vars, OPENAI_API_KEY=secret))
    server.fail_substrings = ("1 + ",)  # some errors, whose messages must be clean too
    out = bench(env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                "--num_inference_retries=0", "--record")
    assert server.auth_headers == {f"Bearer {secret}"}
    assert secret not in out.stdout + out.stderr
    for p in local_env.home.rglob("*"):
        if p.is_file():
            assert b"SECRETVALUE123" not in p.read_bytes(), p


def test_litellm_backend_matches(local_env: Env, server: FakeOpenAI, addition: Path) -> None:
    env = Env(local_env.home, dict(local_env.vars, NEARAI_INFERENCE_BACKEND="litellm", OPENAI_API_KEY="sk-x"))
    out = bench(env, str(addition), "ThreeDigitAdditionSolver", "--model=openai/fake", f"--api_base={server.url}",
                "--limit=10", check=True, timeout=300)
    assert server.requests == 10 and "tokens" in out.stdout
    import datasets

    rows = datasets.load_from_disk(str(addition)).to_list()[:10]
    want = sum(expected_addition(*map(int, r["input"].split(" + "))) == r["output"] for r in rows)
    assert f"Final score: {want}/10" in out.stdout


def test_agent_runs_in_its_own_process(local_env: Env, server: FakeOpenAI, addition: Path, tmp_path: Path) -> None:
    agent = ROOT / "examples" / "addition_agent"
    out = bench(local_env, str(addition), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
                f"--agent={agent}", "--limit=12", "--max_concurrent=6", check=True)
    assert server.requests == 12 and "Final score:" in out.stdout
    import datasets

    rows = datasets.load_from_disk(str(addition)).to_list()[:12]
    want = sum(expected_addition(*map(int, r["input"].split(" + "))) == r["output"] for r in rows)
    assert f"Final score: {want}/12" in out.stdout

    slow = tmp_path / "slow_agent"
    slow.mkdir()
    (slow / "agent.py").write_text("import time\n\ndef run(env):\n    time.sleep(30)\n    return '1'\n")
    t0 = time.time()
    timed = bench(local_env, str(addition), "ThreeDigitAdditionSolver", f"--agent={slow}", "--limit=2", "--timeout=1")
    assert timed.returncode == 3 and "agent timed out after 1s" in timed.stdout and time.time() - t0 < 20

    crashing = tmp_path / "crash_agent"
    crashing.mkdir()
    (crashing / "agent.py").write_text("def run(env):\n    raise ValueError('nope')\n")
    crashed = bench(local_env, str(addition), "ThreeDigitAdditionSolver", f"--agent={crashing}", "--limit=1")
    assert crashed.returncode == 3 and "ValueError: nope" in crashed.stdout


def test_dataset_dict_needs_subset(local_env: Env, tmp_path: Path, server: FakeOpenAI) -> None:
    import datasets

    d = datasets.Dataset.from_dict({"input": ["1 + 1"], "output": ["2"]})
    datasets.DatasetDict({"train": d, "test": d}).save_to_disk(str(tmp_path / "3_digit_addition_dd"))
    proc = bench(local_env, str(tmp_path / "3_digit_addition_dd"), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}")
    assert proc.returncode == 1 and "has several subsets: test, train" in proc.stderr and "--subset=test" in proc.stderr
    ok = bench(local_env, str(tmp_path / "3_digit_addition_dd"), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
               "--subset=test", check=True)
    assert "Final score: 1/1 - 100.00%" in ok.stdout
    bad = bench(local_env, str(tmp_path / "3_digit_addition_dd"), "ThreeDigitAdditionSolver", "--model=fake", "--subset=nope")
    assert bad.returncode == 1 and "no subset 'nope'" in bad.stderr


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["NoSuchSolver", "--model=m"], "unknown solver 'NoSuchSolver'"),
        (["ThreeDigitAdditionSolver"], "pass --model or --agent"),
        (["ThreeDigitAdditionSolver", "--model=m", "--max_concurrent=zero"], "--max_concurrent expects an integer"),
        (["ThreeDigitAdditionSolver", "--model=m", "--bogus=1"],
         "unknown flag --bogus: not a `benchmark run` flag, and ThreeDigitAdditionSolver takes no arguments"),
    ],
)
def test_bad_benchmark_input(local_env: Env, addition: Path, args: list[str], expect: str) -> None:
    proc = local_env.run("benchmark", "run", str(addition), *args)  # no --quiet: no bar may be drawn
    assert proc.returncode != 0 and expect in proc.stderr and proc.stderr.count("\n") == 1


def test_missing_dataset(local_env: Env) -> None:
    proc = bench(local_env, "nobody/nothing", "ThreeDigitAdditionSolver", "--model=m")
    assert proc.returncode == 1 and "neither a local folder nor a registry entry" in proc.stderr


def test_solver_from_entry_point_and_module_path(local_env: Env, server: FakeOpenAI, addition: Path,
                                                 tmp_path: Path) -> None:
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "my_solvers.py").write_text(
        "from solvers import SolverStrategy, SolveResult\n"
        "class EchoSolver(SolverStrategy):\n"
        "    def solve(self, datum, session):\n"
        "        return SolveResult(passed=datum['output'].endswith('0'), metrics={'len': len(datum['output'])})\n"
    )
    dist = plugin / "my_solvers-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-solvers\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[nearai.solvers]\nEchoSolver = my_solvers:EchoSolver\n")
    env = Env(local_env.home, dict(local_env.vars, PYTHONPATH=f"{ROOT}:{plugin}"))
    by_ep = bench(env, str(addition), "EchoSolver", "--model=fake", f"--api_base={server.url}", check=True)
    by_path = bench(env, str(addition), "my_solvers:EchoSolver", "--model=fake", f"--api_base={server.url}",
                    check=True)
    import datasets

    want = sum(r["output"].endswith("0") for r in datasets.load_from_disk(str(addition)).to_list())
    assert f"Final score: {want}/60" in by_ep.stdout and f"Final score: {want}/60" in by_path.stdout
    assert server.requests == 0  # this solver never calls the model (a sync solve() ran in a thread)
