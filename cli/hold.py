"""The caller's own write: the new pod template goes into the Deployment with the CLI user's kubeconfig.

``rollout start`` writes the template and the hold (paused, Recreate, the strategy parked) in one
write, so Kubernetes RBAC, Pod Security Admission and admission policies judge the caller, exactly
as for ``kubectl apply``; the workflow then gets only a reference to that write (the template hash and
generation). ``--replace`` writes its template the same way. A refused write is one line and nothing
starts; a start that fails after the write puts the Deployment back as it was.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from cli.context import CommandError, RolloutContext, read_with_retry
from kube.names import ANN_WORKFLOW_ID
from kube.objects import template_hash, templates_equal
from workflows.checks import held_for_rollout

__all__ = ["api_refusal", "put_back", "write_hold", "write_template"]

Obj = dict[str, Any]


def api_refusal(exc: ApiException, target: str) -> CommandError:
    """The API server's refusal of the caller's write as one line (its own message when it sent one)."""
    message = ""
    try:
        message = str(json.loads(exc.body or "{}").get("message") or "")
    except (ValueError, AttributeError):
        message = ""
    message = " ".join((message or str(exc.reason or "")).split())
    if exc.status == 409:
        return CommandError(f"deployment {target} changed while the rollout was being started; try again")
    return CommandError(f"Kubernetes refused to update deployment {target} ({exc.status}): {message}")


async def _put(ctx: RolloutContext, dep: Obj) -> Obj:
    md = dep["metadata"]
    try:
        written: Obj = await read_with_retry(ctx.kube.put_deployment, dep)
    except ApiException as exc:
        raise api_refusal(exc, f"{md['namespace']}/{md['name']}") from exc
    return written


async def write_hold(
    ctx: RolloutContext, dep: Obj, template: Obj, workflow_id: str, stable_revision: str
) -> Obj:
    """Write the new template, held for ``workflow_id``, with the caller's credentials (one PUT,
    ``resourceVersion`` as precondition: a concurrent change is a 409, never overwritten).

    A 409 from a write that changed nothing we checked (the Deployment controller's status update)
    is retried on a fresh read; any other change since the checks is refused.
    """
    md = dep["metadata"]
    for _ in range(4):
        try:
            # 429/5xx are retried: with resourceVersion as precondition a repeated PUT cannot overwrite.
            written: Obj = await read_with_retry(
                ctx.kube.put_deployment, held_for_rollout(dep, template, workflow_id, stable_revision)
            )
            return written
        except ApiException as exc:
            target = f"{md['namespace']}/{md['name']}"
            if exc.status != 409:
                raise api_refusal(exc, target) from exc
            fresh: Obj = await read_with_retry(ctx.kube.get_deployment, md["namespace"], md["name"])
            if _is_our_hold(fresh, template, workflow_id):
                return fresh  # an attempt whose answer was lost (a 5xx after the write) did land
            if not _same_checked_state(dep, fresh):
                raise api_refusal(exc, target) from exc
            dep = fresh
    raise CommandError(f"deployment {md['namespace']}/{md['name']} keeps changing; try again")


def _is_our_hold(dep: Obj, template: Obj, workflow_id: str) -> bool:
    """The Deployment holds ``template`` for ``workflow_id`` already."""
    ann = ((dep.get("metadata") or {}).get("annotations") or {}).get(ANN_WORKFLOW_ID)
    spec = dep.get("spec") or {}
    same = templates_equal(spec.get("template") or {}, template)
    return ann == workflow_id and bool(spec.get("paused")) and same


def _same_checked_state(old: Obj, new: Obj) -> bool:
    """Whether what ``rollout start`` checked (template, replicas, paused, strategy, no owner) still holds."""
    keys = ("template", "replicas", "paused", "strategy")
    same_spec = all((old.get("spec") or {}).get(k) == (new.get("spec") or {}).get(k) for k in keys)
    owner = ((new.get("metadata") or {}).get("annotations") or {}).get(ANN_WORKFLOW_ID)
    return same_spec and owner is None


async def write_template(ctx: RolloutContext, dep: Obj, template: Obj) -> Obj:
    """``--replace``: the new template into the Deployment the rollout holds (it stays paused)."""
    if templates_equal((dep.get("spec") or {}).get("template") or {}, template):
        return dep  # adopting what is there already (another writer's edit)
    out = copy.deepcopy(dep)
    out["spec"]["template"] = copy.deepcopy(template)
    out.pop("status", None)
    return await _put(ctx, out)


async def put_back(ctx: RolloutContext, before: Obj, written: Obj, workflow_id: str) -> None:
    """Best effort after a start or replacement that did not happen: the Deployment as it was before
    our write, if it still holds what we wrote (nobody wrote the template after us). A conflict with
    the Deployment controller's own status write is retried on a fresh read."""
    md = before["metadata"]
    for _ in range(5):
        try:
            now = await read_with_retry(ctx.kube.get_deployment, md["namespace"], md["name"])
            ann = (now["metadata"].get("annotations") or {}).get(ANN_WORKFLOW_ID)
            now_hash = template_hash((now.get("spec") or {}).get("template") or {})
            if ann != workflow_id or now_hash != template_hash(written["spec"].get("template") or {}):
                return
            out = copy.deepcopy(now)
            for key in ("labels", "annotations"):
                out["metadata"][key] = copy.deepcopy(md.get(key) or {})
            for key in ("template", "paused", "strategy"):
                if key in before["spec"]:
                    out["spec"][key] = copy.deepcopy(before["spec"][key])
                else:
                    out["spec"].pop(key, None)
            out.pop("status", None)
            await read_with_retry(ctx.kube.put_deployment, out)
            return
        except ApiException as exc:
            if exc.status != 409:
                return  # the one-line error of the failed start is what the user needs
