"""Optional Ray execution (`--ray_address`): datums run on Ray workers and share the S3 cache with the driver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from registry_cli.core.content import sha256_hex
from tests.conftest import Env, RayHead, free_port, second_home, stored_keys
from tests.openai_server import FakeOpenAI
from tests.test_benchmark import expected_passes

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
def test_ray_run_shares_the_s3_cache(s3_env: Env, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    server = FakeOpenAI().start()
    try:
        ds = build(tmp_path / "3_digit_addition", size=30)
        args = (str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}", "--quiet")
        on_ray = s3_env.run("benchmark", "run", *args, "--ray_address=local", check=True, timeout=300)
        assert server.requests == 30 and "Final score:" in on_ray.stdout
        local = second_home(s3_env, tmp_path).run("benchmark", "run", *args, check=True)
        assert server.requests == 30 and "30 cached" in local.stdout
        assert on_ray.stdout.splitlines()[-1] == local.stdout.splitlines()[-1]
    finally:
        server.stop()


def test_ray_missing_is_a_clear_error(local_env: Env, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")  # as if Ray were absent
    env = Env(local_env.home, dict(local_env.vars, PYTHONPATH=f"{shadow.parent}:{local_env.vars['PYTHONPATH']}"))
    ds = build(tmp_path / "3_digit_addition", size=2)
    proc = env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m", "--ray_address=local")  # no --quiet
    assert proc.returncode == 2 and "needs Ray installed" in proc.stderr and proc.stderr.count("\n") == 1


def _ray_said(env: Env) -> str:
    """What Ray printed while a failed connection was tried (kept in the home's logs), for a failing test's message."""
    log = env.home / "logs" / "ray-connect.log"
    return log.read_text()[-3000:] if log.exists() else ""


def on_cluster(tmp_path: Path, size: int, server: FakeOpenAI, head: RayHead) -> tuple[Path, tuple[str, ...]]:
    """An addition dataset of ``size`` and the `benchmark run` arguments answering it on ``head``'s cluster."""
    ds = build(tmp_path / "3_digit_addition", size=size)
    return ds, (str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}", "--quiet",
                f"--ray_address={head.address}")


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
def test_a_cluster_with_token_authentication_needs_only_its_token(s3_env: Env, ray_head: RayHead,
                                                                  tmp_path: Path) -> None:
    server = FakeOpenAI().start()
    try:
        ds, args = on_cluster(tmp_path, 40, server, ray_head)
        home = tmp_path / "user"  # no ~/.ray/auth_token there
        tokenless = Env(s3_env.home, dict(s3_env.vars, HOME=str(home)))
        given = Env(s3_env.home, dict(tokenless.vars, RAY_AUTH_TOKEN=ray_head.token))
        out = given.run("benchmark", "run", *args, timeout=300)
        assert out.returncode == 0, out.stderr + _ray_said(s3_env) + ray_head.said()
        assert server.requests == 40 and f"Final score: {expected_passes(ds)}/40" in out.stdout
        assert sorted(set(keys := stored_keys(s3_env))) == sorted(keys) and len(keys) == 40  # each result once
        (home / ".ray").mkdir(parents=True)
        (home / ".ray" / "auth_token").write_text(ray_head.token)  # where `ray get-auth-token --generate` puts it
        again = tokenless.run("benchmark", "run", *args, "--force", timeout=300)
        assert again.returncode == 0, again.stderr + _ray_said(s3_env) + ray_head.said()
        assert server.requests == 80 and f"Final score: {expected_passes(ds)}/40" in again.stdout
        (home / ".ray" / "auth_token").unlink()
        refused = tokenless.run("benchmark", "run", *args, "--force", timeout=60)  # refused at once, no retries
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
        assert "cannot connect to the Ray cluster" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr
        assert "this machine has no token" in refused.stderr
        wrong = Env(s3_env.home, dict(tokenless.vars, RAY_AUTH_TOKEN="another-clusters-token"))
        refused = wrong.run("benchmark", "run", *args, "--force", timeout=60)
        assert refused.returncode == 1 and "a token that is not the cluster's" in refused.stderr
        assert refused.stderr.count("\n") == 1 and "another-clusters-token" not in refused.stderr
        nowhere = tokenless.run("benchmark", "run", *args[:-1], f"--ray_address=127.0.0.1:{free_port()}", "--force",
                                timeout=60)
        assert nowhere.returncode == 1 and "nothing answers at" in nowhere.stderr and nowhere.stderr.count("\n") == 1
        assert server.requests == 80  # nothing was asked by the runs refused
    finally:
        server.stop()


def _busy_worker(store: str, done: int) -> int:
    """The pid of a Ray worker process appending to a pack that holds ``done`` results or more, or 0."""
    home = Path(tempfile.gettempdir()) / f"nearai-ray-{os.getuid()}-{sha256_hex(store.encode())[:16]}"
    packs = {str(p) for p in home.glob("cache/results/packs/*/run-*.jsonl") if p.read_bytes().count(b"\n") >= done}
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) in packs:
                return int(fd.parent.parent.name)
        except OSError:
            continue
    return 0


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
def test_a_ray_worker_killed_mid_run_loses_only_its_datums_in_flight(s3_env: Env, ray_head: RayHead,
                                                                     tmp_path: Path) -> None:
    server = FakeOpenAI(latency=0.4).start()
    try:
        ds = build(tmp_path / "3_digit_addition", size=64)
        env = Env(s3_env.home, dict(s3_env.vars, RAY_AUTH_TOKEN=ray_head.token))
        proc = subprocess.Popen([sys.executable, "-m", "registry_cli", "benchmark", "run", str(ds),
                                 "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}", "--quiet",
                                 "--max_concurrent=2", f"--ray_address={ray_head.address}"],
                                env=env.vars, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and not (victim := _busy_worker(env.vars["NEARAI_STORE"], 3)):
            time.sleep(0.05)
        assert victim, "no Ray worker answered 3 datums of a chunk"
        os.kill(victim, signal.SIGKILL)  # its 3+ answers are in its pack, 2 more in flight
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        assert f"Final score: {expected_passes(ds)}/64" in out
        assert server.requests <= 64 + 2, server.requests  # only the killed worker's datums in flight asked again
        keys = stored_keys(s3_env)
        assert len(keys) == len(set(keys)) == 64  # every result in the store exactly once
    finally:
        server.stop()


@pytest.mark.xdist_group("ray")  # one local Ray cluster at a time
@pytest.mark.parametrize("ray_head", ["disabled"], indirect=True)
def test_a_cluster_without_authentication_takes_a_client_that_has_a_token(s3_env: Env, ray_head: RayHead,
                                                                          tmp_path: Path) -> None:
    """The same command works against both kinds of cluster: a token at hand is offered, and ignored here."""
    server = FakeOpenAI().start()
    try:
        ds, args = on_cluster(tmp_path, 20, server, ray_head)
        home = tmp_path / "user"
        for given in ({}, {"RAY_AUTH_TOKEN": "some-other-clusters-token"}):
            env = Env(s3_env.home, dict(s3_env.vars, HOME=str(home), **given))
            out = env.run("benchmark", "run", *args, "--force", timeout=300)
            assert out.returncode == 0, out.stderr + _ray_said(s3_env) + ray_head.said()
            assert f"Final score: {expected_passes(ds)}/20" in out.stdout
        assert server.requests == 40
    finally:
        server.stop()
