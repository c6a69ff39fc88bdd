"""Client of the envd-ts extension services, next to the e2b SDK.

    from e2b import Sandbox
    from envd_ts import connect

    envd = connect(Sandbox(), user="user")
    r = envd.processes.run("python3", args=["job.py"], limits={"memory": "256M"})
    print(r.outcome, r.exit.exit_code, r.stdout)
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ._connect import Target
from ._proto import message
from ._requests import RunResult, outcome, parse_bytes, parse_ms, state
from .client import AsyncEnvdClient, AsyncProcessStream, EnvdClient, ProcessStream
from .errors import EnvdError

__all__ = ["connect", "connect_async", "target_of", "EnvdClient", "AsyncEnvdClient", "ProcessStream", "AsyncProcessStream", "EnvdError", "RunResult", "Target", "message", "outcome", "state", "parse_bytes", "parse_ms"]


def target_of(sandbox_or_url: Any, access_token: Optional[str] = None, user: Optional[str] = None, headers: Optional[Dict[str, str]] = None) -> Target:
    """A Target from a URL, or from an e2b Sandbox (sync or async): the envd URL, access token and
    routing headers the SDK's own envd clients use (envd_api_url, _envd_access_token, sandbox_id,
    envd_port, connection_config.headers)."""
    if isinstance(sandbox_or_url, str):
        return Target(sandbox_or_url, access_token, user, headers)
    sb = sandbox_or_url
    url = getattr(sb, "envd_api_url", None) or getattr(sb, "_envd_api_url", None)
    if not url:
        raise TypeError("connect(): not a URL and not an e2b Sandbox (no envd_api_url)")
    token = access_token or getattr(sb, "_envd_access_token", None) or getattr(sb, "_envd_access_token_value", None)
    port = getattr(sb, "envd_port", None) or 49983
    h: Dict[str, str] = {}
    config_headers = getattr(getattr(sb, "connection_config", None), "headers", None)
    if isinstance(config_headers, dict):
        h.update({str(k): str(v) for k, v in config_headers.items()})
    sandbox_id = getattr(sb, "sandbox_id", None)
    if sandbox_id:
        h["E2b-Sandbox-Id"] = str(sandbox_id)
        h["E2b-Sandbox-Port"] = str(port)
    h.update(headers or {})
    return Target(str(url), token, user, h)


def connect(sandbox_or_url: Any, access_token: Optional[str] = None, user: Optional[str] = None, timeout: Optional[float] = 60.0) -> EnvdClient:
    """A blocking client for a sandbox's daemon or a URL. ``user``: the sandbox user calls act as
    (default: the daemon's default user). ``timeout``: seconds per unary call (streams have none)."""
    return EnvdClient(target_of(sandbox_or_url, access_token, user), timeout=timeout)


def connect_async(sandbox_or_url: Any, access_token: Optional[str] = None, user: Optional[str] = None, timeout: Optional[float] = 60.0) -> AsyncEnvdClient:
    """The asyncio counterpart of connect()."""
    return AsyncEnvdClient(target_of(sandbox_or_url, access_token, user), timeout=timeout)
