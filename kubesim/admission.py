"""Admission webhooks: kubesim calls them as the apiserver does (AdmissionReview v1 over HTTPS).

Mutating first, then validating (``validate``: every matching webhook of the
ValidatingWebhookConfigurations sees the final object; any denial refuses the request, a patch in a
validating answer is ignored).

For every create/update/delete the matching webhooks of all MutatingWebhookConfigurations (sorted by
configuration name, webhooks in order) are called with the object as it would be stored. A webhook
matches by rules (operations, apiGroups, apiVersions, resources incl. ``sub/resource``, scope),
namespaceSelector and objectSelector (old or new object). The answer may deny the request or carry a
JSONPatch. When a webhook cannot be called (refused, TLS failure, timeout, bad answer) its
failurePolicy decides: ``Fail`` (the v1 default) refuses the request with 500 InternalError, ``Ignore``
skips the webhook. Only ``clientConfig.url`` is callable here: kubesim has no Service network, so a
``clientConfig.service`` webhook counts as unreachable.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import uuid
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from kubesim import errors, patch
from kubesim.resources import ResourceType
from kubesim.selectors import matches_label_selector

Obj = dict[str, Any]
MWC_KEY = "mutatingwebhookconfigurations.admissionregistration.k8s.io"
VWC_KEY = "validatingwebhookconfigurations.admissionregistration.k8s.io"
DEFAULT_TIMEOUT_S = 10
_OPTIONS = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions"}


@dataclass(frozen=True)
class Attributes:
    """One request as the webhooks see it (the apiserver's admission.Attributes)."""

    rt: ResourceType
    subresource: str
    operation: str
    namespace: str
    name: str
    obj: Obj | None
    old: Obj | None
    user: str
    dry_run: bool = False


def _rule_matches(rule: Obj, rt: ResourceType, subresource: str, operation: str) -> bool:
    ops = rule.get("operations") or []
    if "*" not in ops and operation not in ops:
        return False
    if not _in(rule.get("apiGroups"), rt.group) or not _in(rule.get("apiVersions"), rt.version):
        return False
    wanted = f"{rt.plural}/{subresource}" if subresource else rt.plural
    names = rule.get("resources") or []
    ok = any(
        n in ("*/*", wanted)
        or (n == "*" and not subresource)
        or (n == f"{rt.plural}/*" and subresource)
        or (n == f"*/{subresource}" and subresource)
        for n in names
    )
    scope = rule.get("scope") or "*"
    if scope == "Namespaced" and not rt.namespaced or scope == "Cluster" and rt.namespaced:
        return False
    return ok


def _in(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in (values or []) or value in (values or []))


def _selected(selector: Obj | None, labels: dict[str, str] | None) -> bool:
    return True if selector is None else matches_label_selector(selector, labels)


def matching_webhooks(store: Any, attrs: Attributes, kind_key: str = MWC_KEY) -> list[Obj]:
    """The webhooks to call, in the apiserver's order (``kind_key``: mutating or validating ones)."""
    rt, subresource, operation, namespace = attrs.rt, attrs.subresource, attrs.operation, attrs.namespace
    obj, old = attrs.obj, attrs.old
    out: list[Obj] = []
    ns_labels: dict[str, str] | None = None
    if rt.namespaced and namespace:
        ns_obj = store.peek("namespaces", "", namespace) or {}
        ns_labels = (ns_obj.get("metadata") or {}).get("labels") or {}
    for config in store.list(kind_key):
        for hook in config.get("webhooks") or []:
            if not any(_rule_matches(r, rt, subresource, operation) for r in hook.get("rules") or []):
                continue
            if (
                rt.namespaced
                and ns_labels is not None
                and not _selected(hook.get("namespaceSelector"), ns_labels)
            ):
                continue
            sel = hook.get("objectSelector")
            if sel is not None and sel != {}:
                labels_new = ((obj or {}).get("metadata") or {}).get("labels") or {}
                labels_old = ((old or {}).get("metadata") or {}).get("labels") or {}
                old_matches = old is not None and matches_label_selector(sel, labels_old)
                if not (matches_label_selector(sel, labels_new) or old_matches):
                    continue
            out.append(hook)
    return out


def ssl_context(client_config: Obj) -> ssl.SSLContext:
    bundle = client_config.get("caBundle")
    if bundle:
        return ssl.create_default_context(cadata=base64.b64decode(bundle).decode())
    return ssl.create_default_context()


def _review(attrs: Attributes) -> Obj:
    rt, subresource, operation = attrs.rt, attrs.subresource, attrs.operation
    gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
    gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
    request: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": attrs.name,
        "namespace": attrs.namespace,
        "operation": operation,
        "userInfo": {"username": attrs.user, "groups": ["system:authenticated"]},
        "object": attrs.obj,
        "oldObject": attrs.old,
        "dryRun": attrs.dry_run,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": _OPTIONS.get(operation, "DeleteOptions")},
    }
    if subresource:
        request["subResource"] = subresource
        request["requestSubResource"] = subresource
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


async def _call(hook: Obj, review: Obj) -> Obj:
    config = hook.get("clientConfig") or {}
    url = config.get("url")
    if not url:
        svc = config.get("service") or {}
        raise ConnectionError(
            f'service "{svc.get("name")}.{svc.get("namespace")}" is not reachable from '
            "kubesim (use clientConfig.url)"
        )
    timeout = float(hook.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(url, json=review, ssl=ssl_context(config)) as resp:
            if resp.status != 200:
                raise ConnectionError(f"expected response code 200, got {resp.status}")
            body = await resp.json(content_type=None)
    response = (body or {}).get("response")
    if not isinstance(response, dict) or response.get("uid") != review["request"]["uid"]:
        raise ValueError("expected response.uid to match the request uid")
    return response


async def mutate(store: Any, attrs: Attributes) -> Obj | None:
    """Run the mutating webhooks; returns the (possibly patched) object or raises ``ApiError``."""
    for hook in matching_webhooks(store, attrs):
        response = await _answer(hook, attrs)  # the next webhook sees this one's patch
        obj = attrs.obj
        if response is None:
            continue
        hook_name = hook.get("name", "")
        if response.get("patch") and obj is not None:
            if response.get("patchType") != "JSONPatch":
                raise errors.ApiError(
                    500,
                    f'Internal error occurred: webhook "{hook_name}": unsupported '
                    f"patchType {response.get('patchType')!r}",
                    "InternalError",
                )
            try:
                ops = json.loads(base64.b64decode(response["patch"]))
                attrs = replace(attrs, obj=patch.json_patch(obj, ops))
            except (ValueError, patch.PatchError) as exc:
                raise errors.ApiError(
                    500,
                    f'Internal error occurred: webhook "{hook_name}" returned an invalid patch: {exc}',
                    "InternalError",
                ) from None
    return attrs.obj


async def validate(store: Any, attrs: Attributes) -> None:
    """Run the validating webhooks on the final object; raises ``ApiError`` on a denial."""
    for hook in matching_webhooks(store, attrs, VWC_KEY):
        await _answer(hook, attrs)


async def _answer(hook: Obj, attrs: Attributes) -> Obj | None:
    """One webhook's allowing answer; None when it could not be called and its failurePolicy is Ignore."""
    hook_name = hook.get("name", "")
    review = _review(attrs)
    try:
        response = await _call(hook, review)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, ssl.SSLError) as exc:
        if (hook.get("failurePolicy") or "Fail") == "Ignore":
            return None
        timed_out = isinstance(exc, asyncio.TimeoutError)
        what = "context deadline exceeded" if timed_out else str(exc) or repr(exc)
        raise errors.ApiError(
            500,
            f'Internal error occurred: failed calling webhook "{hook_name}": failed to call webhook: {what}',
            "InternalError",
        ) from None
    if not response.get("allowed"):
        result = response.get("status") or {}  # AdmissionResponse.result is "status" on the wire
        code = int(result.get("code") or 400)
        reason = str(result.get("reason") or "")
        why = result.get("message") or reason
        denied = errors.ApiError(
            max(code, 400),
            f'admission webhook "{hook_name}" denied the request'
            + (f": {why}" if why else " without explanation"),
        )
        denied.reason = reason  # the apiserver passes the webhook's (often none)
        raise denied
    return response
