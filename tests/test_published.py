"""Nothing corrupt is ever published, and nothing corrupt read once poisons a machine: the real CLI against the moto
S3 server behind a real HTTP proxy that alters bodies or drops headers (tests/s3_proxy.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, second_home, write_entry
from tests.openai_server import FakeOpenAI
from tests.s3_proxy import S3Proxy

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


def files(n: int = 8) -> dict[str, str | bytes]:
    return {f"part-{i}.bin": bytes([i]) * (3000 + 211 * i) for i in range(n)}


def through(env: Env, proxy: S3Proxy) -> Env:
    return Env(env.home, {**env.vars, "NEARAI_S3_ENDPOINT_URL": proxy.url})


def test_bodies_altered_on_the_way_are_sent_again_and_never_published(s3_env: Env, tmp_path: Path,
                                                                      moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "wire", "1.0.0", files())
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("PUT", "/reg/")  # every object's first PUT arrives altered: blobs, manifest, ref
        out = through(s3_env, proxy).run("registry", "upload", str(src))
        assert out.returncode == 0, out.stderr
        assert proxy.count("PUT", "/blobs/") >= 16  # each blob sent twice
    other = second_home(s3_env, tmp_path)
    got = other.run("registry", "download", "tester/wire/1.0.0", check=True)
    assert "downloaded" in got.stdout
    for name, content in files().items():
        assert (other.home / "registry" / "tester" / "wire" / "1.0.0" / name).read_bytes() == content

    src2 = write_entry(tmp_path / "src2", "never", "1.0.0", files(3))
    for area in ("/blobs/", "/manifests/", "/refs/"):
        with S3Proxy(moto_endpoint) as proxy:
            proxy.corrupt_first("PUT", area, times=-1)  # always altered: the upload must fail, publishing nothing
            out = through(s3_env, proxy).run("registry", "upload", str(src2))
        assert out.returncode == 1 and "kept other bytes than were sent" in out.stderr, (area, out.stderr)
        assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) <= 2
        info = s3_env.run("registry", "info", "tester/never/1.0.0")
        assert info.returncode == 1 and "not found" in info.stderr, area


def test_a_store_that_ignores_if_none_match_is_refused(s3_env: Env, tmp_path: Path, moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "racy", "1.0.0", files(2))
    with S3Proxy(moto_endpoint) as proxy:
        proxy.drop_headers = {"if-none-match"}
        out = through(s3_env, proxy).run("registry", "upload", str(src))
        assert out.returncode == 1 and "If-None-Match" in out.stderr and "Traceback" not in out.stderr
        assert s3_env.run("registry", "info", "tester/racy/1.0.0").returncode == 1
        again = through(s3_env, proxy).run("registry", "upload", str(src))  # a failed probe is not remembered
        assert again.returncode == 1 and "If-None-Match" in again.stderr
    s3_env.run("registry", "upload", str(src), check=True)  # the same store without the proxy: create-only holds
    with S3Proxy(moto_endpoint) as proxy:
        other = through(second_home(s3_env, tmp_path), proxy)
        write_entry(tmp_path / "src3", "later", "1.0.0", files(1))
        other.run("registry", "upload", str(tmp_path / "src3"), check=True)
        assert proxy.count("PUT", "/_nearai/probes/") == 0  # the store remembers the answer: no second probe


def test_a_retried_upload_of_identical_content_succeeds(any_env: Env, tmp_path: Path) -> None:
    src = write_entry(tmp_path / "src", "twice", "1.0.0", files(3))
    any_env.run("registry", "upload", str(src), check=True)
    again = any_env.run("registry", "upload", str(src))
    assert again.returncode == 0 and "already published" in again.stdout
    (src / "part-0.bin").write_bytes(b"changed")
    changed = any_env.run("registry", "upload", str(src))
    assert changed.returncode == 1 and "already exists" in changed.stderr


def test_an_altered_response_never_poisons_the_machine(s3_env: Env, tmp_path: Path, moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "read", "1.0.0", files(3))
    s3_env.run("registry", "upload", str(src), check=True)
    other = second_home(s3_env, tmp_path)
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("GET", "/refs/")  # once: fetched again and verified
        through(other, proxy).run("registry", "download", "tester/read/1.0.0", check=True)
    third = second_home(s3_env, tmp_path, "home3")
    with S3Proxy(moto_endpoint) as proxy:
        proxy.corrupt_first("GET", "/reg/", times=-1)  # every response altered: a clear failure, nothing kept
        bad = through(third, proxy).run("registry", "download", "tester/read/1.0.0")
        assert bad.returncode == 1 and "altered" in bad.stderr and "Traceback" not in bad.stderr
    good = third.run("registry", "download", "tester/read/1.0.0")  # the store is intact, so is this machine
    assert good.returncode == 0, good.stderr


def test_damaged_objects_in_the_store_are_skipped_and_reported(local_env: Env, server: FakeOpenAI,
                                                               tmp_path: Path) -> None:
    ds = build(tmp_path / "3_digit_addition", size=10)
    for model in ("alpha", "beta"):
        local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", f"--model={model}",
                      f"--api_base={server.url}", "--record", "--quiet", check=True)
    store = local_env.home / "store"

    def plant(key: str, data: bytes) -> None:
        (store / key).parent.mkdir(parents=True, exist_ok=True)
        (store / key).write_bytes(data)

    some_manifest = next((store / "manifests").rglob("*.json")).read_bytes()
    invalid = b'{"not": "a manifest"}'
    plant("refs/tester/torn/1.0.0.json", b'{"manif')  # 1. a ref that is not JSON
    plant("refs/tester/dangling/1.0.0.json", b'{"manifest": "' + b"ab" * 32 + b'"}')  # 2. its manifest is missing
    plant(f"manifests/sha256/cd/{'cd' * 32}.json", some_manifest)  # 3. a manifest that is not what its name says
    plant("refs/tester/altered/1.0.0.json", b'{"manifest": "' + b"cd" * 32 + b'"}')
    digest = hashlib.sha256(invalid).hexdigest()
    plant(f"manifests/sha256/{digest[:2]}/{digest}.json", invalid)  # 4. a manifest of the wrong shape
    plant("refs/tester/shapeless/1.0.0.json", b'{"manifest": "' + digest.encode() + b'"}')
    entries = sorted(p.parent.name for p in (store / "refs" / "tester").rglob("0.0.1.json"))
    plant(f"meta/tester/{entries[0]}/0.0.1.json", b"{broken")  # 5. an overlay that is not JSON
    plant(f"meta/tester/{entries[1]}/0.0.1.json", b"[1, 2]")  # 6. an overlay that is not an object

    listed = local_env.run("registry", "list")
    assert listed.returncode == 0 and all(e in listed.stdout for e in entries), listed.stderr
    assert "warning: 6 damaged objects in the store were skipped" in listed.stderr and "Traceback" not in listed.stderr
    table = local_env.run("evaluation", "table", "--format=json")
    assert table.returncode == 0 and len(json.loads(table.stdout)["rows"]) == 2
    assert "damaged objects" in table.stderr
    report = local_env.run("evaluation", "report", f"--html={tmp_path / 'r.html'}")
    assert report.returncode == 0 and (tmp_path / "r.html").exists() and "damaged objects" in report.stderr
    info = local_env.run("registry", "info", f"tester/{entries[0]}/0.0.1")
    assert info.returncode == 1 and "overlay" in info.stderr and "nearai registry update" in info.stderr


def test_a_download_edited_in_place_is_noticed_and_restored(any_env: Env, tmp_path: Path) -> None:
    src = write_entry(tmp_path / "src", "kept", "1.0.0", {"data.txt": "0123456789", "other.txt": "x"})
    any_env.run("registry", "upload", str(src), check=True)
    first = any_env.run("registry", "download", "tester/kept/1.0.0", check=True)
    path = any_env.home / "registry" / "tester" / "kept" / "1.0.0" / "data.txt"
    assert path.read_text() == "0123456789" and "3 files downloaded" in first.stdout  # with metadata.json
    again = any_env.run("registry", "download", "tester/kept/1.0.0", check=True)
    assert "0 files downloaded" in again.stdout and "3 already present" in again.stdout
    path.write_text("9876543210")  # same size, other bytes
    fixed = any_env.run("registry", "download", "tester/kept/1.0.0", check=True)
    assert path.read_text() == "0123456789" and "1 files downloaded (10 B), 2 already present" in fixed.stdout


def test_a_new_version_of_mostly_unchanged_files_asks_only_about_the_changed_ones(s3_env: Env, tmp_path: Path,
                                                                                  moto_endpoint: str) -> None:
    src = write_entry(tmp_path / "src", "many", "1.0.0", {f"f{i}.txt": f"file {i}" for i in range(30)})
    s3_env.run("registry", "upload", str(src), check=True)
    (src / "f7.txt").write_text("changed")
    with S3Proxy(moto_endpoint) as proxy:
        out = through(s3_env, proxy).run("registry", "upload", str(src), "--bump")
        assert out.returncode == 0 and "1.0.1" in out.stdout, out.stderr
        # the newest version's manifest says which blobs the store holds: only the changed files are asked about
        # (f7.txt, and metadata.json, whose version --bump rewrote)
        assert proxy.count("HEAD", "/blobs/") == 2 and proxy.count("PUT", "/blobs/") == 2
    other = second_home(s3_env, tmp_path)
    other.run("registry", "download", "tester/many/1.0.1", check=True)
    assert (other.home / "registry" / "tester" / "many" / "1.0.1" / "f7.txt").read_text() == "changed"
