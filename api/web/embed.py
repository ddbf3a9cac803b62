"""POST /v1/embed_sessions: a platform's server, with its API key, mints a short-lived session
for one of its merchants' reports view, to load in an iframe:

    curl -X POST $API/v1/embed_sessions -H "Authorization: Bearer $KEY"
    -> {"object": "embed_session", "token": "...", "url": "https://…/embed/reports?token=…",
        "expires_at": 1793491800}

The session is the key's account (a key is one account's), lasts
settings.embed_session_ttl_seconds (<= 10 minutes), ends when the key is revoked, and only the
/embed/reports pages accept it. Frame it from the origins in PAYREPORTS_EMBED_FRAME_ANCESTORS.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from api.auth import ApiKey, current_key
from api.schemas import AUTHENTICATED, error_responses
from api.web.auth import mint_embed_token

router = APIRouter(tags=["embedding"])


class EmbedSession(BaseModel):
    object: Literal["embed_session"] = "embed_session"
    account: str
    token: str
    url: str
    expires_at: int


@router.post("/v1/embed_sessions", response_model=EmbedSession, responses=error_responses(*AUTHENTICATED))
def create_embed_session(request: Request, key: Annotated[ApiKey, Depends(current_key)]) -> dict:
    settings = request.app.state.settings
    token = mint_embed_token(key.account_id, key.id, settings)
    return {"object": "embed_session", "account": key.account_id, "token": token,
            "url": f"{settings.public_base_url.rstrip('/')}/embed/reports?token={token}",
            "expires_at": int(time.time()) + settings.embed_session_ttl_seconds}
