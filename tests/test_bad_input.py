"""Every bad input gets its own one-line error with a hint: no traceback, no generic "unexpected" error, nothing
accepted silently. Real CLI subprocesses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from examples.make_addition_dataset import build
from tests.conftest import Env, write_entry


def refused(proc: object, *needles: str) -> None:
    out = proc.stderr  # type: ignore[attr-defined]
    assert proc.returncode in (1, 2), out  # type: ignore[attr-defined]
    assert "Traceback" not in out and "unexpected" not in out and len(out.strip().splitlines()) == 1, out
    for needle in needles:
        assert needle in out, out


def test_bad_metadata_and_folders_are_named(local_env: Env, tmp_path: Path) -> None:
    nan = write_entry(tmp_path / "nan", "nan")
    (nan / "metadata.json").write_text('{"name": "nan", "version": "1.0.0", "category": "dataset", '
                                       '"details": {"score": NaN}}')
    refused(local_env.run("registry", "upload", str(nan)), "holds NaN", "write null or a number")
    inf = write_entry(tmp_path / "inf", "inf")
    (inf / "metadata.json").write_text('{"name": "inf", "version": "1.0.0", "details": {"x": -Infinity}}')
    refused(local_env.run("registry", "upload", str(inf)), "holds -Infinity")
    deep = write_entry(tmp_path / "deep", "deep")
    (deep / "metadata.json").write_text('{"name": "deep", "version": "1.0.0", "details": '
                                        + "[" * 100_000 + "]" * 100_000 + "}")
    refused(local_env.run("registry", "upload", str(deep)), "nested too deeply")
    loop = write_entry(tmp_path / "loop", "loop")
    (loop / "a").symlink_to(loop / "b")
    (loop / "b").symlink_to(loop / "a")
    refused(local_env.run("registry", "upload", str(loop)), "symlink a loops or points nowhere")
    assert local_env.run("registry", "list", check=True).stdout.count("tester/") == 0


@pytest.mark.parametrize("files", ["twice", "file_and_folder"])
def test_impossible_manifests_in_the_store_are_named(local_env: Env, tmp_path: Path, files: str) -> None:
    local_env.run("registry", "upload", str(write_entry(tmp_path / "ok", "ok", files={"x": "1", "z": "2"})),
                  check=True)
    store = local_env.home / "store"
    manifest = json.loads(next((store / "manifests").rglob("*.json")).read_text())
    first = manifest["files"][0]
    extra = dict(first) if files == "twice" else {**first, "path": "x/y"}
    manifest["files"].append(extra)
    manifest["name"] = "odd"
    data = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (store / "manifests" / "sha256" / digest[:2]).mkdir(parents=True, exist_ok=True)
    (store / "manifests" / "sha256" / digest[:2] / f"{digest}.json").write_bytes(data)
    (store / "refs" / "tester" / "odd").mkdir(parents=True)
    (store / "refs" / "tester" / "odd" / "1.0.0.json").write_text(json.dumps({"manifest": digest}))
    out = local_env.run("registry", "download", "tester/odd/1.0.0")
    refused(out, "listed twice" if files == "twice" else "is both a file and the folder of 'x/y'")
    assert not (local_env.home / "registry" / "tester" / "odd").exists()


def test_bad_settings_are_named_with_where_they_come_from(local_env: Env, tmp_path: Path) -> None:
    endpoint = Env(local_env.home, {**local_env.vars, "NEARAI_STORE": "s3://bucket/p",
                                    "NEARAI_S3_ENDPOINT_URL": "not a url"})
    refused(endpoint.run("registry", "list"), "NEARAI_S3_ENDPOINT_URL: s3_endpoint_url must be an http(s) URL")
    config = local_env.home / "config.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    for bad, needle in (({"store": ["a"]}, "store must be a string, got list"),
                        ({"s3_max_attempts": "many"}, "s3_max_attempts must be a positive integer"),
                        ({"sandbox": True}, "sandbox must be a string, got bool")):
        config.write_text(json.dumps(bad))
        refused(local_env.run("registry", "list"), str(config), needle)
    namespace = Env(local_env.home, {**local_env.vars, "NEARAI_NAMESPACE": "a/b"})
    config.write_text("{}")
    refused(namespace.run("registry", "list"), "NEARAI_NAMESPACE: invalid namespace 'a/b'")
    config.write_text("{")
    refused(local_env.run("registry", "list"), "cannot read")
    config.unlink()
    backend = Env(local_env.home, {**local_env.vars, "NEARAI_INFERENCE_BACKEND": "bogus"})
    ds = build(tmp_path / "3_digit_addition", size=2)
    refused(backend.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                        "--api_base=http://127.0.0.1:9/v1"), "unknown NEARAI_INFERENCE_BACKEND 'bogus'")


@pytest.mark.parametrize("flag,needle", [("--temperature=nan", "--temperature must be a finite number"),
                                         ("--timeout=-1", "--timeout must be >= 0.001"),
                                         ("--max_tokens=-5", "--max_tokens must be >= 0"),
                                         ("--memory_mb=abc", "--memory_mb expects an integer")])
def test_bad_flags_are_named(local_env: Env, tmp_path: Path, flag: str, needle: str) -> None:
    import datasets

    ds = tmp_path / "he"
    datasets.Dataset.from_list([{"task_id": "HumanEval/0", "prompt": "def f():\n", "canonical_solution": "  return 1\n",
                                 "test": "def check(c): pass", "entry_point": "f"}]).save_to_disk(str(ds))
    refused(local_env.run("benchmark", "run", str(ds), "HumanEvalSolverStrategy", "--model=m",
                          "--api_base=http://127.0.0.1:9/v1", flag), needle)


def test_a_model_server_that_is_not_there_fails_the_run_at_once(local_env: Env, tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ds = build(tmp_path / "3_digit_addition", size=200)
    t0 = time.monotonic()
    out = local_env.run("benchmark", "run", str(ds), "ThreeDigitAdditionSolver", "--model=m",
                        f"--api_base=http://127.0.0.1:{port}/v1")
    refused(out, f"cannot connect to http://127.0.0.1:{port}/v1", "start the model server or fix --api_base")
    assert time.monotonic() - t0 < 30  # not 200 datums' worth of retries with backoff
    assert not [p for p in (local_env.home / "cache").rglob("*.jsonl")]  # nothing computed, nothing cached
