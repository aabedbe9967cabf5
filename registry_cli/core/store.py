"""Object stores behind one small interface: a local directory (the embedded default) and S3 (boto3).

Keys are '/'-separated relative paths built by this package (never user input). Writes are atomic: a reader sees
either nothing or the whole object. ``create`` is the create-only write used as the commit point of a publish.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from registry_cli.caches.snapshots import read_snapshot, write_snapshot
from registry_cli.core import env
from registry_cli.core.content import CHUNK, sha256_file
from registry_cli.core.files import copy_into, sha256_own_file, write_all
from registry_cli.errors import NotFoundInStore, StoreError

if TYPE_CHECKING:
    from registry_cli.core.config import Config



class Store(Protocol):
    """What the registry and the result cache need from an object store."""

    url: str
    workers: int  # threads worth using for many small reads (one for a folder, where a thread costs more than a read)
    transfers: int  # threads worth using for file uploads and downloads
    remote: bool  # reads cross a network: objects that never change are worth keeping on this machine

    def get_bytes(self, key: str) -> bytes: ...

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def create(self, key: str, data: bytes) -> bool:
        """Write only if ``key`` is absent; return False (writing nothing) if it exists."""
        ...

    def exists(self, key: str) -> bool: ...

    def holds(self, key: str, md5_hex: str, size: int) -> bool:
        """Whether ``key`` exists and is known to hold the ``size`` bytes whose MD5 is ``md5_hex`` (content-addressed
        objects are reused only then: a copy a failed upload left damaged is written again)."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent is fine)."""
        ...

    def put_file(self, key: str, path: Path) -> None: ...

    def ingest(self, path: Path, key_of: Callable[[str], str], known: frozenset[str]) -> tuple[str, int, bool]:
        """Store the file under ``key_of(its sha256)`` unless that is in ``known`` or present, reading it once where
        possible; ``(sha256, size, whether bytes were written)``."""
        ...

    def read_into(self, key: str, fd: int) -> bool | None:
        """Append the object's bytes to the open file ``fd``. Whether they arrived as the store holds them: True,
        False (altered on the way: worth reading again), None (the store gives no digest to tell)."""
        ...

    def list(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Yield ``(key, etag)`` for every key under ``prefix`` (which ends with '/')."""
        ...

    def keys(self, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``: `list` without the etags."""
        ...

    def keys_remembered(self, prefix: str) -> Iterator[str]:
        """`keys`, answered where the store can from what this machine remembers of an earlier listing that is
        provably still current (a local folder whose modification time has not changed)."""
        ...

    def stat_list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Yield ``(key, size, modified as epoch seconds)`` for every key under ``prefix``."""
        ...

    def partials(self, older_than: float) -> tuple[str, ...]:
        """Unfinished writes (temp files, multipart uploads) started before ``older_than`` (epoch seconds)."""
        ...

    def drop_partial(self, name: str) -> None:
        """Remove one of `partials`."""
        ...


class LocalStore:
    """A directory on local disk with the same key layout as the S3 store."""

    def __init__(self, root: Path, memo_dir: Path | None = None) -> None:
        """``memo_dir``: where `keys_remembered` keeps its folder listings (None: it lists every folder)."""
        self.root = root
        self.memo_dir = memo_dir
        self.url = str(root)
        self.workers = 1
        self.transfers = 2 * (os.cpu_count() or 1)  # hashing and copying: CPU and disk, not waiting
        self.remote = False  # a file here is read as fast as a copy of it in a local cache

    def _path(self, key: str) -> Path:
        return self.root / key

    def _tmp(self, final: Path) -> tuple[int, str]:
        final.parent.mkdir(parents=True, exist_ok=True)
        return tempfile.mkstemp(dir=final.parent, prefix=".tmp-")

    def get_bytes(self, key: str) -> bytes:
        try:
            return _read_whole(f"{self.root}/{key}")
        except FileNotFoundError:
            raise NotFoundInStore(key) from None
        except OSError as e:
            raise StoreError(f"cannot read {self._path(key)}: {e.strerror}", "check the store folder") from None

    def _write_tmp(self, final: Path, writer: _Writer, durable: bool = False) -> str:
        try:
            fd, tmp = self._tmp(final)
        except OSError as e:
            raise StoreError(f"cannot write to {final.parent}: {e.strerror}", "check permissions and free space") from None
        try:
            with os.fdopen(fd, "wb") as f:
                writer(f)
                if durable:
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise StoreError(f"cannot write {final}: {e.strerror}", "check permissions and free space") from None
            raise
        return tmp

    def put_bytes(self, key: str, data: bytes) -> None:
        final = self._path(key)
        tmp = self._write_tmp(final, lambda f: f.write(data))
        os.replace(tmp, final)

    def create(self, key: str, data: bytes) -> bool:
        final = self._path(key)
        tmp = self._write_tmp(final, lambda f: f.write(data), durable=True)
        try:
            os.link(tmp, final)  # atomic, fails if the name exists
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def holds(self, key: str, md5_hex: str, size: int) -> bool:
        """A local object is renamed into place only after its bytes were hashed to its name: existing is enough
        (its size is checked against a truncated copy)."""
        try:
            return self._path(key).stat().st_size == size
        except OSError:
            return False

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as e:
            raise StoreError(f"cannot delete {self._path(key)}: {e.strerror}", "check permissions") from None

    def put_file(self, key: str, path: Path) -> None:
        final = self._path(key)

        def copy(f: IO[bytes]) -> None:
            with open(path, "rb") as src:
                while chunk := src.read(CHUNK):
                    f.write(chunk)

        tmp = self._write_tmp(final, copy)
        os.replace(tmp, final)

    def ingest(self, path: Path, key_of: Callable[[str], str], known: frozenset[str]) -> tuple[str, int, bool]:
        """One read of the source: small files are hashed in memory and written only when absent. Larger ones are
        copied by the kernel into a temp file, which is hashed from a memory map and renamed to its key (or
        dropped when that exists): the blob holds exactly what its name says, even if the source changes.
        ``known`` is not trusted here: a stat is cheap, and gc may have removed a blob a version names because
        it was damaged."""
        if path.stat().st_size <= SMALL_FILE:
            data = _read(path)
            digest = hashlib.sha256(data).hexdigest()
            if self.exists(key_of(digest)):  # a stat here costs less than trusting ``known`` after a gc
                return digest, len(data), False
            self.put_bytes(key_of(digest), data)
            return digest, len(data), True
        size, digest = 0, ""

        def copy(f: IO[bytes]) -> None:
            nonlocal size, digest
            size = copy_into(path, f.fileno())
            digest = sha256_own_file(f.fileno())

        tmp = self._write_tmp(self._path("blobs/incoming"), copy)
        final = self._path(key_of(digest))
        if final.is_file():
            os.unlink(tmp)
            return digest, size, False
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        return digest, size, True

    def read_into(self, key: str, fd: int) -> bool | None:
        try:
            copy_into(self._path(key), fd)
            return True  # nothing on the way: what was read is what the folder holds
        except FileNotFoundError:
            raise NotFoundInStore(key) from None
        except OSError as e:
            raise StoreError(f"cannot copy {self._path(key)}: {e.strerror}", "check the store folder and free space") from None

    def _walk(self, prefix: str, temporary: bool = False,
              stat: bool = True) -> Iterator[tuple[str, os.stat_result | None]]:
        """(key, stat) of the files under ``prefix``: the objects, or (``temporary``) the unfinished writes.
        Without ``stat``, the keys alone (a stat per file is most of the cost of a large listing)."""
        base = self._path(prefix)
        if not base.is_dir():
            return
        cut = len(str(base)) + 1  # keys are ``prefix`` + the path below ``base``: no relpath per file
        lead = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        stack = [str(base)]
        while stack:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.startswith(".tmp-") == temporary:
                        try:
                            st = e.stat() if stat else None
                        except FileNotFoundError:  # renamed or removed since the listing
                            continue
                        yield lead + e.path[cut:].replace(os.sep, "/"), st

    def _stats(self, prefix: str, temporary: bool = False) -> Iterator[tuple[str, os.stat_result]]:
        for key, st in self._walk(prefix, temporary):
            if st is not None:
                yield key, st

    def list(self, prefix: str) -> Iterator[tuple[str, str]]:
        for key, st in self._stats(prefix):
            yield key, f"{st.st_mtime_ns}-{st.st_size}"

    def keys(self, prefix: str) -> Iterator[str]:
        for key, _ in self._walk(prefix, stat=False):
            yield key

    def keys_remembered(self, prefix: str) -> Iterator[str]:
        """Each folder is listed again only when its modification time or inode changed since it was last listed;
        otherwise one `stat` stands in for the listing. A folder modified less than `SETTLED_NS` before it was
        listed is not remembered: a second change within the file system clock's granularity could leave its
        time as it was (git's "racy" entries). Keys come out folder by folder, in name order: a listing's sort of
        them has next to nothing to do."""
        if self.memo_dir is None:
            yield from self.keys(prefix)
            return
        lead = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        memo_path = self.memo_dir / (hashlib.sha256(f"{self.url}\n{lead}".encode()).hexdigest()[:16] + ".bin")
        memo = read_snapshot(memo_path)
        seen: dict[str, Folder] = memo[2] if isinstance(memo, tuple) and memo[:2] == (self.url, lead) else {}
        base = str(self._path(lead)).rstrip(os.sep)
        settled = time.time_ns() - SETTLED_NS
        now: dict[str, Folder] = {}
        stack = [""]
        while stack:
            rel = stack.pop()
            path = f"{base}/{rel}" if rel else base
            try:
                st = os.stat(path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            folder = seen.get(rel)
            if folder is None or folder[0] != st.st_mtime_ns or folder[1] != st.st_ino:
                folder = _listed_folder(path, st)  # stat first: a change made while listing shows next time
                if folder is None:
                    continue
            if st.st_mtime_ns < settled:
                now[rel] = folder
            sub = lead + rel + "/" if rel else lead
            for name in folder[3]:
                yield sub + name
            if folder[2]:
                stack.extend([f"{rel}/{name}" if rel else name for name in reversed(folder[2])])  # popped in order
        if now != seen:
            write_snapshot(memo_path, (self.url, lead, now))

    def stat_list(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        for key, st in self._stats(prefix):
            yield key, st.st_size, st.st_mtime

    def partials(self, older_than: float) -> tuple[str, ...]:
        return tuple(sorted(key for key, st in self._stats("", temporary=True) if st.st_mtime < older_than))

    def drop_partial(self, name: str) -> None:
        self.delete(name)


Folder = tuple[int, int, tuple[str, ...], tuple[str, ...]]  # mtime_ns, inode, sub-folders, files
SETTLED_NS = 2_000_000_000


def _listed_folder(path: str, st: os.stat_result) -> Folder | None:
    """A folder's sub-folders and object files (unfinished writes left out); None when it is gone."""
    dirs: list[str] = []
    files: list[str] = []
    try:
        with os.scandir(path) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    dirs.append(e.name)
                elif not e.name.startswith(".tmp-"):
                    files.append(e.name)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st.st_mtime_ns, st.st_ino, tuple(sorted(dirs)), tuple(sorted(files))  # keys come out sorted


class _Writer(Protocol):
    def __call__(self, f: IO[bytes], /) -> object: ...


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
        data = _read(path) if small else b""
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
SMALL_FILE = 64 * 1024  # a local upload reads files up to this size into memory; larger ones are copied by the kernel


def _read_whole(path: str) -> bytes:
    """A whole file with plain system calls, no Path or buffered file object (listings read 100,000 objects). A
    read of a regular file that returns less than asked for has reached its end, so a small file (a ref, a
    manifest) takes one read and no `fstat`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        first = os.read(fd, SMALL_READ)
        if len(first) < SMALL_READ:
            return first
        chunks = [first]
        size = max(os.fstat(fd).st_size - SMALL_READ, 1)
        while chunk := os.read(fd, size):  # the size may change under us: read to the end
            chunks.append(chunk)
            size = CHUNK
        return b"".join(chunks)
    finally:
        os.close(fd)


SMALL_READ = 16384


def _read(path: Path) -> bytes:
    """A file being uploaded, whole."""
    try:
        return _read_whole(str(path))
    except OSError as e:
        raise StoreError(f"cannot read {path}: {e.strerror}", "check the folder being uploaded") from None


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


def open_store(config: Config) -> Store:
    if config.store_url.startswith("s3://"):
        return S3Store(config.store_url, config.s3_endpoint_url, config.s3_max_attempts)
    return LocalStore(Path(config.store_url), config.cache_dir / "listings")
