"""CRD version conversion, as the apiserver does it: custom resources are stored in the CRD's storage
version; a write in another served version is converted to it before admission and storage, and what a
client reads (get, list, watch, the object a write or delete answers with) is converted to the version
it addressed.

``spec.conversion.strategy: None`` only changes ``apiVersion``. ``Webhook`` sends a ConversionReview
(``conversionReviewVersions`` must list ``v1``) to ``clientConfig.url`` over HTTPS trusting
``caBundle``; as in kubesim's admission webhooks a ``clientConfig.service`` is unreachable (no Service
network). The answer must be ``Success`` with one object per object sent, each in the desired version;
only its labels, annotations, spec and status are taken (the rest of ``metadata`` stays the stored
object's, as the apiserver restores it). Any failure is a 500 ``conversion webhook for ... failed``.
"""

from __future__ import annotations

import copy
import ssl
import uuid
from typing import Any

import aiohttp

from kubesim import crd, errors
from kubesim.admission import ssl_context
from kubesim.resources import BY_GVR, ResourceType

Obj = dict[str, Any]
TIMEOUT_S = 30  # the apiserver's default for conversion webhooks


def storage_rt(rt: ResourceType) -> ResourceType:
    """The ResourceType of the storage version of ``rt``'s CRD (``rt`` for every other resource)."""
    cv = crd.version_of(rt)
    if cv is None or not cv.storage or cv.storage == rt.version:
        return rt
    return BY_GVR.get((rt.group, cv.storage, rt.plural), rt)


def _needs(rt: ResourceType, objs: list[Obj]) -> list[int]:
    if crd.version_of(rt) is None:
        return []
    return [i for i, o in enumerate(objs) if o.get("apiVersion") not in (None, rt.group_version)]


async def to_version(rt: ResourceType, objs: list[Obj]) -> list[Obj]:
    """``objs`` in ``rt``'s version (the same list when nothing needs converting)."""
    todo = _needs(rt, objs)
    if not todo:
        return objs
    cv = crd.version_of(rt)
    assert cv is not None
    out = list(objs)
    sources = [objs[i] for i in todo]
    if (cv.conversion.get("strategy") or "None") != "Webhook":
        converted = [{**copy.deepcopy(o), "apiVersion": rt.group_version} for o in sources]
    else:
        converted = await _call_webhook(rt, cv.conversion.get("webhook") or {}, sources)
    for i, obj in zip(todo, converted, strict=True):
        out[i] = obj
    return out


async def to_storage(rt: ResourceType, obj: Obj) -> tuple[ResourceType, Obj]:
    """A request body (in ``rt``'s version) as the storage version, and that version's ResourceType."""
    target = storage_rt(rt)
    if target is rt:
        return rt, obj
    return target, (await to_version(target, [obj]))[0]


def _failed(rt: ResourceType, source: str, why: str) -> errors.ApiError:
    gvk = f"{source}, Kind={rt.kind}"
    return errors.ApiError(
        500, f"Internal error occurred: conversion webhook for {gvk} failed: {why}", "InternalError"
    )


async def _call_webhook(rt: ResourceType, webhook: Obj, objs: list[Obj]) -> list[Obj]:
    source = str(objs[0].get("apiVersion") or "")
    if "v1" not in (webhook.get("conversionReviewVersions") or []):
        raise _failed(rt, source, "no supported conversionReviewVersions (kubesim speaks v1)")
    config = webhook.get("clientConfig") or {}
    url = config.get("url")
    if not url:
        svc = config.get("service") or {}
        where = f"{svc.get('name')}.{svc.get('namespace')}"
        raise _failed(rt, source, f'service "{where}" is not reachable from kubesim (use clientConfig.url)')
    uid = str(uuid.uuid4())
    review = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": rt.group_version, "objects": objs},
    }
    try:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.post(url, json=review, ssl=ssl_context(config)) as resp:
                if resp.status != 200:
                    raise ValueError(f"expected response code 200, got {resp.status}")
                body = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, ssl.SSLError) as exc:
        raise _failed(rt, source, f'Post "{url}": {exc or type(exc).__name__}') from None
    response = (body or {}).get("response") if isinstance(body, dict) else None
    if not isinstance(response, dict) or response.get("uid") != uid:
        raise _failed(rt, source, "expected response.uid to match the request uid")
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise _failed(rt, source, str(result.get("message") or "conversion webhook answered Failure"))
    converted = response.get("convertedObjects")
    if not isinstance(converted, list) or len(converted) != len(objs):
        raise _failed(rt, source, f"expected {len(objs)} converted objects, got {len(converted or [])}")
    return [_restore_metadata(rt, source, old, new) for old, new in zip(objs, converted, strict=True)]


def _restore_metadata(rt: ResourceType, source: str, old: Obj, new: Any) -> Obj:
    if not isinstance(new, dict) or new.get("apiVersion") != rt.group_version or new.get("kind") != rt.kind:
        raise _failed(rt, source, f"converted object is not a {rt.group_version} {rt.kind}")
    meta = copy.deepcopy(old.get("metadata") or {})
    new_meta = new.get("metadata") or {}
    for key in ("labels", "annotations"):
        meta.pop(key, None)
        if new_meta.get(key):
            meta[key] = new_meta[key]
    return {**new, "metadata": meta}
