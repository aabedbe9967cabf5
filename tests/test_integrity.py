"""What a flaky network or store cannot do to the registry: a damaged blob a failed upload left is never reused
and gc removes it; a blob altered on the way down is fetched again and named as such; and no upload reports
success for a version that holds another upload's manifest, even where the store drops If-None-Match after the
create-only probe passed. Real CLI subprocesses and Registry objects, the moto S3 server behind the fault proxy."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from registry_cli.core.registry import parse_ref, ref_key
from registry_cli.errors import NearaiError, VersionExistsError
from tests.conftest import Env, second_home, write_entry
from tests.s3_proxy import S3Proxy

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


def files(n: int, tag: str = "") -> dict[str, str | bytes]:
    return {f"part-{i}.bin": (tag.encode() + bytes([i])) * (2000 + 97 * i) for i in range(n)}


def through(env: Env, proxy: S3Proxy) -> Env:
    return Env(env.home, {**env.vars, "NEARAI_S3_ENDPOINT_URL": proxy.url})


def bucket_objects(env: Env) -> dict[str, bytes]:
    import boto3

    bucket, prefix = env.vars["NEARAI_STORE"].removeprefix("s3://").split("/", 1)
    s3 = boto3.client("s3", endpoint_url=env.vars["NEARAI_S3_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix) + 1:]] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def corrupt_blobs(env: Env) -> list[str]:
    return [k for k, body in bucket_objects(env).items()
            if k.startswith("blobs/") and hashlib.sha256(body).hexdigest() != k.rsplit("/", 1)[-1]]


def test_a_failed_upload_leaves_nothing_a_later_one_reuses_and_gc_removes_it(s3_env: Env, tmp_path: Path,
                                                                              moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "mended", "1.0.0", files(4))
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("PUT", "/blobs/", times=-1)  # every blob body altered on the way up
        failed = through(s3_env, proxy).run("registry", "upload", str(src))
    assert failed.returncode == 1 and "kept other bytes than were sent" in failed.stderr
    damaged = corrupt_blobs(s3_env)
    assert damaged  # what the store kept of the failed upload

    healthy = s3_env.run("registry", "upload", str(src), check=True)
    assert "5 files, 5 new" in healthy.stdout  # the damaged copies are written again, not reused
    assert corrupt_blobs(s3_env) == []
    other = second_home(s3_env, tmp_path)
    other.run("registry", "download", "tester/mended/1.0.0", check=True)
    for name, content in files(4).items():
        assert (other.home / "registry" / "tester" / "mended" / "1.0.0" / name).read_bytes() == content

    src2 = write_entry(tmp_path / "src2", "lost", "1.0.0", files(2, "lost"))
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("PUT", "/blobs/", times=-1)
        assert through(s3_env, proxy).run("registry", "upload", str(src2)).returncode == 1
    left = corrupt_blobs(s3_env)
    assert len(left) == 3  # its two files and its metadata.json
    dry = s3_env.run("registry", "gc", "--dry_run", check=True)  # young, unreachable, but corrupt: garbage now
    assert "3 corrupt blobs" in dry.stdout and corrupt_blobs(s3_env) == left
    done = s3_env.run("registry", "gc", check=True)
    assert "3 corrupt blobs" in done.stdout and corrupt_blobs(s3_env) == []
    assert s3_env.run("registry", "download", "tester/mended/1.0.0", "--force").returncode == 0


def test_a_corrupt_local_blob_is_removed_by_gc_and_written_again_by_the_next_upload(local_env: Env,
                                                                                     tmp_path: Path) -> None:
    src = write_entry(tmp_path / "src", "disk", "1.0.0", {"a.txt": "alpha", "b.txt": "beta"})
    local_env.run("registry", "upload", str(src), check=True)
    digest = hashlib.sha256(b"alpha").hexdigest()
    blob = local_env.home / "store" / "blobs" / "sha256" / digest[:2] / digest
    blob.write_bytes(b"alphx")  # same size: only its hash tells
    gc = local_env.run("registry", "gc", check=True)
    assert "1 corrupt blobs" in gc.stdout and not blob.exists()
    write_entry(src, "disk", "1.0.1", {"a.txt": "alpha", "b.txt": "beta"})
    again = local_env.run("registry", "upload", str(src), check=True)
    assert "3 files, 2 new" in again.stdout and blob.read_bytes() == b"alpha"


def test_a_blob_altered_on_the_way_down_is_fetched_again_then_named_as_such(s3_env: Env, tmp_path: Path,
                                                                            moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "down", "1.0.0", {"big.bin": os.urandom(300_000)})
    s3_env.run("registry", "upload", str(src), check=True)
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("GET", "/blobs/", times=1)  # once: fetched again, and the download succeeds
        ok = through(second_home(s3_env, tmp_path), proxy).run("registry", "download", "tester/down/1.0.0")
        assert ok.returncode == 0, ok.stderr
        assert proxy.count("GET", "/blobs/") >= 2
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("GET", "/blobs/", times=-1)
        bad = through(second_home(s3_env, tmp_path, "home3"), proxy).run("registry", "download", "tester/down/1.0.0")
    assert bad.returncode == 1 and "arrived altered in transit 3 times" in bad.stderr
    assert "check the network path" in bad.stderr and "corrupt" not in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("writers", [24])
def test_no_upload_reports_success_for_a_version_holding_another_manifest(s3_env: Env, tmp_path: Path,
                                                                          moto_endpoint: str, writers: int) -> None:
    s3_env.run("registry", "upload", str(write_entry(tmp_path / "first", "probe", "1.0.0")), check=True)
    with S3Proxy(moto_endpoint) as proxy:  # the guard passed its probe; now a gateway drops If-None-Match
        proxy.drop_headers = {"if-none-match"}
        proxy.slow = {"/refs/": 0.6}  # writes of the ref land spread out, as on a slow link
        registries = []
        for i in range(writers):
            env = through(second_home(s3_env, tmp_path, f"w{i}"), proxy)
            registries.append(env.registry())
            write_entry(tmp_path / f"src{i}", "race", "2.0.0", {"who.txt": f"writer {i}"})
        results: dict[int, str] = {}
        start = threading.Barrier(writers)

        def upload(i: int) -> None:
            start.wait()
            try:
                results[i] = registries[i].upload(tmp_path / f"src{i}").info.manifest_hash
            except VersionExistsError as e:
                results[i] = "lost" + str(e)[:60]
            except NearaiError as e:
                results[i] = f"error: {e}"

        threads = [threading.Thread(target=upload, args=(i,)) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert len(results) == writers and not [r for r in results.values() if r.startswith("error")], results
    won = [h for h in results.values() if not h.startswith("lost")]
    stored = bucket_objects(s3_env).get(ref_key("tester", "race", "2.0.0"))
    assert len(won) <= 1
    if won:
        assert stored is not None and parse_ref(stored)[0] == won[0]
    else:  # all stopped: none wrote, and a retry finds the way free (claims are removed once done)
        assert stored is None
        s3_env.registry().upload(tmp_path / "src0")
    assert [k for k in bucket_objects(s3_env) if k.startswith("claims/")] == []
