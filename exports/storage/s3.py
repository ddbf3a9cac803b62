"""Report files in an S3-compatible bucket; downloads are presigned GETs."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from exports.settings import Settings


class S3Storage:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.bucket = settings.s3_bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            # Path-style works with AWS and with S3-compatible servers that have no bucket DNS.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"max_attempts": 5, "mode": "standard"}),
        )

    def _object_key(self, key: str) -> str:
        return key

    def put(self, local_path: Path, key: str, content_type: str | None = None) -> None:
        extra: dict[str, str] = {}
        if content_type:
            extra["ContentType"] = content_type
        if self.settings.s3_sse != "none":
            extra["ServerSideEncryption"] = self.settings.s3_sse
        # upload_file switches to multipart for large files and retries parts.
        self.client.upload_file(str(local_path), self.bucket, self._object_key(key), ExtraArgs=extra)

    def open(self, key: str) -> BinaryIO:
        return self.client.get_object(Bucket=self.bucket, Key=self._object_key(key))["Body"]

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.bucket, Key=self._object_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def size(self, key: str) -> int:
        return int(self.head(key)["ContentLength"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))

    def download_url(self, key: str, ttl_seconds: int | None = None, filename: str | None = None) -> str:
        params = {"Bucket": self.bucket, "Key": self._object_key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=ttl_seconds or self.settings.download_url_ttl_seconds)
