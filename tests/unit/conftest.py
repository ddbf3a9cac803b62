"""Unit tests see the settings a fresh process would: the integration fixtures of the same pytest
session export PAYREPORTS_* variables (a test signing secret, private webhook targets allowed),
which would otherwise change what Settings() builds here."""

import os

import pytest

from exports.settings import reset_settings_cache


@pytest.fixture(autouse=True)
def _no_session_settings(monkeypatch):
    for key in [k for k in os.environ if k.startswith("PAYREPORTS_")]:
        monkeypatch.delenv(key)
    reset_settings_cache()
    yield
    reset_settings_cache()
