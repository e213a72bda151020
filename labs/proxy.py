"""Labs, I/O: a TCP proxy in front of one Redis that the outage lab cuts and restores, never touching the server.

While cut, it forwards nothing either way: connections stay open and requests get no reply,
as from a frozen server, so a client waits for its timeout. Restored, it forwards again. The
embedded Redis has no port: `serve_embedded` puts its in-process server on one of the lab's
own, for the proxy to stand in front of. Threads, so both twins use it the same way; nothing
here is the demo's lookup, only what the lab does to the road to Redis.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

POLL_SECONDS = 0.1  # how often a waiting thread looks whether the proxy is closing


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 to `upstream`: `cut()` freezes every connection, `restore()` lets them go on."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL_SECONDS)
        self.port = int(self._listener.getsockname()[1])
        self._open = threading.Event()
        self._open.set()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> CuttableProxy:
        """Accept connections from now on; returns at once."""
        self._spawn(self._accept)
        return self

    def cut(self) -> None:
        """From now on forward nothing: the server seems frozen."""
        self._open.clear()

    def restore(self) -> None:
        """Forward again."""
        self._open.set()

    def close(self) -> None:
        """Stop accepting, close every connection, and wait for the threads."""
        self._closing.set()
        self._open.set()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for each in [self._listener, *sockets]:
            with contextlib.suppress(OSError):
                each.close()
        for thread in threads:
            thread.join(1.0)

    def _spawn(self, target: Any, *arguments: object) -> None:
        thread = threading.Thread(target=target, args=arguments, name="lab-proxy", daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5.0)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            self._spawn(self._pump, client, server)
            self._spawn(self._pump, server, client)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        source.settimeout(POLL_SECONDS)
        while not self._closing.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            while not self._open.wait(POLL_SECONDS):  # cut: hold what came in, as a frozen server would
                if self._closing.is_set():
                    return
            try:
                target.sendall(data)
            except OSError:
                break
        for each in (source, target):
            with contextlib.suppress(OSError):
                each.shutdown(socket.SHUT_RDWR)


class EmbeddedOnAPort:
    """The embedded Redis's in-process server, on a loopback port of the lab's own (fakeredis's TcpFakeServer)."""

    def __init__(self, fake_server: Any) -> None:
        from fakeredis import TcpFakeServer  # imported here: only the outage lab on the embedded Redis needs it

        self._server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
        self._server.fake_server = fake_server  # the demo's data, so the lab's keys are removed from it
        self._server.daemon_threads = True
        self.address: tuple[str, int] = ("127.0.0.1", int(self._server.server_address[1]))
        self._thread = threading.Thread(target=self._server.serve_forever, name="lab-embedded", daemon=True)

    def start(self) -> EmbeddedOnAPort:
        """Serve from now on; returns at once."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(1.0)
