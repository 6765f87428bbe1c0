"""JSON over HTTP for the server backends: one POST, retried, each attempt bounded in time.

:class:`Endpoint` posts a JSON body to ``base_url + path`` and answers the decoded JSON
object. Connection errors (refused, reset, a server that died mid-answer), time-outs, 429
and 5xx are retried ``max_retries`` times with a doubling pause (at most
:data:`MAX_PAUSE_S`; a ``Retry-After`` in seconds is honoured, up to
:data:`MAX_RETRY_AFTER_S`); then :class:`~harness.backends.base.BackendError` names the
URL and the cause. Other 4xx answers and a body that is not JSON are not retried.

``timeout_s`` bounds the *whole attempt*, from connecting to the last byte of the body:
a watchdog shuts the socket down at the deadline, so a server that trickles its answer
byte by byte fails like a silent one. A body over :data:`MAX_REPLY_BYTES` is refused.
The bearer key is sent in a header and appears in no message or ``repr``.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from harness.backends.base import BackendError

__all__ = ["MAX_CHARS_PER_TOKEN", "MAX_PAUSE_S", "MAX_REPLY_BYTES", "MAX_RETRY_AFTER_S", "Endpoint", "Pool", "bounded_reply",
           "finite_logprob"]

#: Longest pause between two attempts, in seconds (without ``Retry-After``).
MAX_PAUSE_S = 8.0
#: Longest ``Retry-After`` honoured, in seconds.
MAX_RETRY_AFTER_S = 60.0
#: Largest answer body read, in bytes.
MAX_REPLY_BYTES = 64 << 20


#: Longest reply text kept per token asked for (``max_tokens``): a server that answers
#: more than that is cut there, so a runaway reply cannot stall the parsers.
MAX_CHARS_PER_TOKEN = 32


def bounded_reply(text: str, max_tokens: int) -> str:
    """``text`` cut to :data:`MAX_CHARS_PER_TOKEN` characters per token asked for."""
    return text[: max(max_tokens, 1) * MAX_CHARS_PER_TOKEN]


def finite_logprob(value: Any, what: str, url: str) -> float:
    """A server's log-probability ``value`` (for ``what``) as a finite float.

    ``url`` is the endpoint that gave it (``.../completions``, ``.../chat/completions``):
    a missing, non-numeric or non-finite value raises :class:`BackendError` naming it.
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BackendError(f"{url} gave no log-probability ({value!r}) for {what}") from None
    if not math.isfinite(number):
        raise BackendError(f"{url} gave a non-finite log-probability ({number}) for {what}")
    return number


class _Deadline(Exception):
    """The attempt ran past ``timeout_s``."""


@dataclass(frozen=True)
class Endpoint:
    """A server's base URL, its bearer key (never shown), and how to retry."""

    base_url: str
    api_key: str = field(default="", repr=False)
    timeout_s: float = 120.0
    max_retries: int = 3

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` as JSON to ``base_url + path``; the answer's JSON object (see the module docstring)."""
        url = self.base_url + path
        data = json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        pause, last_error = 0.5, ""
        for attempt in range(self.max_retries + 1):
            wait = pause
            try:
                status, retry_after, raw = self._attempt(url, data, headers)
            except _Deadline:
                last_error = f"no answer within {self.timeout_s:g} s"
            except (http.client.HTTPException, OSError) as exc:
                # Refused, reset, RemoteDisconnected, IncompleteRead: the server went away.
                last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if 200 <= status < 300:
                    try:
                        answer = json.loads(raw)
                    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                        raise BackendError(f"{url} answered with invalid JSON: {exc}") from None
                    if not isinstance(answer, dict):
                        raise BackendError(f"{url} answered with JSON that is not an object: {raw[:100]!r}")
                    return answer
                detail = raw.decode(errors="replace")[:300]
                if status != 429 and status < 500:
                    raise BackendError(f"{url} answered {status}: {detail}")
                last_error = f"{status}: {detail}"
                wait = max(pause, min(retry_after, MAX_RETRY_AFTER_S))
            if attempt < self.max_retries:
                time.sleep(wait)
                pause = min(pause * 2, MAX_PAUSE_S)
        raise BackendError(f"{url} failed after {self.max_retries + 1} attempt(s): {last_error}")

    def _attempt(self, url: str, data: bytes, headers: dict[str, str]) -> tuple[int, float, bytes]:
        """One POST: status, ``Retry-After`` seconds (0 when absent) and body; raises ``_Deadline``."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"base_url must be an http:// or https:// URL, not {self.base_url!r}")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=self.timeout_s)
        expired = threading.Event()
        # The socket itself: the connection hands it to the response (conn.sock becomes
        # None) when the server will close after answering.
        held: list[socket.socket] = []

        def expire() -> None:
            expired.set()
            for sock in held:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        watchdog = threading.Timer(self.timeout_s, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.connect()
            held.append(conn.sock)
            if expired.is_set():  # the deadline passed while connecting, before there was a socket to shut
                raise _Deadline()
            conn.request("POST", target, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read(MAX_REPLY_BYTES + 1)
            if expired.is_set():  # the watchdog cut the body short
                raise _Deadline()
            if len(raw) > MAX_REPLY_BYTES:
                raise BackendError(f"{url} answered with more than {MAX_REPLY_BYTES} bytes")
            if response.length:  # the connection closed before the announced length
                raise http.client.IncompleteRead(raw, response.length)
            return response.status, _retry_after(response.getheader("Retry-After")), raw
        except (http.client.HTTPException, OSError) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):  # the watchdog, or the socket's own time-out
                raise _Deadline() from None
            raise
        finally:
            watchdog.cancel()
            conn.close()


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


class Pool:
    """``concurrency`` request threads, started on first use; one item runs in the caller's thread."""

    def __init__(self, concurrency: int, name: str):
        self.concurrency = concurrency
        self.name = name
        self._pool: Any = None
        self._lock = threading.Lock()

    def map(self, fn: Any, items: list[Any]) -> list[Any]:
        """``[fn(item) for item in items]``, ``concurrency`` at a time, in order."""
        if len(items) <= 1 or self.concurrency == 1:
            return [fn(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.name)
            pool = self._pool
        return list(pool.map(fn, items))

    def close(self) -> None:
        """Stop the threads (a later :meth:`map` starts new ones)."""
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
