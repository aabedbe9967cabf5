"""Fault injection on real HTTP to the moto S3 server: 503s, dropped connections and corrupted bodies."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError

from registry_cli.errors import IntegrityError, StoreError
from tests.conftest import Env, s3_client, second_home, write_entry

pytestmark = pytest.mark.slow  # real CLI processes, servers and sandboxes: the full tier


class Faults:
    """A botocore before-send hook: fails some requests before they reach the server."""

    def __init__(self, every_503: int = 0, every_drop: int = 0, only: str = "", always: bool = False) -> None:
        self.counter = itertools.count(1)
        self.every_503, self.every_drop, self.only, self.always = every_503, every_drop, only, always
        self.injected = 0
        self.tries: dict[str, int] = {}

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.only and self.only not in request.url:
            return None
        n = next(self.counter)
        # Requests run on parallel threads, so which request draws the n-th fault is up to the scheduler: let the
        # third attempt at any URL through, so the faults exercise retries without ever exhausting them.
        tries = self.tries[request.url] = self.tries.get(request.url, 0) + 1
        if not self.always and tries > 2:
            return None
        if self.always or (self.every_503 and n % self.every_503 == 0):
            self.injected += 1
            body = b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
            return AWSResponse(request.url, 503, {"content-length": str(len(body))}, _Raw(body))
        if self.every_drop and n % self.every_drop == 0:
            self.injected += 1
            raise ConnectionClosedError(endpoint_url=request.url)
        return None


class _Raw(io.BytesIO):
    def stream(self, *_: Any, **__: Any) -> Any:
        yield self.getvalue()


def _files() -> dict[str, str | bytes]:
    return {f"part-{i}.bin": bytes([i]) * (1000 + i * 997) for i in range(12)}


def test_upload_and_download_survive_503s_and_dropped_connections(s3_env: Env, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_entry(tmp_path / "src", "flaky", "1.0.0", _files())
    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    faults = Faults(every_503=3, every_drop=5)
    s3_client(reg).meta.events.register("before-send.s3", faults)
    result = reg.upload(src)
    assert result.files_uploaded == 13 and faults.injected > 5

    other = second_home(s3_env, tmp_path)
    other.apply(monkeypatch)
    reader = other.registry()
    down_faults = Faults(every_503=4, every_drop=3)
    s3_client(reader).meta.events.register("before-send.s3", down_faults)
    got = reader.download("tester/flaky/1.0.0")
    assert got.files_downloaded == 13 and down_faults.injected > 5
    for name, content in _files().items():
        assert (got.path / name).read_bytes() == content


def test_persistent_failure_is_a_clear_error_and_nothing_is_published(s3_env: Env, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_entry(tmp_path / "src", "never", "1.0.0", _files())
    s3_env.apply(monkeypatch)
    reg = s3_env.registry()
    s3_client(reg).meta.events.register("before-send.s3", Faults(only="/refs/", always=True))
    with pytest.raises(StoreError, match="503|SlowDown"):
        reg.upload(src)
    clean = s3_env.registry()
    assert clean.versions("tester", "never") == []
    proc = s3_env.run("registry", "info", "tester/never")
    assert proc.returncode == 1 and "not found" in proc.stderr


def test_truncated_or_corrupted_download_body_is_retried_then_verified(s3_env: Env, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_entry(tmp_path / "src", "corrupt", "1.0.0", {"x.bin": b"A" * 5000})
    s3_env.apply(monkeypatch)
    s3_env.registry().upload(src)
    reader = second_home(s3_env, tmp_path).registry()
    served = {"bad": 0}

    def corrupt_first_blob_get(request: Any, **_: Any) -> AWSResponse | None:
        if request.method == "GET" and "/blobs/" in request.url and served["bad"] < 2:
            served["bad"] += 1
            body = b"A" * 4000 + b"B" * 1000
            return AWSResponse(request.url, 200, {"content-length": str(len(body))}, _Raw(body))
        return None

    s3_client(reader).meta.events.register("before-send.s3", corrupt_first_blob_get)
    got = reader.download("tester/corrupt/1.0.0")
    assert served["bad"] == 2 and (got.path / "x.bin").read_bytes() == b"A" * 5000

    served["bad"] = -10  # now every GET is corrupted: the download fails cleanly, leaving no file
    target = tmp_path / "elsewhere"
    with pytest.raises(IntegrityError, match="did not match its name 3 times"):  # no ETag came: it cannot say which
        reader.download("tester/corrupt/1.0.0", force=True, target=target)
    assert not (target / "x.bin").exists() and not list(target.glob(".tmp-*"))
