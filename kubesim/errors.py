"""API errors as Kubernetes ``Status`` objects (reference section 4)."""

from __future__ import annotations

from typing import Any

_REASON_PHRASE = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    504: "Timeout",
}


class ApiError(Exception):
    """An error answered as a ``Status`` body with the HTTP code ``code``."""

    def __init__(self, code: int, message: str, reason: str | None = None,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASON_PHRASE.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(404, f'{qualified} "{name}" not found', "NotFound",
                    {"name": name, "group": group, "kind": resource})


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(409, f'{qualified} "{name}" already exists', "AlreadyExists",
                    {"name": name, "group": group, "kind": resource})


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "Conflict",
        {"name": name, "group": group, "kind": resource},
    )


def invalid(kind: str, name: str, causes: list[tuple[str, str]], group: str = "") -> ApiError:
    """422 Invalid; ``causes`` are (field, message) pairs, e.g. ("spec.replicas", "Invalid value: -1: ...")."""
    text = "; ".join(f"{field}: {msg}" for field, msg in causes)
    qualified = kind if not group else f"{kind}.{group}"
    return ApiError(
        422,
        f'{qualified} "{name}" is invalid: {text}',
        "Invalid",
        {"name": name, "group": group, "kind": kind,
         "causes": [{"reason": "FieldValueInvalid", "message": msg, "field": field} for field, msg in causes]},
    )


def expired(rv: int, oldest: int) -> ApiError:
    return ApiError(410, f"too old resource version: {rv} ({oldest})", "Expired")
