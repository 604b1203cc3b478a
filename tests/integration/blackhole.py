"""A TCP proxy a test can freeze: a black hole for one client's connections, with no RST and no FIN.

Point one process at the proxy instead of the server (e.g. a kubeconfig whose `server` is the proxy's URL: TLS
passes through untouched, and the API server's certificate names 127.0.0.1), then cut it off and heal it:

    with BlackHole(("127.0.0.1", api_port)) as hole:
        url = f"https://127.0.0.1:{hole.port}"      # what the client dials
        hole.freeze()   # nothing flows either way once it returns; every socket stays open: the client hears silence
        hole.thaw()     # forwarding resumes with whatever the kernel buffered meanwhile
        hole.freeze(forget=True)  # the same, but the connections open now never carry again (a NAT that forgot
                                  # the flow): after the thaw only new connections work
        hole.upstream_bytes                          # bytes forwarded to the server so far (count after a cut)
        hole.pumps                                   # 0 once every connection ended both ways (all drained)

`source` names the loopback address the proxy dials from (say 127.0.0.2): the server then sees every request of
that one client, whatever library made it, from that address (e.g. the API server's audit log `sourceIPs`).

While frozen, the proxy reads from no socket: what the client sends waits in kernel buffers and then in the
client's own send buffer, as behind a firewall that drops packets, and its reads block until their timeout. New
connections are accepted at the TCP level (the kernel's backlog) but carry nothing, so a TLS handshake hangs.
`close()` ends every connection and the listener (a FIN to both sides, never an RST).
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from types import TracebackType


class BlackHole:
    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", source: str | None = None) -> None:
        self.upstream, self.source = upstream, source
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._quiet = threading.Condition(self._lock)  # notified whenever a forward ends
        self._forwarding = 0  # pumps between their read and the end of their write
        self._sockets: list[socket.socket] = []
        self.forgotten: frozenset[socket.socket] = frozenset()  # connections silent for good (freeze(forget=True))
        self.upstream_bytes = 0  # forwarded client -> server
        self.connections = 0  # accepted so far
        self.pumps = 0  # directions still open (two per live connection): 0 once every connection ended
        threading.Thread(target=self._accept, name=f"blackhole-{self.port}", daemon=True).start()

    @property
    def frozen(self) -> bool:
        return not self._flowing.is_set()

    def freeze(self, forget: bool = False) -> None:
        """Stop forwarding; returns once no pump is mid-forward, so from then on not a byte reaches either side.
        With `forget`, the connections open now stay silent after the thaw too, until the proxy closes."""
        with self._quiet:
            self._flowing.clear()
            if forget:
                self.forgotten = frozenset(self._sockets)
            self._quiet.wait_for(lambda: self._forwarding == 0, timeout=10)

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()  # let every pump see the close
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._sockets.clear()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(
                    self.upstream, timeout=5, source_address=(self.source, 0) if self.source else None
                )
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._sockets += [client, server]
                self.connections += 1
                self.pumps += 2
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while not self._closed.is_set():
                self._flowing.wait()
                readable, _, _ = select.select([source], [], [], 0.1)
                if not readable:
                    continue
                if source in self.forgotten:  # a flow the path forgot: no byte, no FIN, until close()
                    self._closed.wait()
                    break
                with self._lock:
                    if not self._flowing.is_set():
                        continue  # frozen between the wait and the read: leave the bytes in the kernel
                    self._forwarding += 1
                data = b""
                try:
                    data = source.recv(65536)
                    if data:
                        sink.sendall(data)
                finally:
                    with self._quiet:
                        self._forwarding -= 1
                        self.upstream_bytes += len(data) if upward and data else 0
                        self._quiet.notify_all()
                if not data:
                    break
        except (OSError, ValueError):  # ValueError: select() on a socket close() just closed
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)  # pass the end on (a FIN), as a real path would
            with self._lock:
                self.pumps -= 1
