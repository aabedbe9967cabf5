"""Listings over many entries: folder listings remembered by modification time, the per-store catalog of ref
summaries, and the evaluation table kept with a digest of what it was made from. All are caches of this machine:
they must never hide a change in the store."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from evaluation import EVALUATION_SCHEMA
from registry_cli.caches.snapshots import read_snapshot, write_snapshot
from registry_cli.core.store import SETTLED_NS, LocalStore
from tests.conftest import Env, s3_client, write_entry

HOUR_NS = 3600 * 10**9


def _age(root: Path) -> None:
    """Every folder under ``root`` last modified an hour ago: settled, so its listing may be remembered."""
    old = time.time_ns() - HOUR_NS
    for d, _, _ in os.walk(root):
        os.utime(d, ns=(old, old))


def _store(tmp_path: Path, keys: list[str]) -> LocalStore:
    store = LocalStore(tmp_path / "store", tmp_path / "memo")
    for k in keys:
        store.put_bytes(k, b"{}")
    return store


def test_remembered_listing_follows_every_change(tmp_path: Path) -> None:
    store = _store(tmp_path, ["refs/ns/a/1.json", "refs/ns/b/1.json", "refs/other/c/2.json"])
    _age(store.root)

    def same() -> list[str]:
        remembered = list(store.keys_remembered("refs/"))
        assert remembered == sorted(store.keys("refs/"), key=lambda k: k.split("/"))  # in order, folder by folder
        return remembered

    assert same() == ["refs/ns/a/1.json", "refs/ns/b/1.json", "refs/other/c/2.json"]
    assert list((tmp_path / "memo").iterdir())  # the folders were remembered
    store.put_bytes("refs/ns/a/2.json", b"{}")  # a version of an existing entry
    store.put_bytes("refs/ns/d/1.json", b"{}")  # a new entry
    (store.root / "refs/ns/b/1.json").unlink()  # a ref removed by hand
    assert same() == ["refs/ns/a/1.json", "refs/ns/a/2.json", "refs/ns/d/1.json", "refs/other/c/2.json"]
    _age(store.root)
    same()
    c = store.root / "refs/other/c"
    st = c.stat()
    (c.parent / "c.new").mkdir()
    (c.parent / "c.new" / "3.json").write_bytes(b"{}")
    c.rename(c.parent / "c.old")
    (c.parent / "c.new").rename(c)
    shutil.rmtree(c.parent / "c.old")
    os.utime(c, ns=(st.st_atime_ns, st.st_mtime_ns))  # a folder replaced: the same time, another inode
    assert same() == ["refs/ns/a/1.json", "refs/ns/a/2.json", "refs/ns/d/1.json", "refs/other/c/3.json"]
    (tmp_path / "memo" / next((tmp_path / "memo").iterdir()).name).write_bytes(b"garbage")
    same()
    assert sorted(LocalStore(store.root).keys_remembered("refs/")) == sorted(store.keys("refs/"))  # no memo folder


def test_an_unchanged_folder_costs_a_stat_not_a_listing(tmp_path: Path) -> None:
    """The memo is what answers: a file slipped in with the folder's time put back is not seen, until the
    folder's time changes. A folder modified moments before it was listed is never trusted that way."""
    store = _store(tmp_path, ["refs/ns/a/1.json"])
    _age(store.root)
    list(store.keys_remembered("refs/"))
    folder = store.root / "refs/ns/a"
    st = folder.stat()
    (folder / "2.json").write_bytes(b"{}")
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert sorted(store.keys_remembered("refs/")) == ["refs/ns/a/1.json"]
    os.utime(folder)
    assert sorted(store.keys_remembered("refs/")) == ["refs/ns/a/1.json", "refs/ns/a/2.json"]

    store.put_bytes("refs/ns/b/1.json", b"{}")  # modified just now: within the file system clock's granularity
    assert time.time_ns() - (store.root / "refs/ns/b").stat().st_mtime_ns < SETTLED_NS
    list(store.keys_remembered("refs/"))
    recent = store.root / "refs/ns/b"
    st = recent.stat()
    (recent / "2.json").write_bytes(b"{}")
    os.utime(recent, ns=(st.st_atime_ns, st.st_mtime_ns))  # a second change that left the same time
    assert "refs/ns/b/2.json" in set(store.keys_remembered("refs/"))


def _listed(env: Env) -> str:
    return env.run("registry", "list", "--show_all", check=True).stdout


def test_catalog_lists_new_changed_and_removed_entries(local_env: Env, tmp_path: Path) -> None:
    for name in ("a", "b"):
        local_env.run("registry", "upload", str(write_entry(tmp_path / name, name, description=f"about {name}")),
                      check=True)
    assert "tester/a/1.0.0" in _listed(local_env) and "tester/b/1.0.0" in _listed(local_env)
    catalog = local_env.home / "cache" / "catalog"
    assert sorted(p.suffix for p in catalog.iterdir()) == [".bin", ".log"]  # the rows, and their metadata's log
    local_env.run("registry", "upload", str(write_entry(tmp_path / "c", "c")), check=True)
    local_env.run("registry", "update", "tester/a/1.0.0", "--description=rewritten", check=True)
    (local_env.home / "store" / "refs" / "tester" / "b" / "1.0.0.json").unlink()  # removed by hand
    out = _listed(local_env)
    assert "tester/c/1.0.0" in out and "rewritten" in out and "tester/b" not in out, out
    local_env.run("registry", "update", "tester/a/1.0.0", "--show_entry=false", check=True)
    assert "tester/a" not in local_env.run("registry", "list", check=True).stdout

    damaged = next(catalog.glob("*.bin"))
    data = bytearray(damaged.read_bytes())
    data[-3] ^= 0xFF  # one byte of the rows flipped: the checksum no longer matches, so the file is rebuilt
    damaged.write_bytes(bytes(data))
    out = _listed(local_env)
    assert "tester/a/1.0.0" in out and "tester/c/1.0.0" in out and "tester/b" not in out


def test_a_warm_listing_reads_nothing_but_the_listing(s3_env: Env, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        s3_env.run("registry", "upload", str(write_entry(tmp_path / name, name)), check=True)
    s3_env.run("registry", "list", check=True)  # the catalog now holds every entry
    (s3_env.home / "cache" / "objects.sqlite").unlink()  # and only the catalog
    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    gets: list[str] = []
    s3_client(reg).meta.events.register("before-parameter-build.s3.GetObject",
                                          lambda params, **kw: gets.append(params["Key"]))
    listed = reg.list_entries()
    assert [i.entry for i in listed] == ["tester/a/1.0.0", "tester/b/1.0.0", "tester/c/1.0.0"]
    assert listed[1].metadata["name"] == "b" and gets == []
    assert [f.path for f in listed[1].manifest.files] == ["data.txt", "metadata.json"]  # read when asked for
    assert len(gets) == 1 and gets[0].endswith(".json") and "/manifests/" in gets[0]


def _evaluation(folder: Path, model: str, score: float) -> Path:
    details = {"schema": EVALUATION_SCHEMA, "benchmark": "sums", "model": model, "agent": "",
               "evaluation_key": f"key-{model}", "metrics": {"score": score, "n": 4, "errored": 0}}
    return write_entry(folder / model, f"eval_{model}", category="evaluation", details=details)


def _table(env: Env) -> list[str]:
    return env.run("evaluation", "table", "--format=csv", check=True).stdout.splitlines()


def test_kept_table_follows_every_change(local_env: Env, tmp_path: Path) -> None:
    for model, score in (("m1", 0.5), ("m2", 0.25)):
        local_env.run("registry", "upload", str(_evaluation(tmp_path, model, score)), check=True)
    assert _table(local_env) == ["model,agent,sums/score", "m1,,0.5", "m2,,0.25"]
    kept = local_env.home / "cache" / "tables"
    assert len(list(kept.glob("*.bin"))) == 1
    local_env.run("registry", "upload", str(_evaluation(tmp_path, "m3", 0.75)), check=True)  # a new evaluation
    assert _table(local_env) == ["model,agent,sums/score", "m1,,0.5", "m2,,0.25", "m3,,0.75"]
    m1 = tmp_path / "m1"
    meta = json.loads((m1 / "metadata.json").read_text())
    meta["details"]["metrics"]["score"] = 1.0
    (m1 / "metadata.json").write_text(json.dumps(meta))
    local_env.run("registry", "update", str(m1), check=True)  # details changed by `registry update`
    assert _table(local_env) == ["model,agent,sums/score", "m1,,1.0", "m2,,0.25", "m3,,0.75"]
    local_env.run("registry", "update", "tester/eval_m2/1.0.0", "--show_entry=false", check=True)  # hidden
    assert _table(local_env) == ["model,agent,sums/score", "m1,,1.0", "m3,,0.75"]
    (local_env.home / "store" / "refs" / "tester" / "eval_m3" / "1.0.0.json").unlink()  # removed by hand
    assert _table(local_env) == ["model,agent,sums/score", "m1,,1.0"]
    shown_all = local_env.run("evaluation", "table", "--format=csv", "--show_all", check=True).stdout.splitlines()
    assert shown_all == ["model,agent,sums/score", "m1,,1.0", "m2,,0.25"]  # other options: a table of their own
    assert len(list(kept.glob("*.bin"))) == 2

    # the kept table is what answers while nothing changed: one altered in place (same digest) is what is shown
    path = next(p for p in kept.glob("*.bin") if "m2" not in str(read_snapshot(p)))
    made_from, keys, columns, rows, errored, sources = read_snapshot(path)  # type: ignore[misc]  # a kept table
    write_snapshot(path, (made_from, keys, columns, [{**rows[0], "sums/score": 0.125}], errored, sources))
    assert _table(local_env) == ["model,agent,sums/score", "m1,,0.125"]
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a damaged file: its checksum fails, so the table is made again
    path.write_bytes(bytes(data))
    assert _table(local_env) == ["model,agent,sums/score", "m1,,1.0"]


def test_metadata_log_damage_is_never_trusted(local_env: Env, tmp_path: Path) -> None:
    """A record that fails its check is read from the manifest; rows whose log is gone are made again."""
    for name in ("a", "b"):
        local_env.run("registry", "upload", str(write_entry(tmp_path / name, name, description=f"about {name}")),
                      check=True)
    assert "about a" in _listed(local_env)
    log = next((local_env.home / "cache" / "catalog").glob("*.log"))
    data = bytearray(log.read_bytes())
    at = data.index(b"about a")
    data[at : at + 7] = b"about X"  # same length, so marshal still loads it: only the CRC tells
    log.write_bytes(bytes(data))
    out = _listed(local_env)
    assert "about a" in out and "about X" not in out and "about b" in out, out
    log.unlink()
    out = _listed(local_env)
    assert "about a" in out and "about b" in out
    assert len(list((local_env.home / "cache" / "catalog").glob("*.log"))) == 1  # a new log, with the rows made again


def test_metadata_log_is_written_anew_without_dead_records(local_env: Env, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.caches import catalog

    names = [f"e{i}" for i in range(6)]
    for name in names:
        local_env.run("registry", "upload", str(write_entry(tmp_path / name, name, description=f"about {name}")),
                      check=True)
    _listed(local_env)
    folder = local_env.home / "cache" / "catalog"
    before = next(folder.glob("*.log"))
    size = before.stat().st_size
    for name in names[:4]:
        shutil.rmtree(local_env.home / "store" / "refs" / "tester" / name)  # removed by hand: their records are dead
    local_env.apply(monkeypatch)
    monkeypatch.setattr(catalog, "COMPACT_ABOVE", 0)
    listed = local_env.registry().list_entries()
    assert [(i.name, i.metadata["description"]) for i in listed] == [("e4", "about e4"), ("e5", "about e5")]
    after = next(folder.glob("*.log"))
    assert list(folder.glob("*.log")) == [after] and after != before
    assert after.stat().st_size < size / 2
    assert [(i.name, i.metadata["description"]) for i in local_env.registry().list_entries()] == \
        [("e4", "about e4"), ("e5", "about e5")]  # the rows point into the new log


APPENDER = """
import marshal, sys
from pathlib import Path
from registry_cli.caches.catalog import MetadataLog
log, me = MetadataLog(Path(sys.argv[1])), sys.argv[2]
written = []
for i in range(200):
    records = [(f"{me}{i:03d}{j}".ljust(64, "0"), marshal.dumps({"me": me, "i": i, "j": j, "pad": me * (i * 97 + j)}))
               for j in range(3)]
    written += zip(records, log.append(records))
with log.reading() as read:
    assert all(read(h, *spot) == marshal.loads(body) for (h, body), spot in written)
"""


def test_processes_appending_to_one_metadata_log_never_interleave(tmp_path: Path) -> None:
    """Each append is one write to a file opened for appending: the records of processes writing at once stay
    whole, each where its writer was told it is."""
    import marshal
    import subprocess
    import sys
    import zlib

    path = tmp_path / "x.log"
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, str(path), me], stderr=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).parent.parent)) for me in "abcd"]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    data = path.read_bytes()
    at, seen = 0, 0
    while at < len(data):  # the log parses from end to end as whole records, one writer's each
        me, i, j = chr(data[at]), int(data[at + 1 : at + 4]), int(data[at + 4 : at + 5])
        body = marshal.dumps({"me": me, "i": i, "j": j, "pad": me * (i * 97 + j)})
        assert data[at + 64 : at + 72 + len(body)] == b"%08x" % zlib.crc32(body) + body
        at += 72 + len(body)
        seen += 1
    assert seen == 4 * 200 * 3


def test_a_cache_that_cannot_be_written_never_fails_a_listing(local_env: Env, tmp_path: Path) -> None:
    local_env.run("registry", "upload", str(write_entry(tmp_path / "a", "a", description="about a")), check=True)
    cache = local_env.home / "cache"
    cache.mkdir(exist_ok=True)
    for name in ("catalog", "listings", "tables"):
        shutil.rmtree(cache / name, ignore_errors=True)
        (cache / name).write_text("not a folder")  # nothing can be written below it
    assert "about a" in _listed(local_env)
    local_env.run("registry", "upload", str(_evaluation(tmp_path, "m1", 0.5)), check=True)
    assert _table(local_env) == ["model,agent,sums/score", "m1,,0.5"]


def test_objects_of_every_size_read_back_whole(tmp_path: Path) -> None:
    """Small objects take one read and no `fstat`; the sizes around that read's buffer come back whole."""
    from registry_cli.core.store import SMALL_READ

    store = LocalStore(tmp_path / "store")
    for size in (0, 1, SMALL_READ - 1, SMALL_READ, SMALL_READ + 1, 2 * SMALL_READ, 3 * 2**20 + 7):
        data = os.urandom(size)
        store.put_bytes(f"objects/{size}", data)
        assert store.get_bytes(f"objects/{size}") == data, size


def test_a_catalog_never_saves_over_a_log_another_process_wrote_anew(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.caches import catalog

    def listed(i: int) -> tuple[str, str, dict[str, object]]:
        return f"refs/ns/e{i}/1.json", f"{i:064x}", {"metadata": {"name": f"e{i}"}, "created_at": "t"}

    first = catalog.Catalog(tmp_path, "store")
    first.add_many([listed(i) for i in range(3)])
    first.save()
    other = catalog.Catalog(tmp_path, "store")  # another process: two refs removed, so its log is mostly dead
    other.keep_only("refs/", {"refs/ns/e0/1.json"})
    monkeypatch.setattr(catalog, "COMPACT_ABOVE", 0)
    other.save()  # the log written anew under another name, the old one removed
    first.add_many([listed(3)])  # the first process goes on with rows that point into the removed log
    first.save()
    now = catalog.Catalog(tmp_path, "store")
    assert list(now.rows) == ["refs/ns/e0/1.json"]  # the other process's rows, not the first's stale ones
    row = now.rows["refs/ns/e0/1.json"]
    with now.log.reading() as read:
        assert read(row[0], row[6], row[7]) == {"name": "e0"}


def test_metadata_the_log_could_not_take_is_read_from_manifests_and_logged_next_time(
        local_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.caches.catalog import Catalog, MetadataLog

    local_env.run("registry", "upload", str(write_entry(tmp_path / "a", "a", description="about a")), check=True)
    _listed(local_env)
    local_env.run("registry", "upload", str(write_entry(tmp_path / "b", "b", description="about b")), check=True)
    local_env.apply(monkeypatch)
    with monkeypatch.context() as failing:  # every append fails, as on a full disk, while the rows can be saved
        failing.setattr(MetadataLog, "append", lambda self, records, create=True: [(-1, 0)] * len(records))
        reg = local_env.registry()
        assert [i.metadata["description"] for i in reg.list_entries()] == ["about a", "about b"]  # b's: manifest

    def logged() -> list[bool]:
        return [row[6] >= 0 for _, row in sorted(Catalog(local_env.home / "cache", reg.store.url).rows.items())]

    assert logged() == [True, False]
    assert [i.metadata["description"] for i in local_env.registry().list_entries()] == ["about a", "about b"]
    assert logged() == [True, True]  # read again, and logged this time


def test_a_small_manifest_travels_in_its_ref_and_a_cold_listing_reads_no_manifest(
        s3_env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry_cli.core.content import canonical_json, sha256_hex
    from registry_cli.core.registry import INLINE_MANIFEST_MAX, ref_key

    s3_env.run("registry", "upload", str(write_entry(tmp_path / "small", "small", description="tiny")), check=True)
    many: dict[str, str | bytes] = {f"folder_{i:04d}/a_rather_long_file_name_{i:04d}.txt": str(i) for i in range(200)}
    s3_env.run("registry", "upload", str(write_entry(tmp_path / "large", "large", files=many)), check=True)
    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    small = reg.store.get_bytes(ref_key("tester", "small", "1.0.0"))
    doc = json.loads(small)
    assert set(doc) == {"inline", "manifest"} and canonical_json(doc) == small  # canonical JSON, as every ref
    assert sha256_hex(canonical_json(doc["inline"])) == doc["manifest"]
    assert doc["inline"]["metadata"]["description"] == "tiny"
    large = json.loads(reg.store.get_bytes(ref_key("tester", "large", "1.0.0")))
    assert set(large) == {"manifest"}  # its manifest lists 200 files: too large to travel along
    assert len(reg.store.get_bytes(f"manifests/sha256/{large['manifest'][:2]}/{large['manifest']}.json")) \
        > INLINE_MANIFEST_MAX

    shutil.rmtree(s3_env.home / "cache")  # a cold machine
    reg = s3_env.registry()
    gets: list[str] = []
    s3_client(reg).meta.events.register("before-parameter-build.s3.GetObject",
                                          lambda params, **kw: gets.append(params["Key"]))
    listed = {i.name: i for i in reg.list_entries()}
    assert listed["small"].metadata["description"] == "tiny" and len(listed["large"].manifest.files) == 201
    assert [k for k in gets if "/manifests/" in k] == [f"reg/manifests/sha256/{large['manifest'][:2]}/"
                                                       f"{large['manifest']}.json"]
    gets.clear()
    shutil.rmtree(s3_env.home / "cache")
    info = s3_env.registry().resolve("tester/small/1.0.0")  # one entry, likewise: its ref is all it reads
    assert [f.path for f in info.manifest.files] == ["data.txt", "metadata.json"]


def test_an_altered_inline_manifest_is_never_trusted(local_env: Env, tmp_path: Path) -> None:
    local_env.run("registry", "upload", str(write_entry(tmp_path / "a", "a", description="the real one")), check=True)
    ref = local_env.home / "store" / "refs" / "tester" / "a" / "1.0.0.json"
    ref.write_bytes(ref.read_bytes().replace(b"the real one", b"a forged one"))  # still valid JSON, same length
    shutil.rmtree(local_env.home / "cache")
    assert "the real one" in _listed(local_env)  # read from the manifest object, which matches the hash
    info = local_env.run("registry", "info", "tester/a/1.0.0", check=True).stdout
    assert "the real one" in info and "forged" not in info
    digest = json.loads(ref.read_bytes())["manifest"]
    (local_env.home / "store" / "manifests" / "sha256" / digest[:2] / f"{digest}.json").unlink()
    shutil.rmtree(local_env.home / "cache")
    listing = local_env.run("registry", "list", check=True)
    assert "tester/a" not in listing.stdout and "forged" not in listing.stdout
    assert "missing" in listing.stderr  # named as damaged, not shown as it was forged
    shown = local_env.run("registry", "info", "tester/a/1.0.0")
    assert shown.returncode != 0 and "forged" not in shown.stdout + shown.stderr
