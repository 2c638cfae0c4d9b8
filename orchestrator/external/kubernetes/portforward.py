"""Port-forward tunnels: a local listener on 127.0.0.1 relaying each connection to a pod's
port through the API server's port-forward (one stream per connection)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["PortForwardTunnel"]


class PortForwardTunnel:
    """127.0.0.1:<free port> -> ``pod:port`` through the API server's port-forward. Each
    accepted connection opens its own stream; ``close()`` stops the listener and every relay."""

    def __init__(
        self,
        open_stream: Callable[[str, str, int], Any],
        namespace: str,
        pod: str,
        port: int,
    ) -> None:
        self.namespace = namespace
        self.pod = pod
        self.port = port
        self._open_stream = open_stream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.local_port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._connections: list[socket.socket] = []
        self._errors: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"port-forward {pod}:{port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.local_port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    @property
    def errors(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._errors)

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.close()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> PortForwardTunnel:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._connections.append(connection)
            threading.Thread(
                target=self._relay, args=(connection,), name="port-forward relay", daemon=True
            ).start()

    def _relay(self, connection: socket.socket) -> None:
        stream: Any = None
        try:
            stream = self._open_stream(self.namespace, self.pod, self.port)
            remote = stream.socket(self.port)
            remote.setblocking(True)
            pump(connection, remote, self._closed)
            error = stream.error(self.port)
            if error:
                with self._lock:
                    self._errors.append(str(error))
        except Exception as error:  # a relay must never kill the listener
            with self._lock:
                self._errors.append(f"{type(error).__name__}: {error}")
        finally:
            with contextlib.suppress(OSError):
                connection.close()
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)


def pump(local: socket.socket, remote: Any, closed: threading.Event) -> None:
    """Copy bytes both ways until one side closes."""
    sockets = [local, remote]
    while not closed.is_set():
        try:
            readable, _, _ = select.select(sockets, [], [], 0.2)
        except (OSError, ValueError):
            return
        for source in readable:
            target = remote if source is local else local
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            try:
                target.sendall(data)
            except OSError:
                return
