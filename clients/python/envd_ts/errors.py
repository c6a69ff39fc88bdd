from __future__ import annotations

from typing import Optional

_HTTP_TO_CODE = {400: "invalid_argument", 401: "unauthenticated", 403: "permission_denied", 404: "unimplemented", 408: "deadline_exceeded", 409: "aborted", 412: "failed_precondition", 413: "resource_exhausted", 415: "internal", 429: "unavailable", 431: "resource_exhausted", 502: "unavailable", 503: "unavailable", 504: "unavailable"}


class EnvdError(Exception):
    """The one error the client raises: the daemon's message with its Connect code.

    ``code`` is the Connect code by name ("not_found", "failed_precondition", "unauthenticated",
    ...); a connection failure is "unavailable", a timeout "deadline_exceeded".
    """

    def __init__(self, code: str, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(f"[{code}] {message}")
        self.code = code
        self.message = message
        self.__cause__ = cause

    @staticmethod
    def from_http(status: int, body: bytes) -> "EnvdError":
        """A Connect error body ({"code", "message"}), or the HTTP status when there is none."""
        import json

        try:
            data = json.loads(body)
            if isinstance(data, dict) and isinstance(data.get("code"), str):
                return EnvdError(data["code"], str(data.get("message", "")))
        except ValueError:
            pass
        return EnvdError(_HTTP_TO_CODE.get(status, "unknown"), f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
