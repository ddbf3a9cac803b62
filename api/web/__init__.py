"""The web app for merchants' finance teams, and the embeddable reports view, served by the
Report API's FastAPI app (`install(app)` in api.app.create_app).

Server-rendered Jinja2 pages with htmx (vendored in static/, no CDN) over the same exports/
functions the API routes call. Pages: /login, /reports (history, new, detail, download),
/schedules, /notifications, /webhooks, /keys, /users; embedded: /embed/reports?token=….
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from api.web import auth as web_auth

STATIC_DIR = Path(__file__).parent / "static"
_API_PREFIXES = ("/v1/", "/files/", "/docs", "/openapi.json", "/metrics", "/healthz", "/readyz")


def _is_page(path: str) -> bool:
    return not path.startswith(_API_PREFIXES)


def install(app: FastAPI) -> None:
    from api.web import embed, pages

    app.include_router(pages.router)
    app.include_router(embed.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(web_auth.LoginRequired)
    async def login_required(request: Request, _exc) -> Response:
        target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        ended = bool(request.cookies.get(web_auth.SESSION_COOKIE))  # a cookie, but no live session
        if ended:
            target += "&ended=1"
        if request.headers.get("hx-request"):  # htmx follows this header with a full page load
            response: Response = Response(status_code=200, headers={"HX-Redirect": target})
        else:
            response = RedirectResponse(target, status_code=303)
        if ended:
            response.delete_cookie(web_auth.SESSION_COOKIE, path="/")
        return response

    def _message(request: Request, status: int, title: str, message: str) -> Response:
        principal = getattr(request.state, "principal", None)  # set once the caller was identified
        return pages.render(request, "message.html", principal, status_code=status, title=title,
                            message=message)

    @app.exception_handler(web_auth.Forbidden)
    async def forbidden(request: Request, exc: web_auth.Forbidden) -> Response:
        return _message(request, 403, "Not allowed", exc.message)

    @app.exception_handler(web_auth.PageNotFound)
    async def not_found(request: Request, exc: web_auth.PageNotFound) -> Response:
        return _message(request, 404, "Not found", exc.message)

    @app.exception_handler(web_auth.EmbedSessionInvalid)
    async def embed_invalid(request: Request, exc: web_auth.EmbedSessionInvalid) -> Response:
        return _message(request, 401, "Session ended", exc.message)

    @app.exception_handler(web_auth.CsrfFailed)
    async def csrf_failed(request: Request, _exc) -> Response:
        return _message(request, 403, "Form expired",
                        "This form was not sent from your current session (its security token "
                        "did not match). Reload the page and try again.")

    @app.middleware("http")
    async def page_headers(request: Request, call_next):
        response = await call_next(request)
        path = request.url.path
        if not _is_page(path):
            return response
        settings = app.state.settings
        embedded = path.startswith("/embed/")
        ancestors = settings.embed_frame_ancestors if embedded else "'none'"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}")
        if not embedded:
            response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Embedded URLs carry the session token: never send them to another origin.
        response.headers["Referrer-Policy"] = "no-referrer" if embedded else "same-origin"
        if not path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response
