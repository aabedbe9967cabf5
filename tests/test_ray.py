"""Optional Ray execution (`--ray_address`): datums run on Ray workers and share the S3 cache with the driver."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, second_home
from tests.openai_server import FakeOpenAI

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
