"""Instructions per WebSocket upgrade, A/B (issue 21): the part of an open that
uvicorn's doors do (internals/uvicorn_http.py, uvicorn_websocket.py), alone, in
one process per version under valgrind's callgrind. The server's protocol
factory makes the HTTP protocol, `connection_made` on a real uvloop
transport, bench/fanout_client.c's upgrade head fed to `data_received`, up to
our WebSocket protocol made and its `run_asgi` task created (never run). The
process counts only around the upgrades (`callgrind_control -i on/off` on
itself), so the count is the upgrades' own, whatever loads the machine:
bench/opening.py's time and CPU per open spread by 20-50% between runs here.

    python -m bench.upgrade --a /tmp/main --b . --upgrades 2000

Each version runs as `python bench/upgrade.py --child N` with its checkout on
PYTHONPATH (a script, not a module: the checkout's graphql_todos must be the
one imported, and an older checkout may have no bench/upgrade.py)."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

HEAD = (
    b"GET /graphql HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
)


def child(upgrades: int) -> None:
    """`upgrades` upgrades on one transport, counted by callgrind."""
    import uvicorn
    import uvloop
    from uvicorn.server import ServerState

    from graphql_todos.internals.uvicorn_http import http_protocol
    from graphql_todos.internals.uvicorn_websocket import WebSocketProtocol

    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("never run")

    options: dict[str, object] = {"http": http_protocol(5.0), "ws": WebSocketProtocol}
    config = uvicorn.Config(app, ws_per_message_deflate=False, lifespan="off", log_level="warning", **options)  # type: ignore[arg-type]
    config.load()
    state = ServerState()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    transport: asyncio.Transport = loop.run_until_complete(loop.connect_accepted_socket(asyncio.Protocol, accepted))[0]
    factory = config.http_protocol_class
    me = str(os.getpid())
    subprocess.run(["callgrind_control", "-i", "on", me], check=True, capture_output=True)
    for _upgrade in range(upgrades):
        protocol = factory(config=config, server_state=state, app_state={}, _loop=loop)  # type: ignore[call-arg]
        protocol.connection_made(transport)
        protocol.data_received(HEAD)  # type: ignore[attr-defined]
    subprocess.run(["callgrind_control", "-i", "off", me], check=True, capture_output=True)
    for task in state.tasks:
        task.cancel()
    client.close()


def counted(tree: Path, upgrades: int, work: Path) -> float:
    """Instructions per upgrade of the checkout `tree`."""
    out = work / f"{tree.name or 'tree'}-{os.urandom(4).hex()}.out"
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         sys.executable, __file__, "--child", str(upgrades)],
        check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(tree.resolve())},
    )
    # The totals: the summary line is 0 when counting starts off (--instr-atstart=no).
    found = re.search(r"^totals:\s+(\d+)", out.read_text(errors="replace"), re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no count in {out}")
    return int(found.group(1)) / upgrades


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", type=Path, help="checkout of the base")
    parser.add_argument("--b", type=Path, help="checkout of the change")
    parser.add_argument("--upgrades", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return child(args.child)
    if args.a is None or args.b is None:
        parser.error("--a and --b are required")
    with tempfile.TemporaryDirectory(prefix="upgrade-") as work:
        for round_ in range(args.rounds):
            a = counted(args.a, args.upgrades, Path(work))
            b = counted(args.b, args.upgrades, Path(work))
            print(f"round {round_ + 1}: A {a:,.0f}, B {b:,.0f} instructions per upgrade, B/A {b / a:.3f}", flush=True)


if __name__ == "__main__":
    main()
