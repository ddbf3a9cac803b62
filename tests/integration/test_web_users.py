"""Web app users against the real app database, and restricted API keys through the real API."""

import secrets

import pytest

from exports import users
from exports.errors import InvalidParameter, RateLimited
from exports.requests import store

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


def _email() -> str:
    return f"u{secrets.token_hex(4)}@example.com"


def test_passwords_are_argon2_hashes_and_sign_in_checks_them(postgres):
    email = _email()
    user = users.create_user("acct_w1", email.upper(), "analyst", PASSWORD, settings=postgres)
    assert user.email == email  # one spelling per person
    from exports import db

    with db.connect("app", postgres) as conn:
        stored = conn.execute("SELECT password_hash FROM web_users WHERE id = %s", (user.id,)).fetchone()[0]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert users.authenticate(email, PASSWORD, "10.0.0.1", settings=postgres) == user
    assert users.authenticate(email, "wrong password", "10.0.0.1", settings=postgres) is None
    assert users.authenticate("nobody@example.com", PASSWORD, "10.0.0.1", settings=postgres) is None
    with pytest.raises(InvalidParameter) as duplicate:
        users.create_user("acct_other", email, "admin", PASSWORD, settings=postgres)
    assert duplicate.value.param == "email"
    for bad, param in ((dict(role="owner"), "role"), (dict(password="short"), "password"),
                       (dict(email="not-an-email"), "email")):
        args = {"email": _email(), "role": "viewer", "password": PASSWORD, **bad}
        with pytest.raises(InvalidParameter) as error:
            users.create_user("acct_w1", args["email"], args["role"], args["password"], settings=postgres)
        assert error.value.param == param


def test_sign_in_is_rate_limited_per_email_and_ip(postgres):
    email = _email()
    users.create_user("acct_w2", email, "viewer", PASSWORD, settings=postgres)
    for _ in range(users.SIGN_IN_MAX_FAILURES):
        assert users.authenticate(email, "guess", "10.0.0.2", settings=postgres) is None
    with pytest.raises(RateLimited) as limited:  # even the right password is not checked now
        users.authenticate(email, PASSWORD, "10.0.0.2", settings=postgres)
    assert limited.value.retry_after_seconds > 0 and "try again in" in limited.value.message
    # Another network is not blocked by someone guessing from this one.
    assert users.authenticate(email, PASSWORD, "10.0.0.3", settings=postgres) is not None


def test_sessions_live_until_sign_out_or_a_new_password(postgres):
    email = _email()
    user = users.create_user("acct_w3", email, "admin", PASSWORD, settings=postgres)
    token, session = users.start_session(user, settings=postgres)
    found = users.session_for(token, settings=postgres)
    assert found.user == user and found.csrf_token == session.csrf_token and len(found.csrf_token) >= 32
    assert users.session_for(token + "x", settings=postgres) is None
    users.end_session(token, settings=postgres)
    assert users.session_for(token, settings=postgres) is None
    token, _ = users.start_session(user, settings=postgres)
    assert users.set_password(email, "another good password", settings=postgres)
    assert users.session_for(token, settings=postgres) is None


def test_demo_admin_gets_a_fresh_password_each_run(postgres):
    email, first = users.ensure_demo_admin("acct_demo_a", settings=postgres)
    email_again, second = users.ensure_demo_admin("acct_demo_b", settings=postgres)
    assert email == email_again and first != second
    assert users.authenticate(email, first, "10.0.0.4", settings=postgres) is None
    assert users.authenticate(email, second, "10.0.0.4", settings=postgres).account_id == "acct_demo_b"


def test_restricted_keys_are_enforced_by_the_api(api_server, postgres):
    account = "acct_" + secrets.token_hex(5)
    read_only, _ = store.create_api_key(account, "ro", postgres, scopes=["reports:read"])
    templates_writer, _ = store.create_api_key(account, "tpl", postgres, scopes=["templates:write"])
    standard, _ = store.create_api_key(account, "std", postgres)
    body = {"report_type": "balance.summary", "format": "csv",
            "parameters": {"interval_start": 1714521600, "interval_end": 1717200000}}
    with api_server.client(read_only) as client:
        assert client.get("/v1/reports").status_code == 200
        assert client.get("/v1/report_types").status_code == 200
        denied = client.post("/v1/reports", json=body)
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"] == {
            "type": "permission_error", "code": "api_key_scope_missing", "param": "Authorization",
            "message": denied.json()["error"]["message"]}
        assert "reports:write" in denied.json()["error"]["message"]
        assert client.get("/v1/webhook_secret").status_code == 403
        assert client.post("/v1/embed_sessions").status_code == 403
    with api_server.client(templates_writer) as client:
        assert client.get("/v1/report_templates").status_code == 200  # write includes read
        assert client.get("/v1/reports").status_code == 403
    with api_server.client(standard) as client:
        assert client.post("/v1/reports", json=body).status_code == 200
        minted = client.post("/v1/embed_sessions").json()
        assert minted["account"] == account and "/embed/reports?token=" in minted["url"]
    key_id = store.list_api_keys(account, postgres)[-1]["id"]
    assert not store.revoke_api_key(key_id, postgres, account_id="acct_someone_else")
    assert store.revoke_api_key(key_id, postgres, account_id=account)
