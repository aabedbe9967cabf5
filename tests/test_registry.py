"""Registry behaviour against the local store and a real S3 endpoint (moto server over HTTP)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from registry_cli.caches.index import ObjectIndex
from tests.conftest import ROOT, Env, s3_client, second_home, write_entry

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


def test_upload_list_info_download_round_trip(any_env: Env, tmp_path: Path) -> None:
    src = write_entry(tmp_path / "src", "ds", "1.0.0", {"a.txt": "alpha", "sub/b.bin": bytes(range(256)) * 10,
                                                         "empty": ""}, tags=["x", "y"], description="a dataset")
    out = any_env.run("registry", "upload", str(src), check=True)
    assert "uploaded tester/ds/1.0.0: 4 files, 4 new" in out.stdout

    listed = any_env.run("registry", "list", check=True).stdout
    assert "tester/ds/1.0.0" in listed and "a dataset" in listed and "x, y" in listed
    info = any_env.run("registry", "info", "tester/ds", check=True).stdout
    assert "sub/b.bin" in info and "2.5 KiB" in info

    other = second_home(any_env, tmp_path)
    got = other.run("registry", "download", "tester/ds/1.0.0", check=True)
    assert "4 files downloaded" in got.stdout
    dest = other.home / "registry" / "tester" / "ds" / "1.0.0"
    assert (dest / "a.txt").read_text() == "alpha"
    assert (dest / "sub" / "b.bin").read_bytes() == bytes(range(256)) * 10
    assert (dest / "empty").read_bytes() == b""
    assert json.loads((dest / "metadata.json").read_text())["name"] == "ds"

    again = other.run("registry", "download", "tester/ds", check=True)
    assert "0 files downloaded" in again.stdout and "4 already present" in again.stdout
    (dest / "a.txt").write_text("tampered")  # a changed local file is detected by sha256 and re-fetched
    (dest / ".nearai_download.json").unlink()
    fixed = other.run("registry", "download", "tester/ds", check=True)
    assert "1 files downloaded" in fixed.stdout and (dest / "a.txt").read_text() == "alpha"
    forced = other.run("registry", "download", "tester/ds", "--force", check=True)
    assert "4 files downloaded" in forced.stdout


def test_hf_dataset_round_trip(any_env: Env, tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_dict({"input": [f"{i} + {i}" for i in range(50)], "output": [str(2 * i) for i in range(50)]})
    folder = tmp_path / "adds"
    ds.save_to_disk(str(folder))
    write_entry(folder, "adds", "0.1.0", files={})
    any_env.run("registry", "upload", str(folder), check=True)
    other = second_home(any_env, tmp_path)
    other.run("registry", "download", "tester/adds/0.1.0", check=True)
    loaded = datasets.load_from_disk(str(other.home / "registry" / "tester" / "adds" / "0.1.0"))
    assert loaded.to_dict() == ds.to_dict()


def test_unchanged_upload_transfers_no_bodies(s3_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_entry(tmp_path / "src", "big", "1.0.0", {f"f{i}.txt": f"content {i}" * 100 for i in range(20)})
    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    first = reg.upload(src)
    assert first.files_uploaded == 21
    puts: list[str] = []
    s3_client(reg).meta.events.register("before-parameter-build.s3.PutObject", lambda params, **kw: puts.append(params["Key"]))
    s3_client(reg).meta.events.register("before-parameter-build.s3.CreateMultipartUpload",
                                          lambda params, **kw: puts.append(params["Key"]))
    second = reg.upload(src, bump="patch")  # only metadata.json changed (the version)
    assert second.info.version == "1.0.1"
    assert second.files_uploaded == 1
    assert [k for k in puts if "/blobs/" in k] == [puts[0]] and len([k for k in puts if "/blobs/" in k]) == 1
    assert any("/refs/tester/big/1.0.1.json" in k for k in puts)
    assert json.loads((src / "metadata.json").read_text())["version"] == "1.0.1"


def test_versions_are_strings_and_sorted_numerically(local_env: Env, tmp_path: Path) -> None:
    for v in ("1.9", "1.10", "1.2"):
        local_env.run("registry", "upload", str(write_entry(tmp_path / v, "v", v, {"x": v})), check=True)
    info = local_env.run("registry", "info", "tester/v/1.10", check=True).stdout
    assert "tester/v/1.10 " in info
    assert "tester/v/1.10" in local_env.run("registry", "list", check=True).stdout  # latest is 1.10, not 1.9
    all_versions = local_env.run("registry", "list", "--noshow_latest_version", check=True).stdout
    assert all_versions.index("tester/v/1.2") < all_versions.index("tester/v/1.9") < all_versions.index("tester/v/1.10")


def test_list_filters_and_paging(local_env: Env, tmp_path: Path) -> None:
    write_entry(tmp_path / "a", "agent-a", "1.0", category="agent", tags=["fast"])
    write_entry(tmp_path / "b", "ds-b", "1.0", category="dataset", tags=["fast", "big"])
    write_entry(tmp_path / "c", "hidden", "1.0", category="dataset", show_entry=False)
    for d in "abc":
        local_env.run("registry", "upload", str(tmp_path / d), check=True)
    out = local_env.run("registry", "list", "--category=agent", check=True).stdout
    assert "agent-a" in out and "ds-b" not in out
    out = local_env.run("registry", "list", "--tags=fast,big", check=True).stdout
    assert "ds-b" in out and "agent-a" not in out
    assert "hidden" not in local_env.run("registry", "list", check=True).stdout
    assert "hidden" in local_env.run("registry", "list", "--show_all", check=True).stdout
    paged = local_env.run("registry", "list", "--total=1", "--offset=1", check=True).stdout
    assert "ds-b" in paged and "agent-a" not in paged and "showing 2-2 of 2" in paged
    assert "agent-a" not in local_env.run("registry", "list", "--namespace=someone-else", check=True).stdout


def test_update_changes_metadata_not_content(any_env: Env, tmp_path: Path) -> None:
    src = write_entry(tmp_path / "u", "u", "1.0.0", description="old")
    any_env.run("registry", "upload", str(src), check=True)
    before = any_env.run("registry", "info", "tester/u/1.0.0", check=True).stdout
    meta = json.loads((src / "metadata.json").read_text())
    meta.update(description="new words", tags=["t1"])
    (src / "metadata.json").write_text(json.dumps(meta))
    any_env.run("registry", "update", str(src), check=True)
    listed = any_env.run("registry", "list", "--tags=t1", check=True).stdout
    assert "new words" in listed
    after = any_env.run("registry", "info", "tester/u/1.0.0", check=True).stdout
    assert before.splitlines()[0] == after.splitlines()[0]  # same manifest hash


def test_metadata_template(local_env: Env, tmp_path: Path) -> None:
    folder = tmp_path / "my-agent"
    folder.mkdir()
    local_env.run("registry", "metadata_template", str(folder), "--category=agent", "--description=hi", check=True)
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta == {"name": "my-agent", "version": "0.0.1", "category": "agent", "description": "hi", "tags": [],
                    "details": {}, "show_entry": True}
    again = local_env.run("registry", "metadata_template", str(folder))
    assert again.returncode != 0 and "already exists" in again.stderr


def test_existing_version_is_never_overwritten(any_env: Env, tmp_path: Path) -> None:
    any_env.run("registry", "upload", str(write_entry(tmp_path / "one", "e", "1.0.0", {"x": "one"})), check=True)
    second = any_env.run("registry", "upload", str(write_entry(tmp_path / "two", "e", "1.0.0", {"x": "two"})))
    assert second.returncode == 1
    assert second.stderr.count("\n") == 1 and "already exists" in second.stderr and "--bump" in second.stderr
    other = second_home(any_env, tmp_path)
    other.run("registry", "download", "tester/e/1.0.0", check=True)
    assert (other.home / "registry/tester/e/1.0.0/x").read_text() == "one"


def test_lost_response_retry_counts_as_success(s3_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.errors import VersionExistsError

    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    info = reg.upload(write_entry(tmp_path / "r", "r", "1.0.0")).info
    reg._commit("tester", "r", "1.0.0", info.manifest.to_bytes())  # our own manifest already there: success
    with pytest.raises(VersionExistsError):
        reg._commit("tester", "r", "1.0.0", b"{}")  # another manifest


def test_concurrent_uploads_exactly_one_wins(local_env: Env, tmp_path: Path) -> None:
    script = (
        "import sys; from registry_cli.core.registry import Registry\n"
        "from registry_cli.errors import VersionExistsError\n"
        "try:\n    Registry().upload(sys.argv[1]); print('WON')\n"
        "except VersionExistsError: print('LOST')\n"
    )
    folders = [write_entry(tmp_path / f"c{i}", "race", "1.0.0", {f"f{j}": f"{i}-{j}" * 1000 for j in range(30)})
               for i in range(2)]
    for _ in range(3):
        procs = [subprocess.Popen([sys.executable, "-c", script, str(f)], env=local_env.vars, stdout=subprocess.PIPE,
                                  text=True) for f in folders]
        outs = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert outs == ["LOST", "WON"]
        winner = json.loads(local_env.run("registry", "info", "tester/race/1.0.0", check=True).stdout.split("\n", 2)[2]
                            .split("\n┏")[0])
        assert winner["version"] == "1.0.0"
        for f in folders:  # next round: a fresh version
            meta = json.loads((f / "metadata.json").read_text())
            meta["version"] = meta["version"] + ".1"
            (f / "metadata.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("metadata", "expect"),
    [
        ("{not json", "not valid JSON"),
        ('{"name": "x", "version": 1.10}', "version must be a string"),
        ('{"name": "x"}', "version"),
        ('{"name": "../x", "version": "1.0"}', "name"),
        ('{"name": "x", "version": "1.0", "tags": "oops"}', "tags"),
        ('["a list"]', "JSON object"),
    ],
)
def test_malformed_metadata_is_a_one_line_error(local_env: Env, tmp_path: Path, metadata: str, expect: str) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "metadata.json").write_text(metadata)
    proc = local_env.run("registry", "upload", str(folder))
    assert proc.returncode != 0
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and expect in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (local_env.home / "store" / "refs").exists()


@pytest.mark.parametrize("entry", ["..", "a/../b", "a/b/c/d", "a//b", "a/b\x01", "/", "a/b/.."])
def test_invalid_entry_names(local_env: Env, entry: str) -> None:
    proc = local_env.run("registry", "info", entry)
    assert proc.returncode == 2 and proc.stderr.startswith("error: invalid") and proc.stderr.count("\n") == 1


def test_symlink_leaving_folder_is_refused(local_env: Env, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    folder = write_entry(tmp_path / "s", "s", "1.0")
    (folder / "link").symlink_to(outside)
    proc = local_env.run("registry", "upload", str(folder))
    assert proc.returncode != 0 and "points outside" in proc.stderr
    assert not (local_env.home / "store").exists() or not (local_env.home / "store" / "refs").exists()
    (folder / "link").unlink()
    (folder / "inner").symlink_to(folder / "data.txt")  # a link inside the folder is published as a file
    local_env.run("registry", "upload", str(folder), check=True)


def test_manifest_path_escape_is_refused(any_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.core.content import canonical_json, sha256_hex
    from registry_cli.core.registry import blob_key, manifest_key, ref_key

    any_env.apply(monkeypatch)
    reg = any_env.registry()
    body = b"evil"
    reg.store.put_bytes(blob_key(sha256_hex(body)), body)
    manifest = {"schema": "nearai.manifest/1", "namespace": "tester", "name": "evil", "version": "1.0",
                "metadata": {"name": "evil", "version": "1.0"}, "created_at": "now",
                "files": [{"path": "../../escaped.txt", "sha256": sha256_hex(body), "size": 4}]}
    data = canonical_json(manifest)
    reg.store.put_bytes(manifest_key(sha256_hex(data)), data)
    reg.store.create(ref_key("tester", "evil", "1.0"), canonical_json({"manifest": sha256_hex(data)}))
    proc = any_env.run("registry", "download", "tester/evil/1.0")
    assert proc.returncode != 0 and "unsafe file path" in proc.stderr and "Traceback" not in proc.stderr
    assert not list(tmp_path.rglob("escaped.txt"))


def test_corrupt_blob_is_detected_and_nothing_written(local_env: Env, tmp_path: Path) -> None:
    local_env.run("registry", "upload", str(write_entry(tmp_path / "c", "c", "1.0", {"x.txt": "good"})), check=True)
    from registry_cli.core.content import sha256_hex

    blob = local_env.home / "store" / "blobs" / "sha256" / sha256_hex(b"good")[:2] / sha256_hex(b"good")
    blob.write_bytes(b"bad!")
    proc = local_env.run("registry", "download", "tester/c/1.0")
    assert proc.returncode == 1 and "the store's copy of blob" in proc.stderr and "is corrupt" in proc.stderr
    dest = local_env.home / "registry" / "tester" / "c" / "1.0"
    assert not (dest / "x.txt").exists() and not (dest / ".nearai_download.json").exists()
    assert not [p for p in dest.rglob(".tmp-*")]


def test_unknown_entry_and_unreachable_store(local_env: Env, tmp_path: Path) -> None:
    proc = local_env.run("registry", "info", "tester/nothing")
    assert proc.returncode == 1 and proc.stderr == "error: entry tester/nothing not found (check `nearai registry list`)\n"
    env = dict(local_env.vars, NEARAI_STORE="s3://bucket/p", NEARAI_S3_ENDPOINT_URL="http://127.0.0.1:9",
               NEARAI_S3_MAX_ATTEMPTS="1")
    proc = Env(local_env.home, env).run("registry", "list", timeout=60)
    assert proc.returncode == 1 and "store unreachable" in proc.stderr and proc.stderr.count("\n") == 1


def test_missing_bucket_is_a_clear_error(s3_env: Env) -> None:
    env = dict(s3_env.vars, NEARAI_STORE="s3://no-such-bucket-here/x")
    proc = Env(s3_env.home, env).run("registry", "list")
    assert proc.returncode == 1 and "bucket 'no-such-bucket-here' does not exist" in proc.stderr


def test_cli_flags_are_validated_before_running(local_env: Env, tmp_path: Path) -> None:
    folder = write_entry(tmp_path / "f", "f", "1.0")
    proc = local_env.run("registry", "upload", str(folder), "--bumpp")
    assert proc.returncode == 2 and "unknown flag --bumpp" in proc.stderr
    assert not (local_env.home / "store").exists()  # nothing ran
    proc = local_env.run("registry", "list", "--total=abc")
    assert proc.returncode == 2 and "--total expects an integer" in proc.stderr
    proc = local_env.run("registry", "upload", str(folder), "--bump", "--major_bump")
    assert proc.returncode == 2 and "only one of" in proc.stderr
    proc = local_env.run("registry", "nonsense")
    assert proc.returncode == 2 and "unknown command" in proc.stderr


def test_heavy_libraries_are_not_imported_by_help_or_list(local_env: Env, tmp_path: Path) -> None:
    local_env.run("registry", "upload", str(write_entry(tmp_path / "src", "ds")), check=True)
    code = (
        "import sys; from registry_cli.shell.cli import main\n"
        "main(['registry', 'list'])\n"
        "heavy = [m for m in ('boto3', 'botocore', 'datasets', 'litellm', 'aiohttp', 'pydantic') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=local_env.vars, capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in proc.stdout, proc.stdout + proc.stderr
    helped = local_env.run("--help")
    assert helped.returncode == 0 and "registry" in helped.stdout + helped.stderr


def test_a_damaged_local_index_is_started_afresh(local_env: Env, tmp_path: Path) -> None:
    import sqlite3

    local_env.run("registry", "upload", str(write_entry(tmp_path / "src", "ds", "1.0.0")), check=True)
    index = local_env.home / "cache" / "objects.sqlite"
    held = sqlite3.connect(index)  # another process has the index open (WAL files present) ...
    held.execute("PRAGMA journal_mode=WAL")
    held.execute("INSERT INTO objects VALUES ('x', 'y', '', x'00')")
    held.commit()
    index.unlink()  # ... when its file is deleted (a cache cleanup)
    out = local_env.run("registry", "list")
    assert out.returncode == 0 and "tester/ds/1.0.0" in out.stdout, out.stderr
    held.close()
    index.write_bytes(b"not a database at all" * 100)
    out = local_env.run("registry", "list")
    assert out.returncode == 0 and "tester/ds/1.0.0" in out.stdout, out.stderr


def test_a_damaged_row_in_the_local_index_is_read_from_the_store_again(s3_env: Env, tmp_path: Path) -> None:
    """The index keeps what a remote store returned (a local store is read as fast as the index)."""
    import sqlite3

    for name in ("a", "b", "c"):
        s3_env.run("registry", "upload", str(write_entry(tmp_path / name, name, "1.0.0")), check=True)
    s3_env.run("registry", "list", check=True)  # the index now holds every manifest
    db = sqlite3.connect(s3_env.home / "cache" / "objects.sqlite")
    with db:
        damaged = db.execute("UPDATE objects SET value = x'7b2262' WHERE key IN "
                             "(SELECT key FROM objects WHERE key LIKE 'manifests/%' LIMIT 1)").rowcount
    db.close()
    assert damaged == 1
    shutil.rmtree(s3_env.home / "cache" / "catalog")  # listings read their summaries from the index again
    out = s3_env.run("registry", "list", check=True)
    assert all(f"tester/{name}/1.0.0" in out.stdout for name in ("a", "b", "c")), out.stdout + out.stderr


def test_processes_setting_up_a_new_index_at_once_all_succeed(tmp_path: Path) -> None:
    """The switch of a new index to WAL does not wait for another process's lock: it is retried."""
    code = ("import sys; from pathlib import Path; from registry_cli.caches.index import ObjectIndex\n"
            "for i in range(20):\n"
            "    ObjectIndex(Path(sys.argv[1]) / f'{i}.sqlite', 'store').put_many([('k', '', b'v')])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, errors


def test_threads_sharing_one_index_take_turns(tmp_path: Path) -> None:
    """A suite's cells write the index from several threads: one thread's commit must not end another's transaction
    (it failed with "cannot commit - no transaction is active")."""
    index = ObjectIndex(tmp_path / "objects.sqlite", "store")
    errors: list[str] = []

    def work(t: int) -> None:
        try:
            for i in range(300):
                index.put_many([(f"k{t}-{i}-{j}", "", b"v") for j in range(20)])
                assert index.get_many([f"k{t}-{i}-0"]) == {f"k{t}-{i}-0": ("", b"v")}
        except Exception as e:
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(index.get_many(f"k{t}-{i}-{j}" for t in range(6) for i in range(300) for j in range(20))) == 36000
    index.close()


def test_files_around_every_boundary_go_up_and_come_down_byte_for_byte(local_env: Env, tmp_path: Path) -> None:
    from registry_cli.core.content import sha256_hex

    sizes = [0, 1, 64 * 1024, 64 * 1024 + 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 7]  # small-file limit, chunk
    files: dict[str, str | bytes] = {f"f{n}.bin": os.urandom(n) for n in sizes}
    local_env.run("registry", "upload", str(write_entry(tmp_path / "sizes", "sizes", files=files)), check=True)
    for body in files.values():
        assert isinstance(body, bytes)
        digest = sha256_hex(body)
        assert (local_env.home / "store" / "blobs" / "sha256" / digest[:2] / digest).read_bytes() == body
    reader = second_home(local_env, tmp_path)
    reader.run("registry", "download", "tester/sizes/1.0.0", check=True)
    got = reader.home / "registry" / "tester" / "sizes" / "1.0.0"
    assert {name: (got / name).read_bytes() for name in files} == files


GROWER = """
import os, sys, time

with open(sys.argv[1], "ab", buffering=0) as f:
    for _ in range(400):  # 25 MiB over about 2 s, while the store copies the file
        f.write(os.urandom(64 * 1024))
        time.sleep(0.005)
"""


def test_a_blob_holds_what_its_name_says_while_its_source_grows(tmp_path: Path) -> None:
    from registry_cli.core.content import sha256_file
    from registry_cli.core.registry import blob_key
    from registry_cli.core.store import LocalStore

    src = tmp_path / "growing.bin"
    src.write_bytes(os.urandom(1 << 20))
    grower = subprocess.Popen([sys.executable, "-c", GROWER, str(src)])
    try:
        store = LocalStore(tmp_path / "store")
        sizes: set[int] = set()
        while src.stat().st_size == 1 << 20 and grower.poll() is None:  # the grower has started writing
            time.sleep(0.01)
        while grower.poll() is None and len(sizes) < 5:  # each ingest reads to the end it finds, which moves
            digest, size, _ = store.ingest(src, blob_key, frozenset())
            blob = tmp_path / "store" / blob_key(digest)
            assert sha256_file(blob) == digest and blob.stat().st_size == size
            sizes.add(size)
    finally:
        grower.wait(timeout=30)
    assert len(sizes) > 1, "the source did not grow during the copies: the test proved nothing"
