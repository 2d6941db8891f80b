"""A Unix-socket proxy in front of the embedded Postgres, for fault injection: `cut()` drops
every connection through it and refuses new ones (a database restart, a network partition, as
its clients see it), `restore()` lets them through again. Only the engines given the proxy's
URL are affected; the test's own engine keeps the database."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url


class PgProxy:
    """Forwards connections from a socket in `directory` to the server of `url`."""

    def __init__(self, url: str, directory: Path) -> None:
        parsed = make_url(url)
        server_dir = Path(str(parsed.query["host"]))
        (self._target,) = (p for p in server_dir.glob(".s.PGSQL.*") if not p.name.endswith(".lock"))
        directory.mkdir(parents=True, exist_ok=True)
        proxied = parsed.update_query_dict({"host": str(directory)})
        self.url = proxied.render_as_string(hide_password=False)
        self._path = directory / self._target.name
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self._path))
        self._listener.listen(64)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._refusing = False
        self._closed = False
        self.cuts = 0
        self._thread = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    client.close()
                    return
                if self._refusing:
                    client.close()
                    continue
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(str(self._target))
                self._open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones until `restore`."""
        with self._lock:
            self._refusing = True
            self.cuts += 1
            for end in self._open:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
            self._open.clear()

    def restore(self) -> None:
        """Let connections through again."""
        with self._lock:
            self._refusing = False

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        with self._lock:
            self._closed = True
        self._listener.close()
        self._path.unlink(missing_ok=True)

    def __enter__(self) -> PgProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
