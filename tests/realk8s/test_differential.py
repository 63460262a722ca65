"""The same Deployment histories on kubesim and on the real kube-apiserver + kube-controller-manager
(realk8s); what a rollout depends on must be equal.

Each test runs one scripted history on both clusters at once and compares the reduced facts (see
``differential.py``). Known, deliberate differences are asserted explicitly and explained where they occur.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from differential import (
    Cluster,
    complete,
    conditions,
    dep_path,
    deployment,
    deployment_facts,
    event_reasons,
    eventually,
    image_of,
    replica_sets,
    rs_by_image,
    rs_path,
    scaling_messages,
    settled,
)
from kubernetes.client.exceptions import ApiException

from kube.objects import template_hash

Obj = dict[str, Any]
SMP = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"
_ns = itertools.count(1)


def new_namespace(c: Cluster, base: str) -> str:
    ns = f"diff-{base}-{next(_ns)}"
    c.request("POST", "/api/v1/namespaces", {"metadata": {"name": ns}})
    return ns


async def on_both(
    clusters: list[Cluster], base: str, history: Callable[[Cluster, str], Awaitable[Obj]]
) -> dict[str, Obj]:
    """Run ``history`` on every cluster concurrently (each in a fresh namespace); facts by cluster name."""
    results = await asyncio.gather(*(history(c, new_namespace(c, base)) for c in clusters))
    return {c.name: r for c, r in zip(clusters, results, strict=True)}


def assert_same(facts: dict[str, Obj]) -> Obj:
    """Every cluster reported the same facts; a failure shows the two side by side, key by key."""
    (a_name, a), (b_name, b) = facts.items()
    diffs = {k: {a_name: a.get(k), b_name: b.get(k)} for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
    assert diffs == {}, f"kubesim and the real control plane differ: {diffs}"
    return a


def set_image(c: Cluster, ns: str, image: str, name: str = "web") -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "nginx", "image": image}]}}}}
    c.request("PATCH", dep_path(ns, name), patch, content_type=SMP)


def merge(c: Cluster, path: str, patch: Obj) -> Obj:
    return c.request("PATCH", path, patch, content_type=MERGE)


def scale_rs(c: Cluster, ns: str, rs: str, replicas: int) -> None:
    merge(c, rs_path(ns, rs), {"spec": {"replicas": replicas}})


def observed(c: Cluster, ns: str, name: str = "web") -> bool:
    d = c.request("GET", dep_path(ns, name))
    return bool(d["metadata"].get("generation") == (d.get("status") or {}).get("observedGeneration"))


def rs_names(c: Cluster, ns: str) -> dict[str, str]:
    return {rs["metadata"]["name"]: image_of(rs) for rs in replica_sets(c, ns)}


def spec_replicas(c: Cluster, ns: str) -> dict[str, int]:
    return {image: int(rs["spec"].get("replicas") or 0) for image, rs in rs_by_image(c, ns).items()}


# --- rolling update ---------------------------------------------------------------------------------------


async def test_rolling_update_of_the_seed(clusters: list[Cluster]) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 10), what=f"{c.name} initial rollout")
        set_image(c, ns, "nginx:1.27")
        await eventually(lambda: complete(c, ns, "web", "nginx:1.27", 10), what=f"{c.name} rollout to 1.27")
        facts = deployment_facts(c, ns, "web")
        # The first three moves are fixed by the strategy (surge 3, then unavailable 2); later ones depend on
        # readiness timing.
        facts["firstMoves"] = scaling_messages(c, ns, rs_names(c, ns))[:3]
        facts["events"] = event_reasons(c, ns)
        return facts

    facts = assert_same(await on_both(clusters, "seed", history))
    assert facts["firstMoves"] == [
        "Scaled up replica set <nginx:1.26> from 0 to 10",
        "Scaled up replica set <nginx:1.27> from 0 to 3",
        "Scaled down replica set <nginx:1.26> from 10 to 8",
    ]
    assert facts["replicaSets"]["nginx:1.27"]["revision"] == "2"


async def test_proportional_scaling_mid_rollout(clusters: list[Cluster]) -> None:
    """A rollout stuck on never-ready pods, then scaled up and down: the extra replicas are spread over both
    ReplicaSets by upstream's proportional rule."""

    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 10), what=f"{c.name} initial rollout")
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubesim.io/never-ready": "true"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
                }
            }
        }
        c.request("PATCH", dep_path(ns, "web"), patch, content_type=SMP)
        stuck = {"nginx:1.26": 8, "nginx:1.27": 5}
        await eventually(lambda: spec_replicas(c, ns) == stuck and settled(c, ns), what=f"{c.name} stuck")
        out: Obj = {"stuck": deployment_facts(c, ns, "web")}
        merge(c, dep_path(ns, "web"), {"spec": {"replicas": 20}})
        await eventually(
            lambda: sum(spec_replicas(c, ns).values()) == 25 and settled(c, ns), what=f"{c.name} scaled to 20"
        )
        out["up"] = spec_replicas(c, ns)
        c.request(
            "PUT",
            dep_path(ns, "web") + "/scale",
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"replicas": 7},
            },
        )
        await eventually(
            lambda: sum(spec_replicas(c, ns).values()) <= 9 and settled(c, ns), what=f"{c.name} scaled to 7"
        )
        out["down"] = spec_replicas(c, ns)
        out["final"] = deployment_facts(c, ns, "web")
        return out

    facts = assert_same(await on_both(clusters, "proportional", history))
    assert facts["up"] == {"nginx:1.26": 15, "nginx:1.27": 10}


async def test_progress_deadline_with_never_ready_pods(clusters: list[Cluster]) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns, replicas=4, progress_deadline=2))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 4), what=f"{c.name} initial rollout")
        patch = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubesim.io/never-ready": "true"}},
                    "spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"}]},
                }
            }
        }
        c.request("PATCH", dep_path(ns, "web"), patch, content_type=SMP)

        def exceeded() -> bool:
            conds = conditions(c.request("GET", dep_path(ns, "web")))
            return conds.get("Progressing") == ("False", "ProgressDeadlineExceeded")

        await eventually(exceeded, timeout=60, what=f"{c.name} ProgressDeadlineExceeded")
        facts = deployment_facts(c, ns, "web")
        facts["events"] = event_reasons(c, ns)
        return facts

    facts = assert_same(await on_both(clusters, "deadline", history))
    assert facts["conditions"]["Available"] == ("True", "MinimumReplicasAvailable")


# --- paused, Recreate, someone else's ReplicaSet -------------------------------------------------------


async def test_paused_scale_then_recreate(clusters: list[Cluster]) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns, replicas=4))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 4), what=f"{c.name} initial rollout")
        merge(c, dep_path(ns, "web"), {"spec": {"paused": True}})
        set_image(c, ns, "nginx:1.27")
        await eventually(lambda: settled(c, ns), what=f"{c.name} paused edit observed")
        out: Obj = {"pausedEdit": deployment_facts(c, ns, "web")}
        merge(c, dep_path(ns, "web"), {"spec": {"replicas": 6}})
        await eventually(
            lambda: observed(c, ns) and spec_replicas(c, ns) == {"nginx:1.26": 6},
            what=f"{c.name} paused scale",
        )
        merge(c, dep_path(ns, "web"), {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}})
        await eventually(lambda: settled(c, ns), what=f"{c.name} Recreate observed")
        out["pausedScale"] = deployment_facts(c, ns, "web")
        merge(c, dep_path(ns, "web"), {"spec": {"paused": False}})
        await eventually(lambda: complete(c, ns, "web", "nginx:1.27", 6), what=f"{c.name} Recreate rollout")
        out["final"] = deployment_facts(c, ns, "web")
        out["moves"] = scaling_messages(c, ns, rs_names(c, ns))
        out["events"] = event_reasons(c, ns)
        return out

    facts = assert_same(await on_both(clusters, "paused-recreate", history))
    assert facts["pausedEdit"]["conditions"]["Progressing"] == ("Unknown", "DeploymentPaused")
    assert facts["moves"] == [
        "Scaled up replica set <nginx:1.26> from 0 to 4",
        "Scaled up replica set <nginx:1.26> from 4 to 6",
        "Scaled down replica set <nginx:1.26> from 6 to 0",
        "Scaled up replica set <nginx:1.27> from 0 to 6",
    ]


async def test_replica_set_created_by_someone_else_is_adopted(clusters: list[Cluster]) -> None:
    """What the rollout engine does: hold the Deployment (paused, Recreate, new template), create the canary
    ReplicaSet itself (here without an owner, so the controller must adopt it), move replicas between the
    two, then hand the Deployment back; the controller must reuse that ReplicaSet, never make a third."""

    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns, replicas=4))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 4), what=f"{c.name} initial rollout")
        d = c.request("GET", dep_path(ns, "web"))
        d["spec"]["paused"] = True
        d["spec"]["strategy"] = {"type": "Recreate"}
        d["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27"
        d = c.request("PUT", dep_path(ns, "web"), d)
        template = copy.deepcopy(d["spec"]["template"])
        h = template_hash(template)
        template["metadata"]["labels"]["pod-template-hash"] = h
        c.request(
            "POST",
            rs_path(ns),
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"web-{h}",
                    "namespace": ns,
                    "labels": dict(template["metadata"]["labels"]),
                },
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web", "pod-template-hash": h}},
                    "template": template,
                },
            },
        )

        def adopted() -> bool:
            rs = c.request("GET", rs_path(ns, f"web-{h}"))
            refs = rs["metadata"].get("ownerReferences") or []
            d = c.request("GET", dep_path(ns, "web"))
            # The Deployment's revision annotation follows the adopted ReplicaSet's in a later sync on the
            # real controller (status write after the adoption patch): wait for both, then compare.
            revision = (d["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
            owned = any(r.get("controller") and r.get("name") == "web" for r in refs)
            return owned and revision == "2" and settled(c, ns)

        await eventually(adopted, what=f"{c.name} adoption")
        out: Obj = {"adopted": deployment_facts(c, ns, "web")}
        stable = next(n for n, img in rs_names(c, ns).items() if img == "nginx:1.26")
        # Canary up first, as the engine does: were the stable ReplicaSet scaled down first, it would be the
        # only active one for a moment and the paused controller would scale it straight back to 4.
        scale_rs(c, ns, f"web-{h}", 1)
        scale_rs(c, ns, stable, 3)
        split = {"nginx:1.26": 3, "nginx:1.27": 1}
        await eventually(
            lambda: spec_replicas(c, ns) == split and settled(c, ns), what=f"{c.name} canary 1/3"
        )
        out["canary"] = deployment_facts(c, ns, "web")
        scale_rs(c, ns, f"web-{h}", 4)
        scale_rs(c, ns, stable, 0)
        rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        merge(c, dep_path(ns, "web"), {"spec": {"paused": False, "strategy": rolling}})
        await eventually(lambda: complete(c, ns, "web", "nginx:1.27", 4), what=f"{c.name} handed back")
        out["final"] = deployment_facts(c, ns, "web")
        out["rsCount"] = len(replica_sets(c, ns))
        out["events"] = event_reasons(c, ns)
        return out

    facts = assert_same(await on_both(clusters, "adopt", history))
    assert facts["rsCount"] == 2
    assert facts["final"]["replicaSets"]["nginx:1.27"]["revision"] == "2"


# --- history, undo, cleanup, GC -------------------------------------------------------------------------


async def test_undo_reuses_the_old_replica_set_and_history_is_cleaned(clusters: list[Cluster]) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        body = deployment(ns, replicas=2)
        body["spec"]["revisionHistoryLimit"] = 1
        c.request("POST", dep_path(ns), body)
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 2), what=f"{c.name} v1")
        out: Obj = {}
        for image in ("nginx:1.27", "nginx:1.28"):
            set_image(c, ns, image)
            await eventually(lambda image=image: complete(c, ns, "web", image, 2), what=f"{c.name} {image}")
        await eventually(lambda: len(replica_sets(c, ns)) == 2, what=f"{c.name} history limit")
        out["afterLimit"] = sorted(rs_by_image(c, ns))
        # `kubectl rollout undo`: the template of the previous revision, written back.
        previous = rs_by_image(c, ns)["nginx:1.27"]["spec"]["template"]
        previous["metadata"]["labels"].pop("pod-template-hash")
        merge(c, dep_path(ns, "web"), {"spec": {"template": previous}})
        await eventually(lambda: complete(c, ns, "web", "nginx:1.27", 2), what=f"{c.name} undo")
        await eventually(lambda: len(replica_sets(c, ns)) == 2, what=f"{c.name} history limit after undo")
        out["final"] = deployment_facts(c, ns, "web")
        return out

    facts = assert_same(await on_both(clusters, "undo", history))
    assert facts["afterLimit"] == ["nginx:1.27", "nginx:1.28"]
    assert facts["final"]["replicaSets"]["nginx:1.27"]["revision"] == "4"
    assert facts["final"]["replicaSets"]["nginx:1.27"]["revisionHistory"] == "2"


@pytest.mark.parametrize("propagation", ["Background", "Foreground", "Orphan"])
async def test_delete_propagation(clusters: list[Cluster], propagation: str) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        c.request("POST", dep_path(ns), deployment(ns, replicas=2))
        await eventually(lambda: complete(c, ns, "web", "nginx:1.26", 2), what=f"{c.name} rollout")
        c.request(
            "DELETE",
            dep_path(ns, "web"),
            {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation},
        )

        def settled() -> Obj | None:
            deps = c.request("GET", dep_path(ns)).get("items") or []
            rss = replica_sets(c, ns)
            pods = c.request("GET", f"/api/v1/namespaces/{ns}/pods").get("items") or []
            if deps or (propagation != "Orphan" and (rss or pods)):
                return None
            if propagation == "Orphan" and any(rs["metadata"].get("ownerReferences") for rs in rss):
                return None
            return {"rs": len(rss), "pods": len(pods)}

        return {"left": await eventually(settled, what=f"{c.name} {propagation} delete")}

    facts = assert_same(await on_both(clusters, f"gc-{propagation.lower()}", history))
    assert facts["left"] == ({"rs": 1, "pods": 2} if propagation == "Orphan" else {"rs": 0, "pods": 0})


# --- bad writes -----------------------------------------------------------------------------------------


async def test_bad_writes_fail_the_same_way(clusters: list[Cluster]) -> None:
    async def history(c: Cluster, ns: str) -> Obj:
        good = deployment(ns, replicas=1)
        c.request("POST", dep_path(ns), good)
        out: Obj = {}
        out["exists"] = c.error("POST", dep_path(ns), good)
        out["missing"] = c.error("GET", dep_path(ns, "nope"))
        bad_name = copy.deepcopy(good)
        bad_name["metadata"]["name"] = "Web_1"
        out["badName"] = c.error("POST", dep_path(ns), bad_name)
        mismatch = copy.deepcopy(good)
        mismatch["metadata"]["name"] = "mismatch"
        mismatch["spec"]["selector"] = {"matchLabels": {"app": "other"}}
        out["selectorMismatch"] = c.error("POST", dep_path(ns), mismatch)
        negative = copy.deepcopy(good)
        negative["metadata"]["name"] = "negative"
        negative["spec"]["replicas"] = -1
        out["negativeReplicas"] = c.error("POST", dep_path(ns), negative)
        no_image = copy.deepcopy(good)
        no_image["metadata"]["name"] = "noimage"
        del no_image["spec"]["template"]["spec"]["containers"][0]["image"]
        out["noImage"] = c.error("POST", dep_path(ns), no_image)
        stale = None
        while stale is None:  # controllers write status meanwhile: retry until our own update lands
            first = c.request("GET", dep_path(ns, "web"))
            candidate = copy.deepcopy(first)
            first["spec"]["replicas"] = 3
            try:
                c.request("PUT", dep_path(ns, "web"), first)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                continue
            stale = candidate
        stale["spec"]["replicas"] = 2
        out["staleUpdate"] = c.error("PUT", dep_path(ns, "web"), stale)
        while True:  # a 409 here is a status write racing us, not the answer under test
            current = c.request("GET", dep_path(ns, "web"))
            current["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
            current["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
            out["selectorChange"] = c.error("PUT", dep_path(ns, "web"), current)
            if out["selectorChange"][0] != 409:
                break
        out["strictUnknown"] = c.error(
            "POST",
            dep_path(ns),
            {**bad_name, "metadata": {"name": "strict"}, "spec": {**good["spec"], "bogus": 1}},
            query={"fieldValidation": "Strict"},
        )
        out["badPatch"] = c.error("PATCH", dep_path(ns, "web"), "{not json", content_type=MERGE)
        out["uidPrecondition"] = c.error(
            "DELETE",
            dep_path(ns, "web"),
            {
                "kind": "DeleteOptions",
                "apiVersion": "v1",
                "preconditions": {"uid": "00000000-0000-0000-0000-000000000000"},
            },
        )
        out["negativeScale"] = c.error(
            "PUT",
            dep_path(ns, "web") + "/scale",
            {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {"name": "web", "namespace": ns},
                "spec": {"replicas": -3},
            },
        )
        out["rsWrongSelector"] = c.error(
            "POST",
            rs_path(ns),
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": "bad-rs"},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"a": "b"}},
                    "template": {
                        "metadata": {"labels": {"a": "c"}},
                        "spec": {"containers": [{"name": "c", "image": "x"}]},
                    },
                },
            },
        )
        return out

    facts = assert_same(await on_both(clusters, "bad", history))
    assert facts["exists"][:2] == (409, "AlreadyExists")
    assert facts["staleUpdate"][:2] == (409, "Conflict")
