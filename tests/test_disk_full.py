"""A full disk (a small tmpfs mounted by the test) ends downloads, uploads, cache writes and suite runs with a clear
error, leaves no partial file, and a rerun completes once there is space again."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, write_entry
from tests.openai_server import FakeOpenAI


@pytest.fixture
def small(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system; `grow` gives it room again."""
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=64m", str(mount)], check=True)


def partial_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".tmp-")]


def full_disk(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "no space left" in proc.stderr.lower() and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def fill(path: Path) -> None:
    """Take every byte left on the file system."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)


def big_entry(tmp_path: Path) -> Path:
    return write_entry(tmp_path / "big", "big", "1.0.0", {f"f{i}.bin": os.urandom(600_000) for i in range(3)})


def test_upload_to_a_full_local_store(local_env: Env, small: Path, tmp_path: Path) -> None:
    env = Env(local_env.home, {**local_env.vars, "NEARAI_STORE": str(small / "store")})
    src = big_entry(tmp_path)
    full_disk(env.run("registry", "upload", str(src)))
    assert not partial_files(small) and not (small / "store" / "refs").exists()
    grow(small)
    env.run("registry", "upload", str(src), check=True)
    assert "4 files downloaded" in env.run("registry", "download", "tester/big/1.0.0", "--force", check=True).stdout


def test_download_to_a_full_disk(local_env: Env, small: Path, tmp_path: Path) -> None:
    local_env.run("registry", "upload", str(big_entry(tmp_path)), check=True)
    env = Env(small / "home", {**local_env.vars, "NEARAI_HOME": str(small / "home"),
                               "NEARAI_STORE": str(local_env.home / "store")})
    full_disk(env.run("registry", "download", "tester/big/1.0.0"))
    assert not partial_files(small)
    grow(small)
    again = env.run("registry", "download", "tester/big/1.0.0", check=True)
    assert "downloaded" in again.stdout
    for name in ("f0.bin", "f1.bin", "f2.bin"):
        assert (small / "home" / "registry" / "tester" / "big" / "1.0.0" / name).read_bytes() == \
            (tmp_path / "big" / name).read_bytes()


def test_cache_writes_on_a_full_disk_are_counted_and_redone(local_env: Env, small: Path, server: FakeOpenAI,
                                                            tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=30)
    env = Env(small / "home", {**local_env.vars, "NEARAI_HOME": str(small / "home"),
                               "NEARAI_STORE": str(tmp_path / "store")})
    run = ("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--quiet")
    env.run(*run, "--model=warmup", "--limit=1", check=True)  # the cache's folders and database exist
    filler = small / "filler"
    fill(filler)
    out = env.run(*run, "--model=m")
    assert "Final score:" in out.stdout and "results could not be cached" in out.stdout, out.stdout + out.stderr
    assert "Traceback" not in out.stderr and not partial_files(small)
    filler.unlink()
    again = env.run(*run, "--model=m", check=True)
    assert "Final score:" in again.stdout and "could not be cached" not in again.stdout
    third = env.run(*run, "--model=m", check=True)
    assert "30 cached" in third.stdout and server.requests == 1 + 30 + 30


def test_suite_run_on_a_full_disk(local_env: Env, small: Path, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    config = tmp_path / "s.toml"
    config.write_text(f'name = "full"\n[[tasks]]\ndataset = "{ds}"\nsolver = "ThreeDigitAdditionSolver"\n'
                      f'api_base = "{server.url}"\nmodel = ["a", "b"]\n')
    env = Env(small / "home", {**local_env.vars, "NEARAI_HOME": str(small / "home"),
                               "NEARAI_STORE": str(tmp_path / "store")})
    (small / "filler").write_bytes(b"\0" * (1024 * 1024 - 8192))  # nearly full: the run folder cannot be written
    out = env.run("suite", "run", str(config))
    full_disk(out)
    assert not partial_files(small)
    assert not [p for p in (small / "home").rglob("manifest.json") if p.stat().st_size == 0]
    (small / "filler").unlink()
    grow(small)
    done = env.run("suite", "run", str(config), check=True)
    assert "completed" in done.stdout or "done" in done.stdout, done.stdout
