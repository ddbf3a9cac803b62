"""/files/{key}: downloads of locally stored reports through HMAC-signed, expiring links."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse

from api.auth import get_settings_dep
from api.errors import DownloadForbidden
from api.schemas import error_responses
from exports.errors import NotFound
from exports.settings import Settings
from exports.storage import CONTENT_TYPES, signing
from exports.storage.local import LocalStorage

router = APIRouter(tags=["files"])


def _content_type(key: str) -> str:
    for ext in sorted(CONTENT_TYPES, key=len, reverse=True):
        if key.endswith("." + ext):
            return CONTENT_TYPES[ext]
    return "application/octet-stream"


@router.get("/files/{key:path}", response_class=FileResponse,
            responses={200: {"description": "The report file.",
                             "content": {media: {} for media in
                                         sorted({*CONTENT_TYPES.values(), "application/octet-stream"})}},
                       **error_responses(400, 403, 404)})
def download_file(key: str, settings: Annotated[Settings, Depends(get_settings_dep)],
                  expires: Annotated[str, Query()] = "", sig: Annotated[str, Query()] = "") -> FileResponse:
    try:
        signing.verify(settings.signing_secret, key, expires, sig)
    except signing.SignatureInvalid as exc:
        raise DownloadForbidden(f"This download link is invalid or has expired ({exc}); "
                                "get a fresh one from the report.", param="sig") from None
    storage = LocalStorage(settings)
    try:
        path = storage.path_for(key)
    except ValueError:
        raise DownloadForbidden("invalid file key", param="key") from None
    if settings.storage_backend != "local" or not path.is_file():
        raise NotFound("The file no longer exists.", param="key")
    return FileResponse(path, media_type=_content_type(key), filename=path.name)
