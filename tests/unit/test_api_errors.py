"""The API's own failure paths, in process (no services): an unexpected exception is a JSON 500
in the error shape with the request id, and the catalog's datetimes are Unix seconds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import current_account
from exports.settings import Settings


@pytest.fixture
def app():
    app = create_app(Settings())

    @app.get("/v1/boom")
    def boom() -> dict:
        raise RuntimeError("secret internals")

    app.dependency_overrides[current_account] = lambda: "acct_unit"
    return app


def test_an_unexpected_exception_is_a_json_500_with_the_request_id(app, caplog):
    client = TestClient(app, raise_server_exceptions=False)
    response = client.get("/v1/boom", headers={"X-Request-Id": "trace-500"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == "trace-500"
    assert response.headers["x-content-type-options"] == "nosniff"
    error = response.json()["error"]
    assert error["type"] == "api_error" and error["request_id"] == "trace-500"
    assert "trace-500" in error["message"] and "secret internals" not in response.text
    assert any("request failed" in r.getMessage() for r in caplog.records)


def test_catalog_timestamps_are_unix_seconds(app, monkeypatch):
    end = datetime(2026, 11, 30, 12, tzinfo=UTC)
    monkeypatch.setattr("exports.reports.catalog.data_available_end", lambda settings: end)
    monkeypatch.setattr("exports.replication.data_available_end", lambda settings=None: end)
    response = TestClient(app).get("/v1/report_types")
    assert response.status_code == 200, response.text
    for entry in response.json()["data"]:
        assert entry["data_available_end"] == int(end.timestamp())
        assert entry["data_available_start"] is None
