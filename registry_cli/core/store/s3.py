"""The S3 store: any S3-compatible bucket under an optional prefix, every write confirmed by the store's own digest."""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry_cli.core import env
from registry_cli.core.content import CHUNK, sha256_file
from registry_cli.core.files import write_all
from registry_cli.core.store.base import read_file
from registry_cli.errors import NotFoundInStore, StoreError

if TYPE_CHECKING:
    pass


class S3Store:
    """An S3 bucket (AWS or any S3-compatible endpoint) under an optional key prefix."""

    def __init__(self, url: str, endpoint_url: str | None, max_attempts: int = 5) -> None:
        import boto3  # heavy: only for commands that touch S3
        from botocore.config import Config as BotoConfig

        rest = url[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StoreError(f"invalid store URL {url!r}", "use s3://bucket or s3://bucket/prefix")
        self.url = url
        self.workers = self.transfers = 16
        self.remote = True
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        non_aws = endpoint_url is not None
        cfg = BotoConfig(
            retries={"mode": "standard", "max_attempts": max_attempts},
            s3={"addressing_style": "path" if non_aws else "auto"},
            max_pool_connections=32,
            connect_timeout=10,
            read_timeout=60,
            request_checksum_calculation="when_required" if non_aws else "when_supported",
            response_checksum_validation="when_required" if non_aws else "when_supported",
        )
        session = boto3.session.Session()
        region = session.region_name or env.aws_region() or "us-east-1"
        self.client = session.client("s3", endpoint_url=endpoint_url, config=cfg, region_name=region)

    def _k(self, key: str) -> str:
        return self.prefix + key

    @contextlib.contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        from botocore import exceptions as bx

        where = f"s3://{self.bucket}/{self._k(key)}"
        try:
            yield
        except bx.ClientError as e:
            err = e.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise NotFoundInStore(key) from None
            if code == "NoSuchBucket":
                raise StoreError(f"bucket {self.bucket!r} does not exist", "create it or fix NEARAI_STORE") from None
            if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                raise StoreError(f"access denied to {where}", "check AWS credentials and bucket policy") from None
            raise StoreError(f"S3 error {code or status} on {where}: {err.get('Message', '')}".strip(), "retry later") from None
        except bx.NoCredentialsError:
            raise StoreError("no AWS credentials found", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
        except (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError) as e:
            raise StoreError(f"store unreachable: {e}", "check NEARAI_S3_ENDPOINT_URL and the network") from None
        except (bx.HTTPClientError, bx.ResponseStreamingError) as e:
            raise StoreError(f"connection to the store failed on {where}: {e}", "retry later") from None
        except bx.BotoCoreError as e:
            raise StoreError(f"S3 failure on {where}: {e}", "check the store configuration") from None

    def get_bytes(self, key: str) -> bytes:
        """The object's bytes, checked against its ETag where that is their MD5 (single-part, not KMS-encrypted):
        a body altered on the way is fetched again, then refused."""
        for _ in range(ATTEMPTS):
            with self._errors(key):
                resp = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
                data = bytes(resp["Body"].read())
            if _md5_matches(resp, hashlib.md5(data).hexdigest()) is not False:
                return data
        raise StoreError(f"s3://{self.bucket}/{self._k(key)} arrived altered {ATTEMPTS} times (its bytes do not match "
                         "its ETag)", "check the network path to the store (a proxy altering responses?)")

    def put_bytes(self, key: str, data: bytes) -> None:
        self._put(key, data, create=False)

    def create(self, key: str, data: bytes) -> bool:
        return self._put(key, data, create=True)

    def _put(self, key: str, data: bytes, create: bool) -> bool:
        """Write and confirm: the store computes a digest of what it received (Content-MD5 makes S3 refuse a body
        that does not match; the ETag or a read-back tells what was kept), and a copy altered on the way is
        written again. ``create``: only if absent (If-None-Match), False when it exists."""
        from botocore.exceptions import ClientError

        digest = hashlib.md5(data)
        extra: dict[str, str] = {"IfNoneMatch": "*"} if create else {}
        for _ in range(ATTEMPTS):
            with self._errors(key):
                try:
                    resp = self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data,
                                                  ContentMD5=base64.b64encode(digest.digest()).decode(), **extra)
                except ClientError as e:
                    code = str(e.response.get("Error", {}).get("Code", ""))
                    if create and code in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                        return False
                    if code in ("BadDigest", "InvalidDigest"):  # the store saw the body was altered: send it again
                        continue
                    raise
            kept = _md5_matches(resp, digest.hexdigest())
            if kept or (kept is None and self._reads_back(key, data)):
                return True
            if create:  # ours, but damaged: remove it so the create can be tried again
                self.delete(key)
        raise _kept_other_bytes(f"s3://{self.bucket}/{self._k(key)}")

    def _reads_back(self, key: str, data: bytes) -> bool:
        try:
            return self.get_bytes(key) == data
        except StoreError:
            return False

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except NotFoundInStore:
            return False

    def holds(self, key: str, md5_hex: str, size: int) -> bool:
        """The store's own digest of the object (its ETag) must be what those bytes give: a single request's MD5,
        or for objects over `PART`, the MD5 of the parts' MD5s this store uploads them in. An object whose ETag
        cannot tell (KMS, other part sizes) is written again rather than trusted."""
        try:
            with self._errors(key):
                head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
        except NotFoundInStore:
            return False
        return int(head.get("ContentLength", -1)) == size and _etag(head) == md5_hex and _plain(head)

    def put_file(self, key: str, path: Path) -> None:
        """Small files go through `put_bytes` (one verified request); large ones in parts, then the object's ETag is
        compared with the one its parts must give, and a mismatch uploads again."""
        from boto3.s3.transfer import TransferConfig

        if path.stat().st_size <= PART:
            self.put_bytes(key, path.read_bytes())
            return
        expected = _multipart_etag(path)
        for _ in range(ATTEMPTS):
            with self._errors(key):
                self.client.upload_file(str(path), self.bucket, self._k(key), Config=TransferConfig(
                    multipart_threshold=PART, multipart_chunksize=PART, use_threads=False))
                head = self.client.head_object(Bucket=self.bucket, Key=self._k(key))
            if str(head.get("ETag", "")).strip('"') == expected:
                return
        raise _kept_other_bytes(f"s3://{self.bucket}/{self._k(key)}")

    def ingest(self, path: Path, key_of: Callable[[str], str], known: frozenset[str]) -> tuple[str, int, bool]:
        """Small files: one read, hashed and sent from memory. Large ones: a hashing pass, then the upload."""
        size = path.stat().st_size
        small = size <= PART
        data = read_file(path) if small else b""
        digest = hashlib.sha256(data).hexdigest() if small else sha256_file(path)
        size = len(data) if small else size
        key = key_of(digest)
        if digest in known:
            return digest, size, False
        if self.holds(key, hashlib.md5(data).hexdigest() if small else _multipart_etag(path), size):
            return digest, size, False
        if small:
            self.put_bytes(key, data)
        else:
            self.put_file(key, path)
        return digest, size, True

    def read_into(self, key: str, fd: int) -> bool | None:
        """Streams the object, hashing it as it comes the way its ETag was made, to tell bytes altered on the way
        from a damaged stored copy."""
        with self._errors(key):
            resp = self.client.get_object(Bucket=self.bucket, Key=self._k(key))
            etag = _etag(resp)
            parts = _PartDigest()
            for chunk in resp["Body"].iter_chunks(CHUNK):
                write_all(fd, chunk)
                parts.feed(chunk)
        if not _plain(resp) or not etag:
            return None
        return parts.etag(multipart="-" in etag) == etag

    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        with self._errors(prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._k(prefix))
            for page in pages:
                yield from page.get("Contents", [])

    def list(self, prefix: str) -> Iterator[tuple[str, str]]:
        for obj in self._objects(prefix):
            yield obj["Key"][len(self.prefix) :], str(obj.get("ETag", "")).strip('"')

    def keys(self, prefix: str) -> Iterator[str]:
        for obj in self._objects(prefix):
            yield obj["Key"][len(self.prefix) :]

    def keys_remembered(self, prefix: str) -> Iterator[str]:
        return self.keys(prefix)  # a listing is one request per 1,000 keys: nothing cheaper proves it current

    def stat_list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        for obj in self._objects(prefix):
            yield obj["Key"][len(self.prefix) :], int(obj.get("Size", 0)), obj["LastModified"].timestamp()

    def partials(self, older_than: float) -> tuple[str, ...]:
        out: tuple[str, ...] = ()
        with self._errors(""):
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket,
                                                                                 Prefix=self.prefix)
            for page in pages:
                for up in page.get("Uploads", []):
                    if up["Initiated"].timestamp() < older_than:
                        out += (f"{up['Key'][len(self.prefix):]}?uploadId={up['UploadId']}",)
        return out

    def drop_partial(self, name: str) -> None:
        key, _, upload_id = name.partition("?uploadId=")
        with self._errors(key):
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id)


ATTEMPTS = 3


PART = 16 * CHUNK  # files up to this size are sent in one request; larger ones in parts of this size


def _multipart_etag(path: Path) -> str:
    """The ETag S3 gives an object uploaded in parts of `PART` bytes: MD5 of the parts' MD5s, a dash, the count."""
    digests = []
    with open(path, "rb") as f:
        while part := f.read(PART):
            digests.append(hashlib.md5(part).digest())
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _md5_matches(resp: dict[str, Any], md5_hex: str) -> bool | None:
    """Whether an S3 response's ETag is ``md5_hex``, the MD5 of the bytes sent or read; None when the ETag is not an
    MD5 (multipart objects, KMS encryption), so only a read-back can tell."""
    etag = _etag(resp)
    if not _plain(resp) or len(etag) != 32 or "-" in etag:
        return None
    return md5_hex == etag


def _etag(resp: dict[str, Any]) -> str:
    return str(resp.get("ETag", "")).strip('"')


def _plain(resp: dict[str, Any]) -> bool:
    """Whether the object's ETag is made of MD5s of its bytes (not so under KMS encryption)."""
    return not str(resp.get("ServerSideEncryption", "")).startswith("aws:kms")


class _PartDigest:
    """The ETag of bytes fed in order: their MD5, or (multipart) the MD5 of the MD5s of each `PART` of them."""

    def __init__(self) -> None:
        self.whole = hashlib.md5()
        self.part = hashlib.md5()
        self.in_part = 0
        self.digests: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self.whole.update(data)
        view = memoryview(data)
        while view:
            take = min(len(view), PART - self.in_part)
            self.part.update(view[:take])
            self.in_part += take
            view = view[take:]
            if self.in_part == PART:
                self.digests.append(self.part.digest())
                self.part, self.in_part = hashlib.md5(), 0

    def etag(self, multipart: bool) -> str:
        if not multipart:
            return self.whole.hexdigest()
        digests = self.digests + ([self.part.digest()] if self.in_part else [])
        return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def _kept_other_bytes(where: str) -> StoreError:
    return StoreError(f"{where}: the store kept other bytes than were sent, {ATTEMPTS} times",
                      "check the network path to the store (a proxy altering requests?)")
