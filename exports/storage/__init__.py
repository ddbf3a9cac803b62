"""Where generated report files live: the local filesystem (default) or S3.

Both backends expose put(local_path, key, content_type), open(key), exists(key), size(key),
delete(key) and download_url(key, ttl_seconds, filename). Keys are deterministic per request
(`report_key`), so a retried run overwrites rather than adds: at most one object per request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from exports.settings import Settings, get_settings

EXTENSIONS = {"csv": "csv", "csv.gz": "csv.gz", "xlsx": "xlsx", "pdf": "pdf", "parquet": "parquet"}
CONTENT_TYPES = {
    "csv": "text/csv",
    "csv.gz": "application/gzip",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
    "parquet": "application/vnd.apache.parquet",
}


class Storage(Protocol):
    def put(self, local_path, key: str, content_type: str | None = None) -> None: ...
    def open(self, key: str): ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...
    def download_url(self, key: str, ttl_seconds: int | None = None, filename: str | None = None) -> str: ...


def extension_for(fmt: str, compressed: str | None = None) -> str:
    if fmt == "csv" and compressed == "gzip":
        return "csv.gz"
    return EXTENSIONS.get(fmt, fmt)


def report_key(account_id: str, created_at: datetime, request_id: str, extension: str,
               settings: Settings | None = None) -> str:
    settings = settings or get_settings()
    prefix = settings.s3_prefix.strip("/") or "reports"
    return f"{prefix}/{account_id}/{created_at:%Y-%m-%d}/{request_id}.{extension}"


def get_storage(settings: Settings | None = None) -> Storage:
    settings = settings or get_settings()
    if settings.storage_backend == "s3":
        from exports.storage.s3 import S3Storage

        return S3Storage(settings)
    from exports.storage.local import LocalStorage

    return LocalStorage(settings)
