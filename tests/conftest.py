"""Shared fixtures: an isolated NEARAI_HOME, a real moto S3 server on 127.0.0.1, and CLI runners."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from registry_cli.core.registry import Registry
    from tests.openai_server import FakeOpenAI

logging.getLogger("werkzeug").setLevel(logging.ERROR)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@dataclass
class Env:
    """Environment for one nearai 'machine': a home folder and a store URL."""

    home: Path
    vars: dict[str, str]

    def run(self, *args: str, check: bool = False, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real `nearai` CLI in a subprocess."""
        proc = subprocess.run(
            [sys.executable, "-m", "registry_cli", *args],
            env=self.vars, capture_output=True, text=True, timeout=timeout, cwd=cwd,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"nearai {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    @staticmethod
    def cli() -> list[str]:
        """The command line that starts the real `nearai` CLI (for runs that need stdin or their own options)."""
        return [sys.executable, "-m", "registry_cli"]

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> None:
        for k, v in self.vars.items():
            monkeypatch.setenv(k, v)
        for k in ("NEARAI_STORE", "NEARAI_S3_ENDPOINT_URL"):
            if k not in self.vars:
                monkeypatch.delenv(k, raising=False)

    def registry(self) -> Registry:
        from registry_cli.core.config import load_config
        from registry_cli.core.registry import Registry

        saved = dict(os.environ)
        os.environ.update(self.vars)
        try:
            return Registry(load_config())
        finally:
            os.environ.clear()
            os.environ.update(saved)


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEARAI_", "AWS_"))}
    env.update(
        NEARAI_HOME=str(home),
        NEARAI_NAMESPACE="tester",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        COLUMNS="200",
        PYTHONPATH=str(ROOT),
        NO_COLOR="1",
    )
    return env


def s3_client(registry: Registry) -> Any:
    """The boto3 client of a registry on S3 (tests hook its events to inject faults and count requests)."""
    from registry_cli.core.store import S3Store

    assert isinstance(registry.store, S3Store)
    return registry.store.client


def make_s3_bucket(endpoint: str) -> str:
    import boto3

    name = f"b-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=name)
    return name


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """A deterministic OpenAI-compatible server on 127.0.0.1 (see tests/openai_server.py)."""
    from tests.openai_server import FakeOpenAI

    srv = FakeOpenAI().start()
    yield srv
    srv.stop()


@pytest.fixture
def local_env(tmp_path: Path) -> Env:
    return home_env(tmp_path / "home")


def home_env(home: Path, store: str = "", endpoint: str = "") -> Env:
    """A 'machine' with its home at ``home``, on the embedded store or on ``store`` at S3 ``endpoint``."""
    env = _base_env(home)
    if store:
        env.update(NEARAI_STORE=store, NEARAI_S3_ENDPOINT_URL=endpoint, NEARAI_S3_MAX_ATTEMPTS="4")
    return Env(home, env)


@pytest.fixture
def s3_env(tmp_path: Path, moto_endpoint: str) -> Env:
    return home_env(tmp_path / "home", f"s3://{make_s3_bucket(moto_endpoint)}/reg", moto_endpoint)


@pytest.fixture(params=["local", "s3"])
def any_env(request: pytest.FixtureRequest, tmp_path: Path) -> Env:
    """The same test against the embedded local store and a real S3 endpoint (moto server over HTTP)."""
    env: Env = request.getfixturevalue("local_env" if request.param == "local" else "s3_env")
    return env


def second_home(env: Env, tmp_path: Path, name: str = "home2") -> Env:
    """Another 'machine' sharing the same store but with an empty local home."""
    vars2 = dict(env.vars)
    vars2["NEARAI_HOME"] = str(tmp_path / name)
    if "NEARAI_STORE" not in vars2:
        vars2["NEARAI_STORE"] = str(env.home / "store")
    return Env(tmp_path / name, vars2)


def write_entry(folder: Path, name: str, version: str = "1.0.0", files: dict[str, str | bytes] | None = None,
                **meta: object) -> Path:
    import json

    folder.mkdir(parents=True, exist_ok=True)
    data = {"name": name, "version": version, "category": "dataset", "description": "", "tags": [],
            "details": {}, "show_entry": True}
    data.update(meta)
    (folder / "metadata.json").write_text(json.dumps(data))
    for rel, content in (files or {"data.txt": "hello"}).items():
        p = folder / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return folder


def processes_with(marker: str) -> list[str]:
    """Pids of this machine's processes whose command line holds ``marker`` (what a sandbox must not leave behind)."""
    found = []
    for p in Path("/proc").iterdir():
        try:
            if p.name.isdigit() and marker.encode() in (p / "cmdline").read_bytes():
                found.append(p.name)
        except OSError:
            pass
    return found


CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n'
BASE_IMAGE = "localhost/nearai-test-base:2"


@pytest.fixture(scope="session")
def podman_image(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A local base image built from Debian's packages (mmdebstrap, then `podman import`: no registry is needed)
    with python3, git and pytest, and the containers.conf this kernel needs (runc, cgroupfs, no default ulimits)."""
    import os
    import shutil

    if not (shutil.which("podman") and shutil.which("mmdebstrap") and shutil.which("runc")):
        pytest.skip("podman, runc or mmdebstrap is not installed (.ci/run installs them)")
    folder = tmp_path_factory.mktemp("podman")
    conf = folder / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    if subprocess.run(["podman", "info"], env=env, capture_output=True, timeout=60).returncode != 0:
        pytest.skip("podman cannot run here")
    if subprocess.run(["podman", "image", "inspect", BASE_IMAGE], env=env, capture_output=True).returncode != 0:
        rootfs = folder / "rootfs.tar"
        built = subprocess.run(["mmdebstrap", "--variant=minbase", "--include=python3,python-is-python3,git,python3-pytest",
                                "bookworm", str(rootfs)], capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            pytest.skip(f"mmdebstrap could not build a rootfs here: {built.stderr.strip().splitlines()[-1:]}")
        subprocess.run(["podman", "import", str(rootfs), BASE_IMAGE], env=env, check=True, capture_output=True,
                       timeout=600)
    return BASE_IMAGE, str(conf)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RayHead:
    """A Ray cluster started with `ray start --head` and token authentication on (as Ray >= 2.59 defaults to)."""

    address: str  # the GCS, host:port (for --ray_address)
    dashboard: str  # http://host:port (for `nearai submit --cluster`)
    token: str
    temp: Path  # Ray's session folder (its workers' logs)

    def said(self) -> str:
        """The ends of the head's own logs (its GCS, raylet and agents), for a failing test's message."""
        logs = self.temp / "session_latest" / "logs"
        parts = []
        for pattern in ("gcs_server.*", "raylet.*", "dashboard_agent*", "runtime_env_agent*", "monitor.log"):
            for path in sorted(logs.glob(pattern)):
                text = path.read_text(errors="replace")
                parts.append(f"\n--- {path.name} ---\n{text[-1500:]}")
        return "".join(parts) or f"(no logs in {logs})"


@pytest.fixture(autouse=True)
def one_ray_cluster_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests marked ``xdist_group("ray")`` run one at a time across xdist workers, held by a file lock: each starts
    a Ray cluster, and `ray stop --force` (a test head's teardown) stops every Ray process on the machine. The mark
    puts them on one worker only while pytest-xdist's grouping works: under pytest 9.2, which no longer reads the
    node id that pytest-xdist 3.8 changes to group tests, `--dist loadgroup` spread them over both workers (seen
    as heads killed mid-test in CI; pyproject.toml now keeps pytest below 9.2). The lock holds either way."""
    mark = request.node.get_closest_marker("xdist_group")
    if mark is None or "ray" not in mark.args:
        yield
        return
    import fcntl

    with open(Path(tempfile.gettempdir()) / "nearai-tests-ray.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture
def ray_head(request: pytest.FixtureRequest) -> Iterator[RayHead]:
    """Two worker slots on this machine, with token authentication unless the test asks for ``"disabled"``, and a
    dashboard (the job API) when it asks for ``"token+dashboard"`` (indirect parametrization): without one the head
    is lighter. Ray's session folder stays short: its socket paths must fit."""
    import secrets
    import shutil

    pytest.importorskip("ray.dashboard")
    ray = Path(sys.executable).parent / "ray"
    token = secrets.token_hex(32)
    mode, _, dashboard_on = getattr(request, "param", "token").partition("+")
    env = dict(os.environ, RAY_AUTH_MODE=mode, RAY_AUTH_TOKEN=token, RAY_USAGE_STATS_ENABLED="0")
    gcs, dashboard = free_port(), free_port()
    temp = Path("/tmp") / f"rt{os.getpid()}"
    started = subprocess.run([str(ray), "start", "--head", f"--port={gcs}",
                              f"--dashboard-port={dashboard}", "--dashboard-host=127.0.0.1",
                              f"--include-dashboard={'true' if dashboard_on else 'false'}",
                              "--num-cpus=2", f"--temp-dir={temp}", "--disable-usage-stats"], env=env,
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    try:
        yield RayHead(f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}", token, temp)
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def stored_keys(env: Env) -> list[str]:
    """The cache key of every result line in the S3 store's packs (a key twice: a datum answered twice)."""
    import json

    import boto3

    bucket, _, prefix = env.vars["NEARAI_STORE"].removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", endpoint_url=env.vars["NEARAI_S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/cache/v2/packs/"):
        for obj in page.get("Contents", []):
            for line in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().splitlines():
                keys.append(json.loads(line)["value"]["key"])
    return keys


def unsettle(env: Env) -> None:
    """Forget the kept sums of fully cached reruns (`execution.settled`), so the next rerun reads every result
    again: for tests of what lies under them (packs, digests, dataset indexes)."""
    import shutil

    shutil.rmtree(env.home / "cache" / "results" / "settled", ignore_errors=True)
