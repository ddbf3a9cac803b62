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


def test_admins_change_roles_and_disable_users_and_every_change_is_recorded(postgres):
    account = "acct_mgmt_" + secrets.token_hex(3)
    admin = users.create_user(account, _email(), "admin", PASSWORD, settings=postgres)
    analyst = users.create_user(account, _email(), "analyst", PASSWORD, settings=postgres)
    token, _ = users.start_session(analyst, settings=postgres)

    changed = users.change_role(account, analyst.id, "viewer", changed_by=admin.email, settings=postgres)
    assert changed["role"] == "viewer"
    assert users.session_for(token, settings=postgres).user.role == "viewer"  # effective at once

    users.set_disabled(account, analyst.id, True, changed_by=admin.email, settings=postgres)
    assert users.session_for(token, settings=postgres) is None  # the open session ended
    with pytest.raises(users.UserDisabled) as refused:  # the right password: told why
        users.authenticate(analyst.email, PASSWORD, "10.0.1.1", settings=postgres)
    assert "disabled" in refused.value.message and "admin" in refused.value.message
    # A wrong password learns nothing about the user's state.
    assert users.authenticate(analyst.email, "wrong password", "10.0.1.1", settings=postgres) is None
    users.set_disabled(account, analyst.id, False, changed_by=admin.email, settings=postgres)
    assert users.authenticate(analyst.email, PASSWORD, "10.0.1.1", settings=postgres).role == "viewer"

    changes = [(c["email"], c["change"], c["old_value"], c["new_value"], c["changed_by"])
               for c in reversed(users.list_changes(account, settings=postgres))]
    assert changes == [
        (admin.email, "created", None, "admin", "system"),
        (analyst.email, "created", None, "analyst", "system"),
        (analyst.email, "role", "analyst", "viewer", admin.email),
        (analyst.email, "disabled", None, None, admin.email),
        (analyst.email, "enabled", None, None, admin.email)]
    # Another account's admin reaches nobody here.
    assert users.change_role("acct_else", analyst.id, "admin", changed_by="x", settings=postgres) is None
    assert users.set_disabled("acct_else", analyst.id, True, changed_by="x", settings=postgres) is None
    with pytest.raises(InvalidParameter) as bad_role:
        users.change_role(account, analyst.id, "owner", changed_by=admin.email, settings=postgres)
    assert bad_role.value.param == "role"


def test_the_account_always_keeps_an_active_admin(postgres):
    account = "acct_last_" + secrets.token_hex(3)
    admin = users.create_user(account, _email(), "admin", PASSWORD, settings=postgres)
    for attempt in (lambda: users.change_role(account, admin.id, "analyst", changed_by=admin.email,
                                              settings=postgres),
                    lambda: users.set_disabled(account, admin.id, True, changed_by=admin.email,
                                               settings=postgres)):
        with pytest.raises(InvalidParameter) as refused:
            attempt()
        assert refused.value.code == "last_admin" and "only active admin" in refused.value.message
    assert users.list_users(account, settings=postgres)[0]["role"] == "admin"
    # With a second admin, either may step down — but not both at once: while another
    # transaction demotes the second admin, this demotion waits for it and is then refused.
    second = users.create_user(account, _email(), "admin", PASSWORD, settings=postgres)
    import threading

    from exports import db

    outcome = {}

    def demote_first():
        try:
            outcome["result"] = users.change_role(account, admin.id, "viewer", changed_by=admin.email,
                                                  settings=postgres)
        except InvalidParameter as exc:
            outcome["error"] = exc.code

    with db.connect("app", postgres) as other:  # the other admin's change, in flight
        other.execute("SELECT id FROM web_users WHERE account_id = %s FOR UPDATE", (account,))
        other.execute("UPDATE web_users SET role = 'viewer' WHERE id = %s", (second.id,))
        thread = threading.Thread(target=demote_first)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the change did not wait for the account's other change"
        other.commit()
    thread.join(10)
    assert outcome == {"error": "last_admin"}
    assert [u["role"] for u in users.list_users(account, settings=postgres)].count("admin") == 1


def test_cli_changes_roles_and_disables_users(postgres):
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    account = "acct_cli_" + secrets.token_hex(3)
    admin = users.create_user(account, _email(), "admin", PASSWORD, settings=postgres)
    analyst = users.create_user(account, _email(), "analyst", PASSWORD, settings=postgres)
    result = runner.invoke(app, ["users", "set-role", "--email", analyst.email, "--role", "viewer"])
    assert result.exit_code == 0 and "\tviewer\tactive" in result.output, result.output
    result = runner.invoke(app, ["users", "disable", "--email", analyst.email])
    assert result.exit_code == 0 and "\tdisabled" in result.output, result.output
    listed = runner.invoke(app, ["users", "list", "--account", account]).output
    assert f"{analyst.email}\tviewer\tdisabled" in listed
    refused = runner.invoke(app, ["users", "disable", "--email", admin.email])  # the only admin
    assert refused.exit_code == 2 and "only active admin" in refused.output
    assert runner.invoke(app, ["users", "enable", "--email", "nobody@example.com"]).exit_code == 1
    assert runner.invoke(app, ["users", "enable", "--email", analyst.email]).exit_code == 0
    assert [c["changed_by"] for c in users.list_changes(account, settings=postgres)][:3] == ["cli"] * 3
