"""Request messages and result shapes shared by the sync and async clients."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

from ._proto import enum_name, enum_value, message

PC = "envdts.v1.ProcessControl"
FS = "envdts.v1.FilesystemExt"
PX = "envdts.v1.Proxy"
SY = "envdts.v1.System"

#: A process by tag (a str), or {"id": n}, {"pid": n}, {"tag": s}.
Selector = Union[str, Mapping[str, Any]]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$", re.I)


def parse_bytes(v: Union[int, str]) -> int:
    """256 * 2**20, "256M", "1.5G" -> bytes."""
    if isinstance(v, int):
        return v
    m = _SIZE.match(v)
    if not m:
        raise ValueError(f"'{v}' is not a size (bytes, or a number with K, M, G or T)")
    return round(float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()))


def parse_ms(v: Union[int, float, str]) -> int:
    """1500, "1.5s", "2m" -> milliseconds."""
    if isinstance(v, (int, float)):
        return round(v)
    m = _DURATION.match(v)
    if not m:
        raise ValueError(f"'{v}' is not a duration (a number with ms, s, m or h)")
    return round(float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}[(m.group(2) or "ms").lower()])


def process_ref(sel: Selector) -> Any:
    ref = message("envdts.v1.ProcessRef")()
    if isinstance(sel, str):
        ref.tag = sel
    elif "id" in sel:
        ref.id = int(sel["id"])
    elif "pid" in sel:
        ref.pid = int(sel["pid"])
    elif "tag" in sel:
        ref.tag = str(sel["tag"])
    else:
        raise ValueError("a process is selected by tag, id or pid")
    return ref


_RESTART = {"never": "MODE_NEVER", "on-failure": "MODE_ON_FAILURE", "on_failure": "MODE_ON_FAILURE", "always": "MODE_ALWAYS"}


def start_request(
    cmd: str,
    args: Optional[List[str]] = None,
    envs: Optional[Dict[str, str]] = None,
    cwd: Optional[str] = None,
    tag: Optional[str] = None,
    stdin: bool = False,
    limits: Optional[Mapping[str, Any]] = None,
    restart: Union[None, str, Mapping[str, Any]] = None,
    timeout: Union[None, int, str] = None,
    run_as: Optional[Mapping[str, Any]] = None,
    merge_stderr: bool = False,
) -> Any:
    """limits: memory ("256M"), cpu_time ("10s"), cpu_cores, pids, nofile. restart: a mode or
    {"mode", "backoff_ms", "max_backoff_ms", "max_restarts"}."""
    req = message("envdts.v1.StartProcessRequest")()
    req.process.cmd = cmd
    req.process.args.extend(args or [])
    req.process.envs.update(envs or {})
    if cwd is not None:
        req.process.cwd = cwd
    if tag is not None:
        req.tag = tag
    req.stdin = stdin
    if merge_stderr:
        req.output.merge_stderr = True
    if limits:
        unknown = set(limits) - {"memory", "cpu_time", "cpu_cores", "pids", "nofile"}
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
        if "memory" in limits:
            req.limits.memory_max_bytes = parse_bytes(limits["memory"])
        if "cpu_time" in limits:
            req.limits.cpu_time_ms = parse_ms(limits["cpu_time"])
        if "cpu_cores" in limits:
            req.limits.cpu_cores = float(limits["cpu_cores"])
        if "pids" in limits:
            req.limits.pids_max = int(limits["pids"])
        if "nofile" in limits:
            req.limits.nofile = int(limits["nofile"])
    if restart is not None:
        policy = {"mode": restart} if isinstance(restart, str) else dict(restart)
        mode = _RESTART.get(str(policy.get("mode", "never")))
        if mode is None:
            raise ValueError(f"restart mode '{policy.get('mode')}' is not never, on-failure or always")
        req.restart.mode = enum_value("envdts.v1.RestartPolicy.Mode", mode)
        req.restart.backoff_ms = int(policy.get("backoff_ms", 0))
        req.restart.max_backoff_ms = int(policy.get("max_backoff_ms", 0))
        req.restart.max_restarts = int(policy.get("max_restarts", 0))
    if timeout is not None:
        req.timeout_ms = parse_ms(timeout)
    if run_as:
        if "user" in run_as:
            req.run_as.user = run_as["user"]
        if "group" in run_as:
            req.run_as.group = run_as["group"]
    return req


def attach_request(sel: Selector, from_: Union[None, str, int]) -> Any:
    req = message("envdts.v1.AttachRequest")(process=process_ref(sel))
    if from_ == "oldest":
        req.oldest = True
    elif isinstance(from_, int):
        req.offset = from_
    elif from_ is not None:
        raise ValueError("from_ is 'oldest', an offset, or None (live only)")
    return req


def list_request(filter: str, tag: Optional[str]) -> Any:  # noqa: A002 - the proto's name
    names = {"all": "FILTER_ALL", "running": "FILTER_RUNNING", "finished": "FILTER_FINISHED"}
    if filter not in names:
        raise ValueError("filter is all, running or finished")
    req = message("envdts.v1.ListProcessesRequest")(filter=enum_value("envdts.v1.ListProcessesRequest.Filter", names[filter]))
    if tag is not None:
        req.tag = tag
    return req


def signal_request(sel: Selector, signal: Union[str, int], target: str, stop_restarts: bool) -> Any:
    targets = {"process": "TARGET_PROCESS", "group": "TARGET_GROUP", "tree": "TARGET_TREE"}
    req = message("envdts.v1.SignalRequest")(process=process_ref(sel), target=enum_value("envdts.v1.SignalRequest.Target", targets[target]), stop_restarts=stop_restarts)
    if isinstance(signal, int):
        req.number = signal
    else:
        req.name = signal
    return req


def proxy_request(type: str, local: str, remote: str, id: str = "") -> Any:  # noqa: A002
    req = message("envdts.v1.CreateProxyRequest")()
    req.config.id = id
    req.config.type = enum_value("envdts.v1.ProxyType", f"PROXY_TYPE_{type.upper()}")
    req.config.local_address = local
    req.config.remote_address = remote
    return req


def outcome(exit_msg: Any) -> str:
    """How a run ended, by name: "exited", "signaled", "timed_out", "failed_to_start", "oom_killed", "cpu_limit"."""
    return enum_name("envdts.v1.ExitOutcome", exit_msg.outcome, "EXIT_OUTCOME_")


def state(info: Any) -> str:
    """A ProcessInfo's state: "starting", "running", "stopped", "error"."""
    return enum_name("envdts.v1.ProcessState", info.state, "PROCESS_STATE_")


@dataclass
class RunResult:
    """The final exit of a process stream and the output it carried."""

    exit: Any
    exits: List[Any]
    stdout: str
    stderr: str
    output: bytes
    outcome: str = field(init=False)

    def __post_init__(self) -> None:
        self.outcome = outcome(self.exit)


class Collector:
    """Accumulates a stream's events into a RunResult."""

    def __init__(self) -> None:
        self.chunks: Dict[int, List[bytes]] = {}
        self.all: List[bytes] = []
        self.exits: List[Any] = []
        self.final: Optional[Any] = None
        self.attached_finished: Optional[Any] = None

    def add(self, ev: Any) -> None:
        kind = ev.WhichOneof("event")
        if kind == "output":
            self.chunks.setdefault(ev.output.stream, []).append(ev.output.data)
            self.all.append(ev.output.data)
        elif kind == "exited":
            self.exits.append(ev.exited.exit)
            if ev.exited.final:
                self.final = ev.exited.exit
        elif kind == "attached":
            p = ev.attached.process
            if state(p) in ("stopped", "error") and p.HasField("exit"):
                self.attached_finished = p.exit

    def result(self) -> RunResult:
        from .errors import EnvdError

        final = self.final or self.attached_finished
        if final is None:
            raise EnvdError("unavailable", "the stream ended before the process's final exit")
        text = lambda n: b"".join(self.chunks.get(n, [])).decode("utf-8", "replace")  # noqa: E731
        return RunResult(exit=final, exits=self.exits or [final], stdout=text(1), stderr=text(2), output=b"".join(self.all))
