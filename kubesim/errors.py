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

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
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
        if not self.reason:  # omitempty, as the apiserver (a webhook denial without a reason)
            del body["reason"]
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    """``details`` of a Status; ``group`` is omitted for the core group."""
    out: dict[str, Any] = {"name": name, "group": group, "kind": kind}
    if not group:
        del out["group"]
    return out


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(404, f'{qualified} "{name}" not found', "NotFound", _details(name, group, resource))


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(
        409, f'{qualified} "{name}" already exists', "AlreadyExists", _details(name, group, resource)
    )


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    qualified = resource if not group else f"{resource}.{group}"
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        "Conflict",
        _details(name, group, resource),
    )


def invalid(
    kind: str, name: str, causes: list[tuple[str, str]] | list[tuple[str, str, str]], group: str = ""
) -> ApiError:
    """422 Invalid; ``causes`` are (field, message[, reason]) tuples, e.g.
    ("spec.replicas", "Invalid value: -1: must be greater than or equal to 0"). The reason defaults to
    FieldValueInvalid; several causes are joined as ``[a, b]`` like the apiserver's aggregate error."""
    texts = [f"{c[0]}: {c[1]}" if c[0] else c[1] for c in causes]
    text = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    qualified = kind if not group else f"{kind}.{group}"
    details: dict[str, Any] = {
        "name": name,
        "group": group,
        "kind": kind,
        "causes": [
            {"reason": c[2] if len(c) > 2 else "FieldValueInvalid", "message": c[1], "field": c[0]}  # type: ignore[misc]
            for c in causes
        ],
    }
    if not group:
        details.pop("group")
    return ApiError(422, f'{qualified} "{name}" is invalid: {text}', "Invalid", details)


def expired(rv: int, oldest: int) -> ApiError:
    return ApiError(410, f"too old resource version: {rv} ({oldest})", "Expired")
