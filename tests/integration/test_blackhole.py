"""The black-hole proxy (blackhole.py) against a plain echo server: it forwards, freezes without closing, thaws."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from blackhole import BlackHole

from poll import wait_for

PEERS: list[str] = []  # the address each connection to the echo server came from


@pytest.fixture()
def echo() -> Iterator[tuple[str, int]]:
    listener = socket.create_server(("127.0.0.1", 0))
    PEERS.clear()

    def serve() -> None:
        while True:
            try:
                conn, peer = listener.accept()
            except OSError:
                return
            PEERS.append(peer[0])
            threading.Thread(target=lambda c=conn: [c.sendall(d) for d in iter(lambda: c.recv(4096), b"")]).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def test_a_frozen_proxy_carries_nothing_and_keeps_the_connection(echo: tuple[str, int]) -> None:
    with BlackHole(echo) as hole, socket.create_connection(("127.0.0.1", hole.port)) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
        # The echo can answer before the upward pump has counted what it forwarded: wait for the count.
        wait_for(lambda: hole.upstream_bytes == 4, "the 4 bytes counted", 10)

        hole.freeze()
        conn.sendall(b"lost?")
        conn.settimeout(0.5)
        with pytest.raises(TimeoutError):  # silence: no answer, no reset, no end of stream
            conn.recv(5)
        assert hole.upstream_bytes == 4

        hole.thaw()
        conn.settimeout(10)
        assert wait_for(lambda: hole.upstream_bytes == 9, "the buffered bytes to flow on")
        assert conn.recv(5) == b"lost?"
    assert hole.connections == 1


def test_the_proxy_dials_from_the_source_address_it_is_given(echo: tuple[str, int]) -> None:
    with BlackHole(echo, source="127.0.0.2") as hole, socket.create_connection(("127.0.0.1", hole.port)) as conn:
        conn.sendall(b"who")
        assert conn.recv(3) == b"who"
    assert PEERS == ["127.0.0.2"]


def test_a_forgetting_freeze_leaves_old_connections_silent_after_the_thaw(echo: tuple[str, int]) -> None:
    with BlackHole(echo) as hole, socket.create_connection(("127.0.0.1", hole.port)) as old:
        old.sendall(b"a")
        assert old.recv(1) == b"a"
        hole.freeze(forget=True)
        hole.thaw()
        old.sendall(b"b")
        old.settimeout(0.5)
        with pytest.raises(TimeoutError):  # forgotten: silence for good, no reset, no end of stream
            old.recv(1)
        with socket.create_connection(("127.0.0.1", hole.port)) as new:  # a new connection carries again
            new.sendall(b"c")
            new.settimeout(10)
            assert new.recv(1) == b"c"
