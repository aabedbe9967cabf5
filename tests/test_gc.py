"""`nearai registry gc`: orphans of killed and raced uploads go, anything in use or younger than the grace period
stays, and an upload running during gc is never harmed. Real CLI subprocesses, local store and moto S3."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Env, second_home, write_entry

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier

# On S3 the orphans are aged by waiting, so the grace period is short: long enough that what the test writes
# next (young orphans, the blobs of a running upload) stays younger than it on a loaded machine, where S3 reports
# times in whole seconds.
S3_GRACE = 6


def plant_orphans(env: Env, n: int, age_s: float = 0) -> list[str]:
    """Blobs (intact: their bytes match their names) and a manifest no ref names (what a killed upload leaves),
    written straight into the store."""
    bodies: dict[str, bytes] = {}
    for i in range(n):
        data = f"orphan {i} {time.time()}".encode()
        digest = hashlib.sha256(data).hexdigest()
        bodies[f"blobs/sha256/{digest[:2]}/{digest}"] = data
    name = hashlib.sha256(f"manifest {time.time()} {n}".encode()).hexdigest()
    bodies[f"manifests/sha256/{name[:2]}/{name}.json"] = b"orphan"
    keys = list(bodies)
    if "NEARAI_STORE" in env.vars:
        import boto3

        bucket, prefix = env.vars["NEARAI_STORE"].removeprefix("s3://").split("/", 1)
        s3 = boto3.client("s3", endpoint_url=env.vars["NEARAI_S3_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for key in keys:
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=bodies[key])
        up = s3.create_multipart_upload(Bucket=bucket, Key=f"{prefix}/blobs/sha256/ff/{'f' * 64}")
        s3.upload_part(Bucket=bucket, Key=f"{prefix}/blobs/sha256/ff/{'f' * 64}", UploadId=up["UploadId"],
                       PartNumber=1, Body=b"x" * 100)
    else:
        store = env.home / "store"
        for key in [*keys, f"blobs/sha256/ab/.tmp-killed-{name[:8]}"]:
            (store / key).parent.mkdir(parents=True, exist_ok=True)
            (store / key).write_bytes(bodies.get(key, b"orphan"))
            os.utime(store / key, (time.time() - age_s, time.time() - age_s))
    return keys


def store_keys(env: Env) -> set[str]:
    if "NEARAI_STORE" in env.vars:
        return {k for k, _ in env.registry().store.list("")}
    root = env.home / "store"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_gc_removes_old_orphans_and_keeps_what_is_in_use(any_env: Env, tmp_path: Path) -> None:
    src = write_entry(tmp_path / "src", "kept", "1.0.0", {f"f{i}.txt": f"content {i}" for i in range(5)})
    any_env.run("registry", "upload", str(src), check=True)
    s3 = "NEARAI_STORE" in any_env.vars
    old = plant_orphans(any_env, 6, age_s=0 if s3 else 3 * 86400)
    if s3:
        time.sleep(S3_GRACE + 1.5)  # S3 cannot back-date: let the orphans age past a short grace period instead
    young = plant_orphans(any_env, 2)
    grace = f"{S3_GRACE}s" if s3 else "24h"
    before = store_keys(any_env)
    dry = any_env.run("registry", "gc", "--dry_run", f"--grace={grace}", check=True)
    assert not [k for k in before if k.startswith("claims/")]  # an upload removes its publish claim once done
    assert f"would remove {len(old)} unreachable objects" in dry.stdout, dry.stdout
    # a temp file of a killed upload, or S3 multipart uploads: moto dates every one 2010, so both planted look old
    aborted = 2 if s3 else 1
    assert f"would abort {aborted} unfinished" in dry.stdout
    assert store_keys(any_env) == before
    done = any_env.run("registry", "gc", f"--grace={grace}", check=True)
    assert f"removed {len(old)} unreachable objects" in done.stdout and f"aborted {aborted} unfinished" in done.stdout
    after = store_keys(any_env)
    assert not set(old) & after and set(young) <= after
    assert ("kept" in done.stdout) and f"{len(young)} unreachable ones younger" in done.stdout
    other = second_home(any_env, tmp_path)
    got = other.run("registry", "download", "tester/kept/1.0.0", check=True)
    assert "6 files downloaded" in got.stdout


def test_an_upload_running_during_gc_is_never_harmed(any_env: Env, tmp_path: Path) -> None:
    s3 = "NEARAI_STORE" in any_env.vars
    plant_orphans(any_env, 20, age_s=0 if s3 else 7200)
    if s3:
        time.sleep(S3_GRACE + 1.5)
    files: dict[str, str | bytes] = {f"d{i % 10}/f{i}.txt": f"payload {i} " * 50 for i in range(300)}
    src = write_entry(tmp_path / "big", "busy", "1.0.0", files)
    upload = subprocess.Popen([sys.executable, "-m", "registry_cli", "registry", "upload", str(src)], env=any_env.vars,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # the upload is writing blobs
    rounds = 0
    while upload.poll() is None or rounds == 0:
        gc = any_env.run("registry", "gc", f"--grace={S3_GRACE}s" if s3 else "--grace=1h", check=True)
        assert "removed" in gc.stdout
        rounds += 1
    _, err = upload.communicate()
    assert upload.returncode == 0, err
    other = second_home(any_env, tmp_path)
    got = other.run("registry", "download", "tester/busy/1.0.0", check=True)
    assert "301 files downloaded" in got.stdout
    folder = other.home / "registry" / "tester" / "busy" / "1.0.0"
    assert all((folder / k).read_text() == v for k, v in files.items())


def test_gc_refuses_when_damaged_objects_hide_what_is_in_use(local_env: Env, tmp_path: Path) -> None:
    plant_orphans(local_env, 2, age_s=3 * 86400)
    ref = local_env.home / "store" / "refs" / "tester" / "torn" / "1.0.0.json"
    ref.parent.mkdir(parents=True)
    ref.write_text('{"manif')
    out = local_env.run("registry", "gc")
    assert out.returncode == 1 and "gc stopped before removing anything" in out.stderr
    assert "Traceback" not in out.stderr
    bad = local_env.run("registry", "gc", "--grace=soon")
    assert bad.returncode == 2 and "--grace must be a duration" in bad.stderr
