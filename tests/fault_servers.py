"""A fault-injecting HTTP proxy in front of a real server, shared by the server backends' tests.

:class:`FaultProxy` passes requests on to ``upstream`` (``zso serve``, a vLLM server) after
``clean`` good ones; then each request gets the next listed fault, and passes once they
are spent. A fault is

* an HTTP status (429 comes with ``Retry-After: retry_after``; other statuses too, where a
  test wants the header honoured on a 5xx);
* ``"drop"``: the connection closes without an answer;
* ``"hang"``: nothing is answered until ``hang_s``, then the connection closes;
* ``"stall"``: the real answer, after ``stall_s``;
* ``"trickle"``: the real answer, one byte every 0.2 s;
* ``"malformed"``: a 200 whose body is not JSON;
* ``"cut"``: half the real answer, then the connection closes;
* a function that rewrites the real answer (a decoded JSON object) in place;
* ``None``: passes.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FaultProxy"]


class FaultProxy(ThreadingHTTPServer):
    """Passes requests on to ``upstream`` after ``clean`` good ones; then one fault per request (module docstring)."""

    daemon_threads = True

    def __init__(self, upstream: str, faults: list[Any], clean: int = 0, hang_s: float = 5.0, stall_s: float = 3.0,
                 retry_after: str = "1"):
        self.upstream, self.faults, self.clean = upstream, list(faults), clean
        self.hang_s, self.stall_s, self.retry_after = hang_s, stall_s, retry_after
        self.seen = 0
        #: When each request arrived (``time.monotonic``).
        self.times: list[float] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (a time-out test) is expected here

    def next_fault(self) -> Any:
        with self.lock:
            self.seen += 1
            self.times.append(time.monotonic())
            if self.seen <= self.clean:
                return None
            return self.faults.pop(0) if self.faults else None

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, code: int, data: bytes, headers: dict[str, str] | None = None, send: bytes | None = None) -> None:
        self.send_response(code)
        for key, value in {"Content-Type": "application/json", "Content-Length": str(len(data)), **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data if send is None else send)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        fault = self.server.next_fault()
        if fault == "drop":
            self.close_connection = True
            return
        if isinstance(fault, int):
            self._answer(fault, json.dumps({"error": {"message": f"injected {fault}"}}).encode(),
                         {"Retry-After": self.server.retry_after})
            return
        if fault == "hang":
            time.sleep(self.server.hang_s)
            self.close_connection = True
            return
        if fault == "malformed":
            self._answer(200, b'{"choices": [{"message": ')
            return
        if fault == "stall":
            time.sleep(self.server.stall_s)
        request = urllib.request.Request(self.server.upstream + self.path.removeprefix("/v1"), data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=300) as response:
            data = response.read()
        if callable(fault):
            answer = json.loads(data)
            fault(answer)
            data = json.dumps(answer).encode()
        if fault == "cut":
            self.close_connection = True
            self._answer(200, data, send=data[: len(data) // 2])
            return
        if fault == "trickle":
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(min(len(data), 200)):  # bounded: the client gives up long before
                try:
                    self.wfile.write(data[i: i + 1])
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.2)
            self.close_connection = True
            return
        self._answer(200, data)
