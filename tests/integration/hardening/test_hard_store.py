"""The blob store contract, run against the local directory and an S3 bucket (moto server mode),
plus D6: a full or read-only blob directory fails cleanly ("no space"/"not writable"), leaves
no temporary file and no blob, and works again once space is back."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from evidence.blobs import open_store
from evidence.errors import StoreError
from evidence.s3store import S3BlobStore
from evidence.store import BlobStore, LocalBlobStore, sha256_digest
from rightswatch.config import from_env


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    bucket = request.getfixturevalue("s3_bucket")
    endpoint = request.getfixturevalue("s3_endpoint")
    return S3BlobStore.from_url(f"s3://{bucket}/ev/prefix?endpoint_url={endpoint}")


def test_put_get_exists_delete_round_trip(store: BlobStore) -> None:
    data = b"\x00evidence\xff" * 1000
    digest = store.put(data)
    assert digest == sha256_digest(data)
    assert store.exists(digest)
    assert store.get(digest) == data
    assert list(store.digests()) == [digest]
    store.delete(digest)
    assert not store.exists(digest)
    assert list(store.digests()) == []
    store.delete(digest)  # deleting what is gone is not an error


def test_same_bytes_twice_is_one_blob(store: BlobStore) -> None:
    first = store.put(b"same")
    second, size = store.put_stream(io.BytesIO(b"same"))
    assert first == second
    assert size == 4
    assert list(store.digests()) == [first]


def test_digests_are_sorted_and_complete(store: BlobStore) -> None:
    made = {store.put(f"blob {i}".encode()) for i in range(7)}
    listed = list(store.digests())
    assert listed == sorted(made)


def test_put_stream_at_the_cap_and_past_it(store: BlobStore) -> None:
    cap = 3 * 1024 * 1024 + 5  # more than one read chunk
    digest, size = store.put_stream(io.BytesIO(b"a" * cap), max_bytes=cap)
    assert size == cap
    assert store.get(digest) == b"a" * cap
    with pytest.raises(StoreError, match=r"^too large: more than \d+ bytes$"):
        store.put_stream(io.BytesIO(b"b" * (cap + 1)), max_bytes=cap)
    assert list(store.digests()) == [digest]
    if isinstance(store, LocalBlobStore):
        assert list((store.root / "tmp").iterdir()) == []


@pytest.mark.parametrize(
    "digest", ["", "sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "sha256:../../etc/passwd"]
)
def test_bad_digest_is_one_line(store: BlobStore, digest: str) -> None:
    with pytest.raises(StoreError, match="not a sha256 digest") as info:
        store.get(digest)
    assert "\n" not in str(info.value)


def test_missing_blob(store: BlobStore) -> None:
    with pytest.raises(StoreError, match=r"^missing blob sha256:"):
        store.get(sha256_digest(b"never stored"))


# --- S3 specifics -----------------------------------------------------------------------------


def test_s3_keys_mirror_the_local_layout(s3_bucket: str, s3_endpoint: str) -> None:
    store = S3BlobStore.from_url(f"s3://{s3_bucket}/p?endpoint_url={s3_endpoint}")
    digest = store.put(b"x")
    hexpart = digest.removeprefix("sha256:")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"p/sha256/{hexpart[:2]}/{hexpart[2:4]}/{hexpart}"]


def test_s3_endpoint_from_settings_and_env(s3_bucket: str, s3_env: dict[str, str]) -> None:
    settings = from_env(
        {"RIGHTSWATCH_HOME": "/nonexistent", "RIGHTSWATCH_BLOB_URL": f"s3://{s3_bucket}/x"}
    )
    os.environ["RIGHTSWATCH_S3_ENDPOINT"] = s3_env["RIGHTSWATCH_S3_ENDPOINT"]
    try:
        store = open_store(settings)
    finally:
        del os.environ["RIGHTSWATCH_S3_ENDPOINT"]
    assert isinstance(store, S3BlobStore)
    assert store.get(store.put(b"via settings")) == b"via settings"


def test_s3_tampered_object_is_refused(s3_bucket: str, s3_endpoint: str) -> None:
    store = S3BlobStore.from_url(f"s3://{s3_bucket}?endpoint_url={s3_endpoint}")
    digest = store.put(b"original")
    store.client.put_object(Bucket=s3_bucket, Key=store.key(digest), Body=b"0riginal")
    with pytest.raises(StoreError, match="does not match its digest"):
        store.get(digest)


def test_s3_missing_bucket_and_dead_endpoint_are_one_line(
    s3_env: dict[str, str], s3_endpoint: str
) -> None:
    gone = S3BlobStore.from_url(f"s3://no-such-bucket-{os.getpid()}?endpoint_url={s3_endpoint}")
    with pytest.raises(StoreError, match="bucket does not exist") as info:
        gone.put(b"x")
    assert "\n" not in str(info.value)
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dead = S3BlobStore.from_url(f"s3://b?endpoint_url=http://127.0.0.1:{port}")
    with pytest.raises(StoreError, match=r"^blob store unreachable: ") as info:
        dead.exists(sha256_digest(b"x"))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("url", ["http://bucket/x", "s3:///prefix-only"])
def test_s3_bad_url(url: str) -> None:
    with pytest.raises(StoreError):
        S3BlobStore.from_url(url, env={})


# --- D6: full and read-only blob directories (local store) ------------------------------------


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_full_blob_directory_fails_cleanly_then_recovers(tmp_path: Path, mounted: object) -> None:
    if os.geteuid() != 0:
        pytest.skip("covered by test_file_size_limit_fails_cleanly without root")
    root = mounted("tmpfs", tmp_path / "tiny", size="128k")  # type: ignore[operator]
    store = LocalBlobStore(root)
    with pytest.raises(StoreError, match=r"^no space left in the blob store$"):
        store.put(os.urandom(512 * 1024))
    with pytest.raises(StoreError, match=r"^no space left in the blob store$"):
        store.put_stream(io.BytesIO(os.urandom(512 * 1024)))
    assert _leftovers(root) == [], "a temp file or partial blob was left behind"
    assert list(store.digests()) == []
    small = store.put(b"fits once space is back")  # the store still works
    assert store.get(small) == b"fits once space is back"


def test_file_size_limit_fails_cleanly(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (works without root): the writer gets EFBIG, not a crash by SIGXFSZ."""
    root = tmp_path / "blobs"
    code = (
        "import io, os, resource, signal, sys\n"
        "from evidence.store import LocalBlobStore\n"
        "from evidence.errors import StoreError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        f"s = LocalBlobStore(__import__('pathlib').Path({str(root)!r}))\n"
        "try:\n"
        "    s.put_stream(io.BytesIO(os.urandom(300000)))\n"
        "except StoreError as e:\n"
        "    print(e); sys.exit(0)\n"
        "sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "file too large for the blob store"
    assert _leftovers(root) == []


def test_read_only_blob_directory(tmp_path: Path, mounted: object) -> None:
    root = tmp_path / "ro"
    old = LocalBlobStore(root).put(b"stored before the disk went read-only")
    if os.geteuid() == 0:
        mounted("bind", root)  # type: ignore[operator]
    else:
        for p in [root, *root.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
    store = LocalBlobStore(root)
    with pytest.raises(StoreError, match=r"^blob store is not writable$"):
        store.put(b"new evidence")
    with pytest.raises(StoreError, match=r"^blob store is not writable$"):
        store.put_stream(io.BytesIO(b"new evidence"))
    assert store.get(old) == b"stored before the disk went read-only"
    assert list(store.digests()) == [old]
