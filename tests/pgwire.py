"""A PostgreSQL wire-protocol relay that records every statement its
clients run: exact counts of what the app asks the database, with no
extension loaded on the server (pg_stat_statements may not be) and nothing
changed in the app. Statements are read off the frontend messages: a simple
Query, or an Execute of a portal bound to a parsed (or prepared) statement."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.helpers import free_port

_PROTOCOL_3 = 196608  # a StartupMessage's version; SSL, GSS and cancel requests have other codes


@dataclass
class Statements:
    """What went through the relay: (the client's application_name, the SQL) per statement run."""

    run: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, application: str, sql: str) -> None:
        with self._lock:
            self.run.append((application, sql))

    def since(self, mark: int, application: str) -> list[str]:
        """The SQL of `application`'s statements from the mark (a len(run)) on."""
        with self._lock:
            return [sql for app, sql in self.run[mark:] if app == application]


@contextlib.contextmanager
def recording(dsn: str) -> Iterator[tuple[str, Statements]]:
    """A DSN that reaches dsn's server through the relay, and what it records."""
    params = conninfo_to_dict(dsn)
    host, port = str(params.get("host") or "localhost"), int(params.get("port") or 5432)
    upstream: tuple[int, str | tuple[str, int]] = (
        (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
    )
    statements = Statements()
    listener = socket.create_server(("127.0.0.1", free_port()))
    threading.Thread(target=_accept, args=(listener, upstream, statements), daemon=True).start()
    relayed = make_conninfo(
        dsn, host="127.0.0.1", port=listener.getsockname()[1], sslmode="disable", gssencmode="disable"
    )
    try:
        yield relayed, statements
    finally:
        listener.close()


def _accept(listener: socket.socket, upstream: tuple[int, str | tuple[str, int]], statements: Statements) -> None:
    with contextlib.suppress(OSError):  # the listener closed
        while True:
            client, _ = listener.accept()
            server = socket.socket(upstream[0])
            server.connect(upstream[1])
            threading.Thread(target=_copy, args=(server, client), daemon=True).start()
            threading.Thread(target=_read_frontend, args=(client, server, statements), daemon=True).start()


def _copy(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError), source, target:
        while data := source.recv(65536):
            target.sendall(data)


def _read_frontend(client: socket.socket, server: socket.socket, statements: Statements) -> None:
    """Relay the client's messages, recording each statement it runs."""
    with contextlib.suppress(OSError, ConnectionError), client, server:
        reader = client.makefile("rb")
        (length,) = struct.unpack("!i", _exactly(reader, 4))
        startup = _exactly(reader, length - 4)
        server.sendall(struct.pack("!i", length) + startup)
        (code,) = struct.unpack("!i", startup[:4])
        if code != _PROTOCOL_3:
            _copy(client, server)  # a cancel request: nothing to record
            return
        fields = startup[4:].split(b"\0")
        application = dict(zip(fields[::2], fields[1::2], strict=False)).get(b"application_name", b"").decode()
        parsed: dict[bytes, str] = {}  # statement name -> SQL
        bound: dict[bytes, str] = {}  # portal name -> SQL
        while True:
            head = _exactly(reader, 5)
            kind, length = head[:1], struct.unpack("!i", head[1:])[0]
            body = _exactly(reader, length - 4)
            server.sendall(head + body)
            if kind == b"Q":
                statements.add(application, body[:-1].decode())
            elif kind == b"P":
                name, sql = body.split(b"\0")[:2]
                parsed[name] = sql.decode()
            elif kind == b"B":
                portal, name = body.split(b"\0")[:2]
                bound[portal] = parsed[name]
            elif kind == b"E":
                statements.add(application, bound[body.split(b"\0")[0]])


def _exactly(reader: Any, size: int) -> bytes:
    data = reader.read(size)
    if len(data) < size:
        raise ConnectionError("closed")
    return bytes(data)
