"""Which webhook targets payreports may connect to (the SSRF guard), checked twice.

At create time (`check_webhook_url`, called by the report API and by template validation) the URL
itself is checked: http(s) only, a host, no user-info, no fragment, no backslashes, spaces or
control characters, no non-ASCII host, an IP literal only in canonical dotted-decimal / bracketed IPv6 form (the
`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1` spellings libc also accepts are refused), and
that literal must be a public address; `localhost` and `*.localhost` are refused by name.

At send time (`resolve_target`) the host is resolved and *every* address it resolves to must be
public; the caller connects to the checked address itself (webhooks.post_event puts the IP in
the URL and sends the name as Host header and TLS SNI), so a DNS answer that changes between the
check and the connect (rebinding) is never used.

"Public" means not loopback, private (RFC 1918, fc00::/7), link-local (which holds the
169.254.169.254 metadata service), CGNAT 100.64/10, multicast, reserved, unspecified,
benchmarking or IETF-protocol space, nor a known cloud-metadata address; IPv6 forms that embed
an IPv4 address (IPv4-mapped ::ffff:a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by
that IPv4 address. `Settings.webhook_allow_private_targets` lifts the address rules (not the
URL-shape rules) for development and tests; production settings refuse it.

Error texts are short and never contain what a target answered.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Not covered by ipaddress' is_private/is_global on every Python version, or public addresses
# that are metadata endpoints inside a cloud (Azure's wireserver).
_EXTRA_BLOCKED = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "168.63.129.16/32",
    "fd00:ec2::254/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128", "::1/128", "2001:db8::/32",
    "100::/64",
)]
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_DOTTED_DECIMAL = re.compile(r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
# Anything libc's inet_aton might read as an IPv4 address: digits, hex, dots only.
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]*))*\.?", re.IGNORECASE)
_HOSTNAME = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                       r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?", re.IGNORECASE)
MAX_URL_LENGTH = 500


# Does not say which address a name resolved to: the account learns nothing about internal addressing.
NOT_PUBLIC_BY_NAME = "webhook_url host does not resolve to a public internet address"


class UnsafeTarget(ValueError):
    """The URL or the address it leads to may not be used as a webhook target."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # lowercase name or canonical IP text (without brackets)
    port: int
    path: str  # path + query, at least "/"


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64, 6to4), else None."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        return False
    if any(address in net for net in _EXTRA_BLOCKED if net.version == address.version):
        return False
    return address.is_global and not (
        address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
        or address.is_reserved or address.is_unspecified)


def check_address(address: IPAddress, *, allow_private: bool) -> None:
    if not allow_private and not is_public(address):
        raise UnsafeTarget("webhook_url must point to a public internet address "
                           "(private, loopback, link-local and reserved addresses are refused)")


def parse(url: object) -> Target:
    """The URL's parts after the shape rules; UnsafeTarget naming the rule otherwise."""
    if not isinstance(url, str) or not url:
        raise UnsafeTarget("webhook_url must be an absolute http(s) URL")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"webhook_url must be at most {MAX_URL_LENGTH} characters")
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise UnsafeTarget("webhook_url must not contain spaces, control characters or backslashes")
    if "#" in url:  # meaningless for a webhook, and parsers disagree on what follows it
        raise UnsafeTarget("webhook_url must not contain a fragment (#)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeTarget("webhook_url is not a valid URL (check the host and port)") from None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UnsafeTarget("webhook_url must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise UnsafeTarget("webhook_url must not contain a user name or password")
    host = parts.hostname or ""
    if not host:
        raise UnsafeTarget("webhook_url must name a host")
    if not host.isascii():
        raise UnsafeTarget("webhook_url host must be ASCII (use the xn-- form of an international name)")
    if port == 0:
        raise UnsafeTarget("webhook_url port must be between 1 and 65535")
    bracketed = parts.netloc.rpartition("@")[2].startswith("[")
    if bracketed:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeTarget("webhook_url has an invalid IPv6 address") from None
        host = str(address)
    elif _NUMERIC_HOST.fullmatch(host):
        if not _DOTTED_DECIMAL.fullmatch(host):
            raise UnsafeTarget("webhook_url host must be a DNS name or a dotted-decimal IPv4 "
                               "address such as 203.0.113.7")
    elif not _HOSTNAME.fullmatch(host):
        raise UnsafeTarget("webhook_url host is not a valid DNS name")
    host = host.rstrip(".").lower() if not bracketed else host
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_webhook_url(url: object, *, allow_private: bool) -> Target:
    """Create-time check (no DNS): the shape rules, and the address rules for IP literals and
    names that are loopback by definition (RFC 6761)."""
    target = parse(url)
    address = literal_address(target.host)
    if address is not None:
        check_address(address, allow_private=allow_private)
    elif not allow_private and (target.host == "localhost" or target.host.endswith(".localhost")):
        raise UnsafeTarget("webhook_url must point to a public internet address (not localhost)")
    return target


def resolve_target(url: str, *, allow_private: bool) -> tuple[Target, IPAddress]:
    """Send-time check: parse, resolve, refuse unless every address is allowed; returns the
    address to connect to. Raises UnsafeTarget (permanent) or OSError (DNS trouble, retryable)."""
    target = check_webhook_url(url, allow_private=allow_private)
    address = literal_address(target.host)
    if address is not None:
        return target, address
    infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    addresses = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        resolved = ipaddress.ip_address(sockaddr[0].split("%")[0])
        # Every answer, not just the first (the connection could otherwise pick the private one).
        if not allow_private and not is_public(resolved):
            raise UnsafeTarget(NOT_PUBLIC_BY_NAME)
        addresses.append(resolved)
    if not addresses:
        raise OSError("no addresses")
    return target, addresses[0]
