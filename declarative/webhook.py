"""The admission webhooks: hold a Deployment before the native controller rolls; validate Rollouts.

A Deployment CREATE under a Rollout gets the ``rollouts.kruise.io/workload-type`` label in the same
write (``label_on_create``). An UPDATE of a Rollout's status that approves (``currentStepState:
StepReady``) gets the authenticated user of that very request (``request.userInfo.username``, set by
the apiserver, not by the client) in ``status.canaryStatus.approvedBy`` (``stamp_approver``, at
``APPROVE_PATH``); the controller records that name as the approver. Rollout CREATE/UPDATE is
checked with Kruise's rules and texts (``declarative/validation.py``) at ``VALIDATE_PATH``.
``CONVERT_PATH`` is the Rollout CRD's conversion webhook (v1alpha1 <-> v1beta1, ``kruise/v1alpha1.py``).

``hold`` is the pure decision (tested as a table); ``WebhookServer`` serves it over HTTPS
(AdmissionReview v1, JSONPatch answers). Rules, for an UPDATE of a Deployment that an enabled Rollout
references (Kruise's ``handleDeployment``, partition style):

- the rollout workflow hands the Deployment back (it marks it ``handing-back`` first): allowed as is;
- the Deployment is held already (a workflow owns it, or the webhook marked it): whatever the writer
  sent, it stays ``paused`` with strategy ``Recreate``; a ``rollingUpdate`` in the request is moved
  into the parked strategy, so ``kubectl apply`` of the original manifest cannot start a native roll;
- otherwise a pod-template change (ignoring ``pod-template-hash``) on a Deployment with replicas > 0
  is held in the same write: ``paused``, ``Recreate``, the user's strategy parked, the stable revision
  label (the ReplicaSet of the old template) and the in-progress annotation naming the Rollout.

The controller sees the held Deployment and starts the rollout workflow, which takes over from there.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from declarative.validation import aggregate, validate_create, validate_update
from kruise.rollout_object import in_progress_value
from kruise.v1alpha1 import convert_review
from kube.names import (
    ANN_IN_PROGRESS,
    HASH_LABEL,
    KRUISE_ANN_DEPLOYMENT_STRATEGY,
    KRUISE_ANN_IN_PROGRESS,
    KRUISE_LABEL_STABLE_REVISION,
)
from kube.objects import templates_equal
from workflows.model import (
    ANN_HANDING_BACK,
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
)

__all__ = [
    "APPROVED_BY",
    "APPROVE_PATH",
    "CONVERT_PATH",
    "PATH",
    "VALIDATE_PATH",
    "WebhookServer",
    "hold",
    "json_patch_for",
    "label_on_create",
    "stamp_approver",
]

Obj = dict[str, Any]
PATH = "/mutate-apps-v1-deployment"
VALIDATE_PATH = "/validate-rollouts-kruise-io-rollout"  # Kruise's path for the same checks
APPROVE_PATH = "/mutate-rollouts-kruise-io-rollout-status"
CONVERT_PATH = "/convert"  # Kruise's (controller-runtime's) path for the CRD conversion webhook
APPROVED_BY = "approvedBy"  # in status.canaryStatus: who approved, from the admission request
STEP_READY = "StepReady"


def _annotations(obj: Obj | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _park(new: Obj, parked: Obj | None) -> None:
    """Force paused + Recreate; a rollingUpdate the writer sent goes into the parked strategy."""
    spec = new.setdefault("spec", {})
    strategy = spec.get("strategy") or {}
    md = new.setdefault("metadata", {})
    annotations = md.setdefault("annotations", {})
    original = dict(parked or {"type": "RollingUpdate"})
    if strategy.get("type") not in (None, "Recreate") or strategy.get("rollingUpdate"):
        original = {
            "type": "RollingUpdate",
            **(
                {"rollingUpdate": strategy["rollingUpdate"]}
                if strategy.get("rollingUpdate")
                else {k: v for k, v in original.items() if k == "rollingUpdate"}
            ),
        }
    annotations[ANN_ORIGINAL_STRATEGY] = json.dumps(original, sort_keys=True)
    spec["paused"] = True
    spec["strategy"] = {"type": "Recreate"}


def hold(
    old: Obj, new: Obj, rollout: str | None, stable_hash: Callable[[Obj], str], trusted: bool = True
) -> Obj | None:
    """The Deployment as it must be stored, or None to let the request through unchanged.

    ``rollout`` names the enabled Rollout that references the Deployment (None: not ours).
    ``stable_hash(template)`` returns the pod-template-hash of the ReplicaSet running ``template``.
    ``trusted``: the writer is one of our ServiceAccounts (request.userInfo). Only they may say
    ``handing-back`` (anyone else's value is reverted) and only their writes pass while it is set.
    """
    if rollout is None:
        return None
    old_ann, new_ann = _annotations(old), _annotations(new)
    if old_ann.get(ANN_HANDING_BACK) and trusted:
        return None  # the workflow (or the controller) hands the Deployment back
    out = copy.deepcopy(new)
    if not trusted and new_ann.get(ANN_HANDING_BACK) != old_ann.get(ANN_HANDING_BACK):
        marks = out.setdefault("metadata", {}).setdefault("annotations", {})
        if ANN_HANDING_BACK in old_ann:
            marks[ANN_HANDING_BACK] = old_ann[ANN_HANDING_BACK]
        else:
            marks.pop(ANN_HANDING_BACK, None)
        new_ann = _annotations(out)
    held = (
        new_ann.get(ANN_WORKFLOW_ID)
        or old_ann.get(ANN_WORKFLOW_ID)
        or old_ann.get(ANN_IN_PROGRESS)
        or new_ann.get(ANN_IN_PROGRESS)
    )
    if held:
        parked_text = new_ann.get(ANN_ORIGINAL_STRATEGY) or old_ann.get(ANN_ORIGINAL_STRATEGY)
        parked = json.loads(parked_text) if parked_text else None
        # A writer may not drop our marks (kubectl replace / a GitOps overwrite of the whole object);
        # only the take-over swaps the webhook's in-progress mark for the workflow ID.
        restore = [
            ANN_WORKFLOW_ID,
            ANN_ORIGINAL_STRATEGY,
            KRUISE_ANN_IN_PROGRESS,
            KRUISE_ANN_DEPLOYMENT_STRATEGY,
        ]
        if not new_ann.get(ANN_WORKFLOW_ID):
            restore.append(ANN_IN_PROGRESS)
        for key in restore:
            if key in old_ann and key not in new_ann:
                out["metadata"].setdefault("annotations", {})[key] = old_ann[key]
        labels = (old.get("metadata") or {}).get("labels") or {}
        for key in (LABEL_STABLE_REVISION, KRUISE_LABEL_STABLE_REVISION):
            if key in labels:
                out["metadata"].setdefault("labels", {}).setdefault(key, labels[key])
        _park(out, parked)
        return None if out == new else out
    spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
    replicas = spec.get("replicas")
    if isinstance(replicas, int) and replicas <= 0:
        return None if out == new else out
    if templates_equal(old_spec.get("template") or {}, spec.get("template") or {}):
        return None if out == new else out
    md = out.setdefault("metadata", {})
    original = copy.deepcopy(spec.get("strategy") or {"type": "RollingUpdate"})
    if original.get("type") == "Recreate":
        original = {"type": "Recreate"}
    md.setdefault("annotations", {})[ANN_IN_PROGRESS] = in_progress_value(rollout)
    md["annotations"][ANN_ORIGINAL_STRATEGY] = json.dumps(original, sort_keys=True)
    stable = stable_hash(old_spec.get("template") or {})
    md.setdefault("labels", {})[LABEL_STABLE_REVISION] = stable
    # Kruise's own marks of a held partition-style Deployment, for the tools that read them.
    md["labels"][KRUISE_LABEL_STABLE_REVISION] = stable
    md["annotations"][KRUISE_ANN_IN_PROGRESS] = in_progress_value(rollout)
    md["annotations"][KRUISE_ANN_DEPLOYMENT_STRATEGY] = json.dumps(
        {
            "rollingStyle": "Partition",
            "rollingUpdate": original.get("rollingUpdate") or {},
            "paused": False,
            "partition": 0,
        },
        separators=(",", ":"),
    )
    out["spec"]["paused"] = True
    out["spec"]["strategy"] = {"type": "Recreate"}
    return out


def json_patch_for(new: Obj, out: Obj) -> list[Obj]:
    """JSONPatch ops turning ``new`` into ``out`` (whole metadata maps and spec: simple and exact)."""
    ops: list[Obj] = []
    md_new, md_out = new.get("metadata") or {}, out.get("metadata") or {}
    for key in ("annotations", "labels"):
        if md_new.get(key) != md_out.get(key):
            ops.append({"op": "add", "path": f"/metadata/{key}", "value": md_out.get(key) or {}})
    if new.get("spec") != out.get("spec"):
        ops.append({"op": "add", "path": "/spec", "value": out.get("spec")})
    return ops


def review_response(review: Obj, patched: Obj | None, new: Obj) -> Obj:
    request = review.get("request") or {}
    response: Obj = {"uid": request.get("uid", ""), "allowed": True}
    if patched is not None:
        ops = json_patch_for(new, patched)
        if ops:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# Resolves (namespace, deployment) -> (enabled Rollout name or None, stable_hash function); blocking I/O.
Resolver = Callable[[Obj], tuple[str | None, Callable[[Obj], str]]]


def label_on_create(new: Obj, rollout: str | None) -> Obj | None:
    """A Deployment created under a Rollout is labelled in the same write, so the hold above applies
    from its first update (no window until the controller's next pass)."""
    labels = (new.get("metadata") or {}).get("labels") or {}
    if rollout is None or LABEL_WORKLOAD_TYPE in labels:
        return None
    out = copy.deepcopy(new)
    out.setdefault("metadata", {}).setdefault("labels", {})[LABEL_WORKLOAD_TYPE] = "deployment"
    return out


def stamp_approver(old: Obj | None, new: Obj, user: str) -> Obj | None:
    """The status write with ``canaryStatus.approvedBy`` as the apiserver authenticated it, or None.

    A write that makes the step ``StepReady`` (it was not, or was for another step) is stamped with
    ``user``; one that keeps it keeps the stamp it had; any other write carries none. Whatever the
    writer put there is replaced, so nobody can name someone else as the approver.
    """
    canary = dict((new.get("status") or {}).get("canaryStatus") or {})
    old_canary = ((old or {}).get("status") or {}).get("canaryStatus") or {}
    if not canary:
        return None
    if canary.get("currentStepState") == STEP_READY:
        same_step = old_canary.get("currentStepState") == STEP_READY and old_canary.get(
            "currentStepIndex"
        ) == canary.get("currentStepIndex")
        stamp = old_canary.get(APPROVED_BY) if same_step else user
    else:
        stamp = None
    if canary.get(APPROVED_BY) == stamp:
        return None
    if stamp:
        canary[APPROVED_BY] = stamp
    else:
        canary.pop(APPROVED_BY, None)
    return {**new, "status": {**(new.get("status") or {}), "canaryStatus": canary}}


def status_patch_response(review: Obj, patched: Obj | None) -> Obj:
    response: Obj = {"uid": (review.get("request") or {}).get("uid", ""), "allowed": True}
    if patched is not None:
        ops = [{"op": "add", "path": "/status/canaryStatus", "value": patched["status"]["canaryStatus"]}]
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


def validation_response(review: Obj, errors: list[str]) -> Obj:
    """Kruise's answer: allowed, or refused with code 422 and the aggregate of the field errors."""
    response: Obj = {"uid": (review.get("request") or {}).get("uid", ""), "allowed": not errors}
    if errors:
        response["status"] = {"code": 422, "message": aggregate(errors)}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


# Lists the Rollouts of a namespace; blocking I/O.
Lister = Callable[[str], list[Obj]]


class WebhookServer:
    """HTTPS server for the webhooks; ``resolve`` and ``list_rollouts`` read the cluster (in a thread)."""

    def __init__(
        self,
        resolve: Resolver,
        ssl_context: ssl.SSLContext,
        host: str = "127.0.0.1",
        port: int = 0,
        list_rollouts: Lister | None = None,
        trusted_users: frozenset[str] | None = None,
        reuse_port: bool = False,
    ) -> None:
        self.resolve = resolve
        self.list_rollouts = list_rollouts
        self.trusted_users = trusted_users  # None: every writer (local stacks without authentication)
        self.ssl_context = ssl_context
        self.reuse_port = reuse_port
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        new, old = req.get("object") or {}, req.get("oldObject")
        patched: Obj | None = None
        if req.get("operation") == "UPDATE" and old and not req.get("subResource"):
            rollout, stable_hash = await asyncio.to_thread(self.resolve, new)
            user = str((req.get("userInfo") or {}).get("username") or "")
            trusted = self.trusted_users is None or user in self.trusted_users
            patched = hold(old, new, rollout, stable_hash, trusted)
        elif req.get("operation") == "CREATE":
            new.setdefault("metadata", {}).setdefault("namespace", req.get("namespace", ""))
            rollout, _ = await asyncio.to_thread(self.resolve, new)
            patched = label_on_create(new, rollout)
        return web.json_response(review_response(review, patched, new))

    async def _approve(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        patched = None
        if req.get("operation") == "UPDATE" and req.get("subResource") == "status":
            user = str((req.get("userInfo") or {}).get("username") or "")
            patched = stamp_approver(req.get("oldObject"), req.get("object") or {}, user)
        return web.json_response(status_patch_response(review, patched))

    async def _validate(self, request: web.Request) -> web.Response:
        review = await request.json()
        req = review.get("request") or {}
        new, old = req.get("object") or {}, req.get("oldObject")
        errors: list[str] = []
        # A Rollout being deleted may only lose its finalizers: never keep it from going.
        deleting = bool((new.get("metadata") or {}).get("deletionTimestamp"))
        if self.list_rollouts is not None and not deleting and req.get("operation") in ("CREATE", "UPDATE"):
            others = await asyncio.to_thread(self.list_rollouts, req.get("namespace", ""))
            if req.get("operation") == "UPDATE" and old:
                errors = validate_update(old, new, others)
            else:
                errors = validate_create(new, others)
        return web.json_response(validation_response(review, errors))

    async def _convert(self, request: web.Request) -> web.Response:
        try:
            review = await request.json()
        except ValueError:
            return web.Response(status=400, text="the body is not a ConversionReview")
        return web.json_response(convert_review(review if isinstance(review, dict) else {}))

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def start(self) -> int:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        app.router.add_post(VALIDATE_PATH, self._validate)
        app.router.add_post(APPROVE_PATH, self._approve)
        app.router.add_post(CONVERT_PATH, self._convert)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.host,
            self.port,
            ssl_context=self.ssl_context,
            reuse_port=self.reuse_port or None,
        )
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


def stable_hash_from(replica_sets: list[Obj]) -> Callable[[Obj], str]:
    """``stable_hash`` over the Deployment's ReplicaSets: the hash of the one running a template."""

    def find(template: Obj) -> str:
        for rs in replica_sets:
            if templates_equal((rs.get("spec") or {}).get("template") or {}, template):
                return str(((rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL, ""))
        return ""

    return find
