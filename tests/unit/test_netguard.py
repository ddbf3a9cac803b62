"""The webhook SSRF guard's rules, without network: every spelling of an internal address that an
attacker tried (and a few more) is refused; ordinary public URLs pass."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from exports.delivery import netguard

REFUSED = [
    "http://127.0.0.1/hook", "http://127.0.0.1:8025/", "http://localhost/", "http://api.localhost/",
    "http://[::1]/", "http://[::]/", "http://0.0.0.0/", "http://10.0.0.5/", "http://172.16.3.4/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/",
    "http://100.64.0.1/", "http://100.100.100.200/", "http://224.0.0.1/", "http://239.255.255.250/",
    "http://240.0.0.1/", "http://255.255.255.255/", "http://198.18.0.1/", "http://192.0.0.192/",
    "http://168.63.129.16/", "http://[fe80::1]/", "http://[fc00::1]/", "http://[ff02::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/", "http://[::127.0.0.1]/",
    "http://[::ffff:0:7f00:1]/", "http://[0:0:0:0:0:ffff:127.0.0.1]/", "http://[64:ff9b:1::a00:1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "http://LOCALHOST/", "http://foo.localhost./",
    "http://%31%32%37.0.0.1/", "http://127.0.0.1%2f@x/", "http://0300.0250.0.1/",
    # hex, decimal, octal and short spellings libc's inet_aton accepts
    "http://0x7f000001/", "http://2130706433/", "http://0177.0.0.1/", "http://0x7f.0.0.1/",
    "http://127.1/", "http://017700000001/", "http://0/", "http://127.0.0.1./",
    # hostless, other schemes, user-info and parser-confusion tricks
    "http:///hook", "http://:80/", "https://", "ftp://example.com/", "file:///etc/passwd",
    "gopher://example.com/", "//example.com/hook", "example.com/hook",
    "http://user:pass@example.com/", "http://example.com@127.0.0.1/", "http://evil.com#@127.0.0.1/",
    "http://example.com\\@127.0.0.1/", "http://127.0.0.1\\.example.com/", "http://exa mple.com/",
    "http://example.com/\r\nX-Injected: 1", "http://example.com:0/", "http://example.com:99999/",
    "http://[::1%25lo]/", "http://ex\u0430mple.com/", "http://127\u30020\u30020\u30021/",
    "http://" + "a" * 600 + ".com/",
]

ALLOWED = ["https://hooks.example.com/payreports", "https://93.184.216.34/h",
           "http://203.0.114.1:8443/x?y=1", "https://[2606:4700::1111]/hook",
           "https://xn--bcher-kva.example/hook", "https://8.8.8.8/", "https://123.example.com/"]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_and_malformed_targets_are_refused_at_create(url):
    with pytest.raises(netguard.UnsafeTarget):
        netguard.check_webhook_url(url, allow_private=False)


@pytest.mark.parametrize("url", ALLOWED)
def test_public_targets_pass(url):
    netguard.check_webhook_url(url, allow_private=False)


def test_the_development_setting_allows_private_addresses_but_not_malformed_urls():
    assert netguard.check_webhook_url("http://127.0.0.1:9/h", allow_private=True).host == "127.0.0.1"
    assert netguard.check_webhook_url("http://localhost/", allow_private=True).host == "localhost"
    for url in ("http://0x7f000001/", "http://a@127.0.0.1/", "ftp://127.0.0.1/", "http:///h"):
        with pytest.raises(netguard.UnsafeTarget):
            netguard.check_webhook_url(url, allow_private=True)


def test_embedded_ipv4_is_judged_by_the_ipv4_address():
    assert netguard.embedded_ipv4(ipaddress.ip_address("::ffff:10.1.2.3")) == ipaddress.ip_address("10.1.2.3")
    assert not netguard.is_public(ipaddress.ip_address("64:ff9b::10.1.2.3"))
    assert netguard.is_public(ipaddress.ip_address("64:ff9b::8.8.8.8"))


def test_a_name_resolving_to_any_internal_address_is_refused_at_send(monkeypatch):
    """Even one private answer among public ones is refused (the connect could pick it)."""
    answers = {"mixed.example": ["93.184.216.34", "10.0.0.7"], "public.example": ["93.184.216.34"],
               "rebind.example": ["169.254.169.254"]}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    for host in ("mixed.example", "rebind.example"):
        with pytest.raises(netguard.UnsafeTarget):
            netguard.resolve_target(f"https://{host}/h", allow_private=False)
    target, address = netguard.resolve_target("https://public.example/h", allow_private=False)
    assert (target.host, target.port, str(address)) == ("public.example", 443, "93.184.216.34")
