"""How each setting's text is read (core/settings.py): one parser per kind
of value, raising ValueError with what is wrong."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("must be an integer") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be from {low} to {high}" if high else f"must be at least {low}")
        return value

    return parse


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def nonempty_text(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


def path(text: str) -> Path:
    return Path(nonempty_text(text))


def boolean(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("must be true or false")
    return text.lower() == "true"


def token(text: str) -> str | None:
    # Empty as unset, like DATABASE_URL; a short token is guessable.
    if text and len(text) < 16:
        raise ValueError("must be at least 16 characters")
    return text or None


def secret_file(parse: Callable[[str], str | None]) -> Callable[[str], str | None]:
    """A file holding a secret: checked now, kept as its path (so that
    `serve --workers` hands each worker the path, not the secret), read
    again by whoever needs the secret."""

    def checked(text: str) -> str | None:
        if text:
            read_secret(text, parse)
        return text or None

    return checked


def read_secret(path: str, parse: Callable[[str], str | None]) -> str | None:
    try:
        return parse(Path(path).read_text().strip())
    except OSError as exc:
        raise ValueError(f"cannot be read: {exc.strerror}") from None


_AUTH_MODES = ("open", "accounts")


def auth(text: str) -> str:
    if text not in _AUTH_MODES:
        raise ValueError("must be open or accounts")
    return text


_SIGN_UP = ("open", "closed")


def sign_up(text: str) -> str | None:
    # Empty as unset: the default follows the JWT settings (Settings.sign_up_open).
    if text and text not in _SIGN_UP:
        raise ValueError("must be open or closed")
    return text or None


_JOURNAL_MODES = ("trigger", "decoded")


def journal(text: str) -> str:
    if text not in _JOURNAL_MODES:
        raise ValueError("must be trigger or decoded")
    return text


def jwt_secret(text: str) -> str | None:
    # RFC 7518: an HS256 key of at least the hash's 256 bits.
    if text and len(text.encode()) < 32:
        raise ValueError("must be at least 32 bytes")
    return text or None


def read_jwks(path: str) -> dict[str, Any]:
    """A JSON Web Key Set file's keys, or ValueError saying what is wrong with it."""
    try:
        jwks = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"must be a readable JSON file ({exc})") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError('must hold a JSON Web Key Set {"keys": [...]}')
    return jwks


def jwks_file(text: str) -> str | None:
    # Checked now; kept as the path, which each worker reads again.
    if text:
        read_jwks(text)
    return text or None


def optional_text(text: str) -> str | None:
    return text or None


def origins(text: str) -> tuple[str, ...]:
    origins = tuple(o.strip().lower().rstrip("/") for o in text.split(",") if o.strip())
    for origin in origins:
        scheme, _, host = origin.partition("://")
        if scheme not in ("http", "https") or not host or "/" in host:
            raise ValueError(f"{origin!r} is not an origin like https://example.org[:port]")
    return origins


def hosts(text: str) -> tuple[str, ...]:
    hosts: list[str] = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        # A trailing dot names the same host (example.org. is example.org).
        host = entry.lower().rstrip(".")
        name = host.removeprefix(".")
        if host != "*" and not (_HOST_NAME.fullmatch(name) or is_ip_literal(name)):
            raise ValueError(
                f"{entry!r} is not a host name like example.org, .example.org (it and its subdomains),"
                " an IP address ([...] for IPv6), or *"
            )
        hosts.append(host)
    return tuple(hosts)


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


def is_ip_literal(name: str) -> bool:
    """An IP address as a Host header spells it: IPv6 in brackets."""
    try:
        if name.startswith("[") and name.endswith("]"):
            ipaddress.IPv6Address(name[1:-1])
        else:
            ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


def proxies(text: str) -> tuple[str, ...]:
    proxies = tuple(p.strip() for p in text.split(",") if p.strip())
    for proxy in filter(lambda p: p != "*", proxies):
        # Checked as uvicorn reads them, which takes anything else for a name
        # no address ever matches: a typo would trust no one, silently.
        parse = ipaddress.ip_network if "/" in proxy else ipaddress.ip_address
        try:
            parse(proxy)
        except ValueError:
            raise ValueError(f"{proxy!r} is not an IP address, a network like 10.0.0.0/8, or *") from None
    return proxies


def optional_url(text: str) -> str | None:
    # Empty as unset: `DATABASE_URL= graphql-todos serve` means embedded.
    return text or None


def web_dist(text: str) -> Path | None:
    if not text:
        return None  # empty: serve no web client
    path = Path(text)
    if not (path / "index.html").is_file():
        raise ValueError("must be a directory holding a built web client (index.html)")
    return path


def trusted_documents(text: str) -> dict[str, str] | None:
    if not text:
        return None
    try:
        manifest = json.loads(Path(text).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"must be a readable JSON file ({exc})") from None
    if not isinstance(manifest, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in manifest.items()
    ):
        raise ValueError('must hold a JSON object {"<sha256>": "<document>"}')
    return manifest


_LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def log_level(text: str) -> str:
    if text.lower() not in _LOG_LEVELS:
        raise ValueError("must be one of " + ", ".join(_LOG_LEVELS))
    return text.lower()


def log_format(text: str) -> str:
    if text not in ("text", "json"):
        raise ValueError("must be text or json")
    return text
