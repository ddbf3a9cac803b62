"""S3 storage against a real SeaweedFS server (SigV4-checked): SSE on upload, presigned GETs."""

import hashlib

import httpx
import pytest

from exports.storage import get_storage
from exports.storage.s3 import S3Storage

pytestmark = pytest.mark.integration


def test_upload_with_sse_and_presigned_download(s3_settings, tmp_path):
    storage = get_storage(s3_settings)
    assert isinstance(storage, S3Storage)
    payload = b"id,amount\n" + b"".join(b"py_%d,%d\n" % (i, i * 100) for i in range(2000))
    source = tmp_path / "report.csv"
    source.write_bytes(payload)
    key = "reports/acct_s3/2024-05-01/rpt_s3test.csv"
    storage.put(source, key, "text/csv")

    head = storage.head(key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ContentType"] == "text/csv"
    assert storage.exists(key) and storage.size(key) == len(payload)

    url = storage.download_url(key, ttl_seconds=60, filename="rpt_s3test.csv")
    response = httpx.get(url)
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert "rpt_s3test.csv" in response.headers.get("content-disposition", "")

    tampered = url.replace("rpt_s3test.csv", "rpt_other.csv", 1)
    assert httpx.get(tampered).status_code == 403

    storage.delete(key)
    assert not storage.exists(key)


def test_wrong_credentials_are_rejected(s3_settings, tmp_path):
    bad = get_storage(s3_settings.model_copy(update={"s3_secret_access_key": "wrong"}))
    source = tmp_path / "x.csv"
    source.write_text("x\n")
    with pytest.raises(Exception, match="SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        bad.put(source, "reports/x.csv", "text/csv")


def test_presigned_url_expires(s3_settings, tmp_path):
    import time

    storage = get_storage(s3_settings)
    source = tmp_path / "y.csv"
    source.write_text("y\n")
    storage.put(source, "reports/acct_s3/y.csv", "text/csv")
    url = storage.download_url("reports/acct_s3/y.csv", ttl_seconds=1)
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403
