"""Who is using the web app: a signed-in user (session cookie) or an embedded session (a
short-lived signed token a platform minted with its API key). Plus CSRF checks and the errors
the pages turn into redirects or friendly pages.

Cookie: HttpOnly, SameSite=Lax, Secure in production (settings.secure_cookies), path /. CSRF:
a synchronizer token per session, sent back as a hidden `csrf_token` field or the X-CSRF-Token
header (htmx); the sign-in form, before any session exists, uses a double-submit cookie.

Embedded sessions never set a cookie: the token travels in the URL of every embedded request
(links and htmx calls carry it), is valid for settings.embed_session_ttl_seconds (<= 10 min),
dies with the key that minted it, and is accepted only by the /embed/* routes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.concurrency import run_in_threadpool

from exports import users
from exports.requests import store
from exports.settings import Settings

SESSION_COOKIE = "payreports_session"
LOGIN_CSRF_COOKIE = "payreports_login_csrf"
EMBED_SALT = "payreports.embed-session.v1"
EMBED_ROLE = "analyst"  # an embedded view may list, request, cancel and download reports


class LoginRequired(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class PageNotFound(Exception):
    def __init__(self, message: str = "This page does not exist, or it belongs to another account."):
        super().__init__(message)
        self.message = message


class EmbedSessionInvalid(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class CsrfFailed(Exception):
    pass


@dataclass(frozen=True)
class Principal:
    account_id: str
    role: str
    email: str  # the user's email, or "embedded" for an embed session
    user_id: str | None
    csrf_token: str
    embed_token: str | None = None

    @property
    def embedded(self) -> bool:
        return self.embed_token is not None

    @property
    def requested_by(self) -> str:
        return f"web:{self.email}" if not self.embedded else f"embed:{self.account_id}"

    def can(self, permission: str) -> bool:
        return permission in users.ROLE_PERMISSIONS[self.role]

    def require(self, permission: str, what: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"Your role ({self.role}) cannot {what}. Ask an admin of your account.")

    def url(self, path: str, **query) -> str:
        """A link inside the app; embedded links carry the embed token."""
        if self.embedded:
            query["token"] = self.embed_token
        query = {k: v for k, v in query.items() if v not in (None, "")}
        return path + ("?" + urlencode(query, doseq=True) if query else "")


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def signed_in_user(request: Request) -> Principal:
    """Dependency of every app page: the session's user, or LoginRequired."""
    token = request.cookies.get(SESSION_COOKIE, "")
    session = users.session_for(token, settings=settings_of(request)) if token else None
    if session is None:
        raise LoginRequired()
    request.state.account_id = session.user.account_id
    request.state.principal = Principal(
        account_id=session.user.account_id, role=session.user.role, email=session.user.email,
        user_id=session.user.id, csrf_token=session.csrf_token)
    return request.state.principal


# ------------------------------------------------------------------------------------- embed

def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.signing_secret, salt=EMBED_SALT)


def mint_embed_token(account_id: str, key_id: str, settings: Settings) -> str:
    return _serializer(settings).dumps({"acct": account_id, "key": key_id,
                                        "jti": secrets.token_urlsafe(9)})


def embedded_session(request: Request) -> Principal:
    """Dependency of the /embed/* routes: the token in the URL, checked for signature, age and a
    still-live minting key; anything else is EmbedSessionInvalid (never a sign-in page)."""
    settings = settings_of(request)
    token = request.query_params.get("token", "")
    if not token:
        raise EmbedSessionInvalid("This embedded view needs a session token; the platform "
                                  "that shows it must mint one (POST /v1/embed_sessions).")
    try:
        claims = _serializer(settings).loads(token, max_age=settings.embed_session_ttl_seconds)
    except SignatureExpired:
        raise EmbedSessionInvalid("This embedded session has expired; reload the page in your "
                                  "platform's dashboard to start a new one.") from None
    except BadSignature:
        raise EmbedSessionInvalid("This embedded session token is not valid.") from None
    if not store.key_is_live(claims["key"], settings):
        raise EmbedSessionInvalid("The API key that started this embedded session was revoked.")
    request.state.account_id = claims["acct"]
    csrf = hmac.new(settings.signing_secret.encode(), f"embed-csrf:{token}".encode(),
                    hashlib.sha256).hexdigest()
    request.state.principal = Principal(account_id=claims["acct"], role=EMBED_ROLE, email="embedded",
                                        user_id=None, csrf_token=csrf, embed_token=token)
    return request.state.principal


# -------------------------------------------------------------------------------------- CSRF

async def checked_form(request: Request, principal: Principal):
    """The submitted form, after its CSRF token matched the session's."""
    form = await request.form()
    sent = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
    if not sent or not hmac.compare_digest(sent, principal.csrf_token):
        raise CsrfFailed()
    return form


async def app_form(request: Request):
    principal = await run_in_threadpool(signed_in_user, request)
    return principal, await checked_form(request, principal)


async def embed_form(request: Request):
    principal = await run_in_threadpool(embedded_session, request)
    return principal, await checked_form(request, principal)
