"""The packed result cache: a run's verdicts as one checksummed object per run in the store, shared in a few
requests, never trusted blindly. Real CLI subprocesses, the moto S3 server over HTTP behind a counting proxy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, second_home, unsettle
from tests.openai_server import FakeOpenAI
from tests.s3_proxy import S3Proxy


def args(ds: Path, server: FakeOpenAI, *more: str) -> tuple[str, ...]:
    return ("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=fake", f"--api_base={server.url}",
            "--quiet", *more)


def score(out: str) -> str:
    return out.split("Final score: ")[1].split()[0]


def cached(out: str) -> int:
    return int(out.split(" cached")[0].rsplit(" ", 1)[1])


def s3_client(env: Env):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client("s3", endpoint_url=env.vars["NEARAI_S3_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def store_packs(env: Env) -> list[tuple[str, str]]:
    bucket, prefix = env.vars["NEARAI_STORE"].removeprefix("s3://").split("/", 1)
    listing = s3_client(env).list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/cache/v2/packs/")
    return [(bucket, o["Key"]) for o in listing.get("Contents", [])]


def test_a_second_machine_gets_every_result_in_a_few_requests(s3_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                               moto_endpoint: str) -> None:
    ds = build(tmp_path / "3_digit_addition", size=300)
    first = s3_env.run(*args(ds, server), check=True)
    assert server.requests == 300 and len(store_packs(s3_env)) == 1  # one object for the whole run
    with S3Proxy(moto_endpoint) as proxy:
        other = second_home(s3_env, tmp_path)
        other.vars["NEARAI_S3_ENDPOINT_URL"] = proxy.url
        out = other.run(*args(ds, server), check=True)
        assert server.requests == 300 and cached(out.stdout) == 300 and score(out.stdout) == score(first.stdout)
        assert proxy.count("GET", ".jsonl") == 1 and proxy.count("GET", "prefix=reg/cache/v2/packs/") == 1
        assert proxy.count("PUT", "/cache/") == 0  # nothing new to share
        again = other.run(*args(ds, server), check=True)  # all local now: the store is not asked at all
        assert cached(again.stdout) == 300 and proxy.count("GET", "/cache/") == 2


@pytest.mark.parametrize("damage", ["flip", "truncate", "foreign"])
def test_an_altered_or_partial_pack_in_the_store_is_never_trusted(s3_env: Env, server: FakeOpenAI, tmp_path: Path,
                                                                  damage: str) -> None:
    ds = build(tmp_path / "3_digit_addition", size=40)
    first = s3_env.run(*args(ds, server), check=True)
    ((bucket, key),) = store_packs(s3_env)
    s3 = s3_client(s3_env)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "flip":  # a verdict turned around: the object no longer hashes to its name
        body = body.replace(b'"passed":true', b'"passed":false', 1)
    elif damage == "truncate":
        body = body[: len(body) // 2]
    else:  # well-formed lines under a name that is not their hash
        s3.delete_object(Bucket=bucket, Key=key)
        key = key.rsplit("/", 1)[0] + "/" + "0" * 64 + ".jsonl"
    s3.put_object(Bucket=bucket, Key=key, Body=body)
    other = second_home(s3_env, tmp_path)
    out = other.run(*args(ds, server), check=True)
    assert server.requests == 80 and cached(out.stdout) == 0 and score(out.stdout) == score(first.stdout)
    assert not list((other.home / "cache").rglob(key.rsplit("/", 1)[1]))  # never kept locally either


def test_an_altered_line_in_a_local_pack_is_a_miss(local_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=30)
    first = local_env.run(*args(ds, server), check=True)
    (pack,) = [p for p in (local_env.home / "cache").rglob("*.jsonl") if "packs" in p.parts]
    lines = pack.read_bytes().split(b"\n")
    i = next(i for i, line in enumerate(lines) if b'"passed":true' in line)
    lines[i] = lines[i].replace(b'"passed":true', b'"passed":false')
    pack.write_bytes(b"\n".join(lines))
    out = local_env.run(*args(ds, server), check=True)
    assert server.requests == 31 and cached(out.stdout) == 29 and score(out.stdout) == score(first.stdout)


def test_concurrent_writers_of_the_same_keys_lose_nothing(s3_env: Env, server: FakeOpenAI, tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=60)
    server.latency = 0.02
    other = second_home(s3_env, tmp_path)
    runs = [subprocess.Popen([sys.executable, "-m", "registry_cli", *args(ds, server, *extra)], env=env.vars,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for env, extra in ((s3_env, ()), (s3_env, ("--limit=45",)), (other, ()), (other, ("--force",)))]
    outs = [p.communicate(timeout=120) for p in runs]
    assert all(p.returncode == 0 for p in runs), outs
    computed = [int(out.split(" computed")[0].rsplit(" ", 1)[1]) for out, _ in outs]
    assert computed[3] == 60  # --force: which of the others find answers already depends on timing
    # one object per run that computed something; none replaced another
    assert len(store_packs(s3_env)) == sum(1 for c in computed if c)
    third = second_home(s3_env, tmp_path, "home3")
    before = server.requests
    out = third.run(*args(ds, server), check=True)
    assert server.requests == before and cached(out.stdout) == 60
    assert score(out.stdout) == score(outs[0][0])


def test_a_killed_run_keeps_its_results_and_the_next_run_shares_them(s3_env: Env, server: FakeOpenAI,
                                                                      tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=60)
    server.latency = 0.1
    proc = subprocess.Popen([sys.executable, "-m", "registry_cli", *args(ds, server, "--max_concurrent=4")],
                            env=s3_env.vars, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 30
    while server.requests < 25 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store_packs(s3_env) == []  # the killed run shared nothing yet
    before = server.requests
    server.latency = 0.0
    out = s3_env.run(*args(ds, server), check=True)
    assert cached(out.stdout) >= before - 4 - 1  # at most the in-flight datums were lost
    other = second_home(s3_env, tmp_path)
    shared = other.run(*args(ds, server), check=True)
    assert cached(shared.stdout) == 60 and score(shared.stdout) == score(out.stdout)


def test_a_checksummed_line_holding_two_values_is_refused(tmp_path: Path) -> None:
    """Lines are parsed a few thousand at a time as one JSON array; a line whose checksum holds but which carries
    two values (`{...},{...}`) would shift that array by one: it must be refused, and its neighbours kept."""
    import hashlib

    from registry_cli.engine.caching import packs

    good = [packs.encode_line({"key": c * 64, "passed": True}) for c in "ab"]
    twice = b'{"key":"' + b"c" * 64 + b'"},{"key":"' + b"d" * 64 + b'"}'
    planted = b'{"sum":"' + hashlib.sha256(twice).hexdigest().encode() + b'","value":' + twice + b"}\n"
    torn = packs.encode_line({"key": "e" * 64})[:-9] + b"\n"
    (tmp_path / "run-1.jsonl").write_bytes(good[0] + planted + torn + good[1])
    values = list(packs.each(tmp_path))
    assert [v["key"][0] for v in values] == ["a", "b"]
    assert packs.verified_lines(planted) == b"" and packs.verified_lines(planted + good[0]) == good[0]


def test_chunked_snapshots_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    from registry_cli.caches.snapshots import read_chunked, write_chunked

    path = tmp_path / "x.bin"
    chunks = [[{"i": i, "s": "x" * i}] * 3 for i in range(50)]
    write_chunked(path, iter(chunks))
    assert list(read_chunked(path) or ()) == chunks
    good = path.read_bytes()
    for damaged in (good[:-8], good[:-3000], good[: len(good) // 2], good.replace(b"xxxx", b"xxxy", 1), b"", b"x"):
        path.write_bytes(damaged)  # cut short (with or without its end frame), one byte changed, empty, foreign
        assert read_chunked(path) is None
    assert read_chunked(tmp_path / "missing.bin") is None
    write_chunked(tmp_path / "no" / "folder.bin", iter(chunks))  # a cache that cannot be written: no error


def test_a_rerun_reads_the_sealed_packs_digest_and_never_a_stale_one(local_env: Env, server: FakeOpenAI,
                                                                     tmp_path: Path) -> None:
    from registry_cli.caches.snapshots import read_chunked, write_chunked

    ds = build(tmp_path / "3_digit_addition", size=30)
    first = local_env.run(*args(ds, server), check=True)
    (pack,) = [p for p in (local_env.home / "cache").rglob("*.jsonl") if "packs" in p.parts]
    digest = pack.with_suffix(".bin")
    written = read_chunked(digest)  # written when the pack was sealed
    assert written is not None
    stamp, *chunks = written
    assert sum(len(c) for c in chunks) == 30
    flipped = [[{**r, "passed": not r["passed"]} for r in chunk] for chunk in chunks]
    write_chunked(digest, iter([stamp, *flipped]))
    unsettle(local_env)  # the run's kept sum would answer without reading the digest
    out = local_env.run(*args(ds, server), check=True).stdout  # the digest is what answers: its verdicts show
    assert cached(out) == 30 and score(out) != score(first.stdout)
    os.utime(pack)  # the pack changed since the digest was made: the digest is not used, and made again
    unsettle(local_env)
    out = local_env.run(*args(ds, server), check=True).stdout
    assert cached(out) == 30 and score(out) == score(first.stdout) and server.requests == 30
    assert read_chunked(digest) is not None and digest.stat().st_mtime >= pack.stat().st_mtime
    digest.write_bytes(digest.read_bytes()[:-20])  # damaged: ignored, made again
    unsettle(local_env)
    out = local_env.run(*args(ds, server), check=True).stdout
    assert cached(out) == 30 and score(out) == score(first.stdout) and server.requests == 30
    assert read_chunked(digest) is not None
