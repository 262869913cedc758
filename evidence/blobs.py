"""Choose the blob store from the settings: the local directory by default."""

from __future__ import annotations

from evidence.store import BlobStore, LocalBlobStore
from rightswatch.config import Settings


def open_store(settings: Settings) -> BlobStore:
    if settings.blob_url:
        from evidence.s3store import S3BlobStore  # issue 7: S3-compatible buckets

        return S3BlobStore.from_url(settings.blob_url)
    return LocalBlobStore(settings.blob_dir)
