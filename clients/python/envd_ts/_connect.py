"""The Connect protocol over httpx: unary calls and server streams, binary protobuf.

Connect rather than gRPC because it is what the e2b SDK itself speaks to envd: plain HTTP/1.1
POSTs that pass every proxy on the way into a sandbox, with no HTTP/2 trailers needed.
"""
from __future__ import annotations

import json
import struct
from typing import Any, AsyncIterator, Dict, Iterator, Optional

import httpx

from .errors import EnvdError

_END_STREAM = 0x02
_COMPRESSED = 0x01


def envelope(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


class EnvelopeReader:
    """Splits a Connect stream body into messages; raises the end-of-stream error, if any."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.ended = False

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._buf += chunk
        while len(self._buf) >= 5:
            flags, length = struct.unpack(">BI", self._buf[:5])
            if len(self._buf) < 5 + length:
                return
            data = bytes(self._buf[5 : 5 + length])
            del self._buf[: 5 + length]
            if flags & _COMPRESSED:
                raise EnvdError("internal", "the daemon sent a compressed message that was not asked for")
            if flags & _END_STREAM:
                self.ended = True
                end = json.loads(data or b"{}")
                err = end.get("error")
                if err:
                    raise EnvdError(err.get("code", "unknown"), err.get("message", ""))
                return
            yield data

    def finish(self) -> None:
        if not self.ended:
            raise EnvdError("unavailable", "the stream ended without its end message")


def _transport_error(err: Exception) -> EnvdError:
    if isinstance(err, EnvdError):
        return err
    if isinstance(err, httpx.TimeoutException):
        return EnvdError("deadline_exceeded", str(err) or "timed out", err)
    if isinstance(err, httpx.TransportError):
        return EnvdError("unavailable", str(err) or type(err).__name__, err)
    return EnvdError("unknown", str(err), err)


class Target:
    """Where the daemon is and who the calls act as."""

    def __init__(self, url: str, access_token: Optional[str] = None, user: Optional[str] = None, headers: Optional[Dict[str, str]] = None) -> None:
        self.url = url.rstrip("/")
        self.access_token = access_token
        self.user = user
        self.headers = dict(headers or {})

    def request_headers(self, stream: bool) -> Dict[str, str]:
        import base64

        h = dict(self.headers)
        h["Connect-Protocol-Version"] = "1"
        h["Content-Type"] = "application/connect+proto" if stream else "application/proto"
        if stream:
            # The daemon sends keepalives this often, so proxies do not close idle streams.
            h["Keepalive-Ping-Interval"] = "50"
        if self.access_token:
            h["X-Access-Token"] = self.access_token
        if self.user:
            h["Authorization"] = "Basic " + base64.b64encode(f"{self.user}:".encode()).decode()
        return h


def _timeout(seconds: Optional[float], stream: bool) -> httpx.Timeout:
    # A stream may sit idle between events (keepalives arrive every 50 s): no read timeout.
    return httpx.Timeout(connect=10.0, read=None if stream else seconds, write=30.0, pool=None)


class SyncCaller:
    def __init__(self, target: Target, http: Optional[httpx.Client] = None, timeout: Optional[float] = 60.0) -> None:
        self.target = target
        self.http = http or httpx.Client()
        self.timeout = timeout

    def unary(self, method: str, request: Any, response_cls: Any) -> Any:
        try:
            r = self.http.post(f"{self.target.url}/{method}", content=request.SerializeToString(), headers=self.target.request_headers(False), timeout=_timeout(self.timeout, False))
        except Exception as err:  # noqa: BLE001 - every transport failure becomes an EnvdError
            raise _transport_error(err) from err
        if r.status_code != 200:
            raise EnvdError.from_http(r.status_code, r.content)
        return response_cls.FromString(r.content)

    def stream(self, method: str, request: Any, response_cls: Any) -> Iterator[Any]:
        try:
            with self.http.stream("POST", f"{self.target.url}/{method}", content=envelope(request.SerializeToString()), headers=self.target.request_headers(True), timeout=_timeout(None, True)) as r:
                if r.status_code != 200:
                    raise EnvdError.from_http(r.status_code, r.read())
                reader = EnvelopeReader()
                for chunk in r.iter_raw():
                    for data in reader.feed(chunk):
                        yield response_cls.FromString(data)
                reader.finish()
        except GeneratorExit:
            raise
        except Exception as err:  # noqa: BLE001
            raise _transport_error(err) from err


class AsyncCaller:
    def __init__(self, target: Target, http: Optional[httpx.AsyncClient] = None, timeout: Optional[float] = 60.0) -> None:
        self.target = target
        self.http = http or httpx.AsyncClient()
        self.timeout = timeout

    async def unary(self, method: str, request: Any, response_cls: Any) -> Any:
        try:
            r = await self.http.post(f"{self.target.url}/{method}", content=request.SerializeToString(), headers=self.target.request_headers(False), timeout=_timeout(self.timeout, False))
        except Exception as err:  # noqa: BLE001
            raise _transport_error(err) from err
        if r.status_code != 200:
            raise EnvdError.from_http(r.status_code, r.content)
        return response_cls.FromString(r.content)

    async def stream(self, method: str, request: Any, response_cls: Any) -> AsyncIterator[Any]:
        try:
            async with self.http.stream("POST", f"{self.target.url}/{method}", content=envelope(request.SerializeToString()), headers=self.target.request_headers(True), timeout=_timeout(None, True)) as r:
                if r.status_code != 200:
                    raise EnvdError.from_http(r.status_code, await r.aread())
                reader = EnvelopeReader()
                async for chunk in r.aiter_raw():
                    for data in reader.feed(chunk):
                        yield response_cls.FromString(data)
                reader.finish()
        except GeneratorExit:
            raise
        except Exception as err:  # noqa: BLE001
            raise _transport_error(err) from err
