"""Sync and async clients of the envd-ts extension services."""
from __future__ import annotations

from typing import Any, AsyncIterator, Iterator, List, Optional, Union

import httpx

from ._connect import AsyncCaller, SyncCaller, Target
from ._proto import message
from ._requests import FS, PC, PX, SY, Collector, RunResult, Selector, attach_request, list_request, process_ref, proxy_request, signal_request, start_request
from .errors import EnvdError

_EVENT = "envdts.v1.ProcessStreamEvent"


def _first(events: Iterator[Any]) -> Any:
    for ev in events:
        if ev.WhichOneof("event") != "keepalive":
            return ev
    raise EnvdError("unavailable", "the stream ended before its first event")


class ProcessStream:
    """The events of a Start or Attach stream (keepalives left out). The first event has arrived:
    ``id`` and ``pid`` are set, and for attach ``info``, ``offset`` and ``dropped_bytes``.
    Iterate it, or call wait(); close() (or leaving the loop) ends the stream, not the process."""

    def __init__(self, events: Iterator[Any]) -> None:
        self._events = events
        self._first = _first(events)
        kind = self._first.WhichOneof("event")
        self.info = self._first.attached.process if kind == "attached" else None
        self.offset = self._first.attached.offset if kind == "attached" else None
        self.dropped_bytes = self._first.attached.dropped_bytes if kind == "attached" else None
        self.id = self.info.id if self.info is not None else self._first.started.id
        self.pid = self.info.pid if self.info is not None else self._first.started.pid

    def __iter__(self) -> Iterator[Any]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        for ev in self._events:
            if ev.WhichOneof("event") != "keepalive":
                yield ev

    def wait(self) -> RunResult:
        c = Collector()
        for ev in self:
            c.add(ev)
        return c.result()

    def close(self) -> None:
        close = getattr(self._events, "close", None)
        if close:
            close()


class AsyncProcessStream:
    """ProcessStream for asyncio: ``async for ev in stream``, ``await stream.wait()``, ``await stream.aclose()``."""

    def __init__(self, events: AsyncIterator[Any], first: Any) -> None:
        self._events = events
        self._first = first
        kind = first.WhichOneof("event")
        self.info = first.attached.process if kind == "attached" else None
        self.offset = first.attached.offset if kind == "attached" else None
        self.dropped_bytes = first.attached.dropped_bytes if kind == "attached" else None
        self.id = self.info.id if self.info is not None else first.started.id
        self.pid = self.info.pid if self.info is not None else first.started.pid

    @staticmethod
    async def open(events: AsyncIterator[Any]) -> "AsyncProcessStream":
        async for ev in events:
            if ev.WhichOneof("event") != "keepalive":
                return AsyncProcessStream(events, ev)
        raise EnvdError("unavailable", "the stream ended before its first event")

    async def __aiter__(self) -> AsyncIterator[Any]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        async for ev in self._events:
            if ev.WhichOneof("event") != "keepalive":
                yield ev

    async def wait(self) -> RunResult:
        c = Collector()
        async for ev in self:
            c.add(ev)
        return c.result()

    async def aclose(self) -> None:
        close = getattr(self._events, "aclose", None)
        if close:
            await close()


def _m(name: str, **kw: Any) -> Any:
    return message(name)(**kw)


class Processes:
    """envdts.v1.ProcessControl: start with limits and restarts, attach with replay, history, any signal."""

    def __init__(self, c: SyncCaller) -> None:
        self._c = c

    def start(self, cmd: str, **options: Any) -> ProcessStream:
        """Starts a process; returns once it runs. Options: args, envs, cwd, tag, stdin, limits,
        restart, timeout, run_as, merge_stderr (see start_request)."""
        req = _build(start_request, cmd, options)
        return ProcessStream(self._c.stream(f"{PC}/Start", req, message(_EVENT)))

    def run(self, cmd: str, **options: Any) -> RunResult:
        return self.start(cmd, **options).wait()

    def attach(self, process: Selector, from_: Union[None, str, int] = None) -> ProcessStream:
        """Replays held output from ``from_`` ("oldest" or an offset), then follows to the final exit."""
        return ProcessStream(self._c.stream(f"{PC}/Attach", _build_attach(process, from_), message(_EVENT)))

    def get(self, process: Selector) -> Any:
        return self._c.unary(f"{PC}/GetProcess", _m("envdts.v1.GetProcessRequest", process=process_ref(process)), message("envdts.v1.GetProcessResponse")).process

    def list(self, filter: str = "all", tag: Optional[str] = None) -> List[Any]:  # noqa: A002
        return list(self._c.unary(f"{PC}/ListProcesses", list_request(filter, tag), message("envdts.v1.ListProcessesResponse")).processes)

    def signal(self, process: Selector, signal: Union[str, int], target: str = "process", stop_restarts: bool = False) -> None:
        self._c.unary(f"{PC}/Signal", signal_request(process, signal, target, stop_restarts), message("envdts.v1.SignalResponse"))


class Files:
    """envdts.v1.FilesystemExt: copy, chmod, chown, paged listing."""

    def __init__(self, c: SyncCaller) -> None:
        self._c = c

    def copy(self, source: str, destination: str, force: bool = False) -> Any:
        return self._c.unary(f"{FS}/Copy", _m("envdts.v1.CopyRequest", source=source, destination=destination, force=force), message("envdts.v1.CopyResponse"))

    def chmod(self, path: str, mode: int, recursive: bool = False) -> Any:
        return self._c.unary(f"{FS}/Chmod", _m("envdts.v1.ChmodRequest", path=path, mode=mode, recursive=recursive), message("envdts.v1.ChmodResponse"))

    def chown(self, path: str, user: str = "", group: str = "", recursive: bool = False) -> Any:
        return self._c.unary(f"{FS}/Chown", _m("envdts.v1.ChownRequest", path=path, user=user, group=group, recursive=recursive), message("envdts.v1.ChownResponse"))

    def list_page(self, path: str, limit: int = 0, page_token: str = "", offset: int = 0) -> Any:
        return self._c.unary(f"{FS}/ListDirPage", _m("envdts.v1.ListDirPageRequest", path=path, limit=limit, page_token=page_token, offset=offset), message("envdts.v1.ListDirPageResponse"))

    def list(self, path: str, page_size: int = 0) -> Iterator[Any]:
        token = ""
        while True:
            page = self.list_page(path, limit=page_size, page_token=token)
            yield from page.entries
            token = page.next_page_token
            if not token:
                return


class Proxies:
    """envdts.v1.Proxy: managed proxies, listening ports, waiting for a port, exposing ports."""

    def __init__(self, c: SyncCaller) -> None:
        self._c = c

    def create(self, type: str, local: str, remote: str, id: str = "") -> Any:  # noqa: A002
        return self._c.unary(f"{PX}/CreateProxy", proxy_request(type, local, remote, id), message("envdts.v1.CreateProxyResponse")).proxy

    def delete(self, id: str) -> None:  # noqa: A002
        self._c.unary(f"{PX}/DeleteProxy", _m("envdts.v1.DeleteProxyRequest", id=id), message("envdts.v1.DeleteProxyResponse"))

    def list(self) -> List[Any]:
        return list(self._c.unary(f"{PX}/ListProxies", _m("envdts.v1.ListProxiesRequest"), message("envdts.v1.ListProxiesResponse")).proxies)

    def listening_ports(self, loopback_only: bool = False) -> List[Any]:
        return list(self._c.unary(f"{PX}/ListListeningPorts", _m("envdts.v1.ListListeningPortsRequest", loopback_only=loopback_only), message("envdts.v1.ListListeningPortsResponse")).ports)

    def wait_for_port(self, port: int, host: str = "", timeout_ms: int = 0) -> Any:
        return self._c.unary(f"{PX}/WaitForPort", _m("envdts.v1.WaitForPortRequest", port=port, host=host, timeout_ms=timeout_ms), message("envdts.v1.WaitForPortResponse"))


class System:
    """envdts.v1.System: health, system information, resource usage."""

    def __init__(self, c: SyncCaller) -> None:
        self._c = c

    def info(self) -> Any:
        return self._c.unary(f"{SY}/GetSystemInfo", _m("envdts.v1.GetSystemInfoRequest"), message("envdts.v1.GetSystemInfoResponse"))

    def usage(self) -> Any:
        return self._c.unary(f"{SY}/GetResourceUsage", _m("envdts.v1.GetResourceUsageRequest"), message("envdts.v1.GetResourceUsageResponse")).usage

    def watch_usage(self, interval_ms: int = 0) -> Iterator[Any]:
        """A ResourceUsage sample every interval until you stop iterating (then close() the generator)."""
        events = self._c.stream(f"{SY}/WatchResourceUsage", _m("envdts.v1.WatchResourceUsageRequest", interval_ms=interval_ms), message("envdts.v1.WatchResourceUsageResponse"))
        try:
            for ev in events:
                if ev.WhichOneof("event") == "sample":
                    yield ev.sample
        finally:
            events.close()


class AsyncProcesses:
    def __init__(self, c: AsyncCaller) -> None:
        self._c = c

    async def start(self, cmd: str, **options: Any) -> AsyncProcessStream:
        return await AsyncProcessStream.open(self._c.stream(f"{PC}/Start", _build(start_request, cmd, options), message(_EVENT)))

    async def run(self, cmd: str, **options: Any) -> RunResult:
        return await (await self.start(cmd, **options)).wait()

    async def attach(self, process: Selector, from_: Union[None, str, int] = None) -> AsyncProcessStream:
        return await AsyncProcessStream.open(self._c.stream(f"{PC}/Attach", _build_attach(process, from_), message(_EVENT)))

    async def get(self, process: Selector) -> Any:
        return (await self._c.unary(f"{PC}/GetProcess", _m("envdts.v1.GetProcessRequest", process=process_ref(process)), message("envdts.v1.GetProcessResponse"))).process

    async def list(self, filter: str = "all", tag: Optional[str] = None) -> List[Any]:  # noqa: A002
        return list((await self._c.unary(f"{PC}/ListProcesses", list_request(filter, tag), message("envdts.v1.ListProcessesResponse"))).processes)

    async def signal(self, process: Selector, signal: Union[str, int], target: str = "process", stop_restarts: bool = False) -> None:
        await self._c.unary(f"{PC}/Signal", signal_request(process, signal, target, stop_restarts), message("envdts.v1.SignalResponse"))


class AsyncSystem:
    def __init__(self, c: AsyncCaller) -> None:
        self._c = c

    async def info(self) -> Any:
        return await self._c.unary(f"{SY}/GetSystemInfo", _m("envdts.v1.GetSystemInfoRequest"), message("envdts.v1.GetSystemInfoResponse"))

    async def watch_usage(self, interval_ms: int = 0) -> AsyncIterator[Any]:
        events = self._c.stream(f"{SY}/WatchResourceUsage", _m("envdts.v1.WatchResourceUsageRequest", interval_ms=interval_ms), message("envdts.v1.WatchResourceUsageResponse"))
        try:
            async for ev in events:
                if ev.WhichOneof("event") == "sample":
                    yield ev.sample
        finally:
            await events.aclose()


def _build(fn: Any, cmd: str, options: Any) -> Any:
    try:
        return fn(cmd, **options)
    except (ValueError, TypeError) as err:
        raise EnvdError("invalid_argument", str(err), err) from err


def _build_attach(process: Selector, from_: Union[None, str, int]) -> Any:
    try:
        return attach_request(process, from_)
    except ValueError as err:
        raise EnvdError("invalid_argument", str(err), err) from err


class EnvdClient:
    """Everything envd-ts adds to E2B's envd, for one daemon and one user (blocking calls)."""

    def __init__(self, target: Target, http: Optional[httpx.Client] = None, timeout: Optional[float] = 60.0) -> None:
        self.target = target
        self._caller = SyncCaller(target, http, timeout)
        self.processes = Processes(self._caller)
        self.files = Files(self._caller)
        self.proxies = Proxies(self._caller)
        self.system = System(self._caller)

    def close(self) -> None:
        self._caller.http.close()

    def __enter__(self) -> "EnvdClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncEnvdClient:
    """The asyncio client: processes (start, run, attach, get, list, signal) and system (info, watch_usage)."""

    def __init__(self, target: Target, http: Optional[httpx.AsyncClient] = None, timeout: Optional[float] = 60.0) -> None:
        self.target = target
        self._caller = AsyncCaller(target, http, timeout)
        self.processes = AsyncProcesses(self._caller)
        self.system = AsyncSystem(self._caller)

    async def aclose(self) -> None:
        await self._caller.http.aclose()

    async def __aenter__(self) -> "AsyncEnvdClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
