"""Report files on the local filesystem under settings.files_dir, served by the API's /files route."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from exports.settings import Settings
from exports.storage import signing


class LocalStorage:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.files_dir

    def path_for(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:  # "../" in a key must never escape the root
            raise ValueError(f"invalid storage key: {key!r}")
        return path

    def put(self, local_path: Path, key: str, content_type: str | None = None) -> None:
        target = self.path_for(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy to a temp file in the same directory, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out, open(local_path, "rb") as src:
                shutil.copyfileobj(src, out, 1024 * 1024)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        return open(self.path_for(key), "rb")

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def size(self, key: str) -> int:
        return self.path_for(key).stat().st_size

    def delete(self, key: str) -> None:
        self.path_for(key).unlink(missing_ok=True)

    def download_url(self, key: str, ttl_seconds: int | None = None, filename: str | None = None) -> str:
        ttl = ttl_seconds or self.settings.download_url_ttl_seconds
        return signing.signed_url(self.settings.public_base_url, self.settings.signing_secret, key, ttl)
