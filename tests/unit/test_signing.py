from urllib.parse import parse_qs, unquote, urlparse

import pytest

from exports.storage import signing

SECRET = "unit-secret"
KEY = "reports/acct_1/2024-05-01/rpt_abc.csv"


def _parts(url: str) -> tuple[str, str, str]:
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    return unquote(parsed.path.removeprefix("/files/")), query["expires"][0], query["sig"][0]


def test_signed_url_verifies_for_its_key_until_expiry():
    url = signing.signed_url("http://h:1/", SECRET, KEY, 60, now=1_000)
    key, expires, sig = _parts(url)
    assert url.startswith("http://h:1/files/reports/acct_1/")
    assert key == KEY and int(expires) == 1_060
    signing.verify(SECRET, key, expires, sig, now=1_059)


@pytest.mark.parametrize("tamper", ["key", "expires", "sig", "secret"])
def test_any_tampering_is_rejected(tamper):
    key, expires, sig = _parts(signing.signed_url("http://h", SECRET, KEY, 60, now=1_000))
    secret = SECRET
    if tamper == "key":
        key = key.replace("acct_1", "acct_2")
    elif tamper == "expires":
        expires = str(int(expires) + 3600)
    elif tamper == "sig":
        sig = ("0" if sig[0] != "0" else "1") + sig[1:]
    else:
        secret = "other-secret"
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(secret, key, expires, sig, now=1_000)


def test_expired_link_is_rejected():
    key, expires, sig = _parts(signing.signed_url("http://h", SECRET, KEY, 60, now=1_000))
    with pytest.raises(signing.SignatureInvalid, match="expired"):
        signing.verify(SECRET, key, expires, sig, now=1_061)


def test_malformed_expiry_is_rejected():
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(SECRET, KEY, "soon", "deadbeef")
