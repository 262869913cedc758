"""Content-addressed blobs in an S3-compatible bucket: the `BlobStore` protocol over boto3.

Keys mirror the local layout (`<prefix>/sha256/ab/cd/<hex>`), so a bucket and a directory can be
synced with ordinary tools. An object is written only under the digest of bytes already hashed
here, and only when absent: S3 PUTs are atomic, so a crash or a refused upload never leaves a
partial object under a digest name. Streams are spooled (memory, then a temporary file that is
always removed) because the digest, which names the key, is known only at the end.

Every failure is a `StoreError` with one line: no stack of botocore details reaches a user.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any, BinaryIO
from urllib.parse import parse_qs, urlsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from evidence.errors import StoreError
from evidence.store import CHUNK, _hex, sha256_digest

SPOOL_IN_MEMORY = 8 * 1024 * 1024
ENDPOINT_ENV = "RIGHTSWATCH_S3_ENDPOINT"
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "?"))
        if code in {"NoSuchBucket"}:
            return "blob store bucket does not exist"
        if code in {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
            return f"blob store refused access ({code})"
        message = " ".join(str(err.get("Message", "")).split())[:200]
        return f"blob store error: {code} {message}".rstrip()
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return "blob store unreachable: " + " ".join(str(exc).split())[:200]
    return "blob store error: " + " ".join(str(exc).split())[:200]


class S3BlobStore:
    """Blobs in `bucket` under `prefix`; the client is any boto3 S3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        if not bucket:
            raise StoreError("blob store URL names no bucket")
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, env: Mapping[str, str] | None = None) -> S3BlobStore:
        """`s3://bucket/prefix?endpoint_url=http://127.0.0.1:9000&region=eu-west-1`.

        The endpoint may also come from RIGHTSWATCH_S3_ENDPOINT (MinIO, Ceph, moto); credentials
        come from boto3's usual chain (AWS_ACCESS_KEY_ID, profiles, instance roles).
        """
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme != "s3":
            raise StoreError(f"blob store URL must start with s3://, got {url[:80]!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        endpoint = query.get("endpoint_url") or env.get(ENDPOINT_ENV) or None
        region = query.get("region") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            s3={"addressing_style": "path"} if endpoint else None,
        )
        try:
            client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config)
        except (BotoCoreError, ValueError) as exc:
            raise StoreError(f"blob store URL: {' '.join(str(exc).split())[:200]}") from None
        return cls(client, parts.netloc, parts.path)

    def key(self, digest: str) -> str:
        hexpart = _hex(digest)
        tail = f"sha256/{hexpart[:2]}/{hexpart[2:4]}/{hexpart}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def put(self, data: bytes) -> str:
        digest = sha256_digest(data)
        if not self.exists(digest):
            self._upload(digest, data)
        return digest

    def put_stream(self, stream: BinaryIO, max_bytes: int | None = None) -> tuple[str, int]:
        """Hash while spooling, refuse past max_bytes, then upload under the digest."""
        hasher, size = hashlib.sha256(), 0
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="rw-s3-") as spool:
            try:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise StoreError(f"too large: more than {max_bytes} bytes")
                    hasher.update(chunk)
                    spool.write(chunk)
            except OSError as exc:
                raise StoreError(f"blob store spool failed: {exc.strerror or exc}") from exc
            digest = "sha256:" + hasher.hexdigest()
            if not self.exists(digest):
                spool.seek(0)
                self._upload(digest, spool)
        return digest, size

    def get(self, digest: str) -> bytes:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key(digest))["Body"]
            data: bytes = body.read()
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                raise StoreError(f"missing blob {digest}") from None
            raise StoreError(_describe(exc)) from None
        except BotoCoreError as exc:
            raise StoreError(_describe(exc)) from None
        if sha256_digest(data) != digest:  # a bucket is less private than our own disk
            raise StoreError(f"blob {digest} in the bucket does not match its digest")
        return data

    def exists(self, digest: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.key(digest))
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                return False
            raise StoreError(_describe(exc)) from None
        except BotoCoreError as exc:
            raise StoreError(_describe(exc)) from None
        return True

    def delete(self, digest: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(digest))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(_describe(exc)) from None

    def digests(self) -> Iterator[str]:
        base = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=base
            )
            names = sorted(
                obj["Key"].rsplit("/", 1)[-1] for page in pages for obj in page.get("Contents", [])
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(_describe(exc)) from None
        for name in names:
            if len(name) == 64:
                yield "sha256:" + name

    def _upload(self, digest: str, body: bytes | IO[bytes]) -> None:
        try:
            if isinstance(body, bytes):
                self.client.put_object(Bucket=self.bucket, Key=self.key(digest), Body=body)
            else:
                self.client.upload_fileobj(body, self.bucket, self.key(digest))
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise StoreError(_describe(exc)) from None
