"""kubectl rollout behaviour against kubesim's controllers (reference 5.2 checks 6-7, 10-14, 16-17).

Pod readiness is slowed per template (``kubesim.io/ready-delay``) where a test must observe intermediate
states, so the tests do not depend on the server's global ready delay.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helpers.kubectl import (
    Kubectl,
    Streamer,
    deployment_manifest,
    header_and_rows,
    wait_for,
)

HASH = re.compile(r"^[4-9bcdf]{1,10}$")
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"


def _image(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def _observed(k: Kubectl) -> bool:
    d = k.deployment()
    return bool(d.get("status", {}).get("observedGeneration") == d["metadata"]["generation"])


def test_get_tables_with_labels_and_wide(kubectl: Kubectl) -> None:
    k = kubectl
    k.apply(deployment_manifest(replicas=3))
    k.wait_available()
    out = k.out("get", "deploy,rs,po", "-L", "pod-template-hash")
    blocks = [b for b in out.split("\n\n") if b.strip()]
    assert len(blocks) == 3, out
    headers = [header_and_rows(b)[0] for b in blocks]
    assert headers == [
        "NAME READY UP-TO-DATE AVAILABLE AGE POD-TEMPLATE-HASH",
        "NAME DESIRED CURRENT READY AGE POD-TEMPLATE-HASH",
        "NAME READY STATUS RESTARTS AGE POD-TEMPLATE-HASH",
    ]
    deploy_rows = header_and_rows(blocks[0])[1]
    assert [r.split()[:4] for r in deploy_rows] == [["deployment.apps/nginx", "3/3", "3", "3"]]
    assert len(deploy_rows[0].split()) == 5  # empty hash cell
    rs_rows = header_and_rows(blocks[1])[1]
    assert len(rs_rows) == 1
    name, desired, current, ready, _age, h = rs_rows[0].split()
    assert HASH.match(h) and name == f"replicaset.apps/nginx-{h}"
    assert (desired, current, ready) == ("3", "3", "3")
    pod_rows = header_and_rows(blocks[2])[1]
    assert len(pod_rows) == 3
    for row in pod_rows:
        cells = row.split()
        assert re.match(rf"^pod/nginx-{h}-[a-z0-9]{{5}}$", cells[0])
        assert cells[1:4] == ["1/1", "Running", "0"] and cells[5] == h

    header, rows = header_and_rows(k.out("get", "deploy", "-o", "wide"))
    assert header == "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR"
    cells = rows[0].split()
    assert cells[:4] == ["nginx", "3/3", "3", "3"] and cells[5:] == ["nginx", "nginx:1.26", "app=nginx"]
    header, rows = header_and_rows(k.out("get", "rs", "-o", "wide"))
    assert header == "NAME DESIRED CURRENT READY AGE CONTAINERS IMAGES SELECTOR"
    assert rows[0].split()[5:] == ["nginx", "nginx:1.26", f"app=nginx,pod-template-hash={h}"]
    # --sort-by asks for includeObject=Object, so rows carry full pods whose status can be sorted on.
    rows = header_and_rows(k.out("get", "pods", "-o", "wide", "--sort-by=.status.podIP"))[1]
    ips = [r.split()[5] for r in rows]
    # kubectl compares the cells as strings ("10.244.0.10" < "10.244.0.2"), client-side.
    assert ips == sorted(ips), ips
    # --show-labels reads rows[].object too.
    out = k.out("get", "pods", "--show-labels")
    assert out.count(f"app=nginx,pod-template-hash={h}") == 3


def test_set_image_watch_invariants_and_rollout_status(kubectl: Kubectl) -> None:
    """Checks 10-12: 3 replicas at 25%/25% (surge 1, unavailable 0), watched with `kubectl get rs -w`."""
    k = kubectl
    k.apply(deployment_manifest(replicas=3, annotations={"kubesim.io/ready-delay": "0.5"}))
    k.wait_available()
    assert k.deployment()["metadata"]["generation"] == 1
    old_rs = k.replicasets()[0]["metadata"]["name"]

    watch = Streamer(k, "get", "rs", "-w", "--request-timeout=90s")
    try:
        wait_for(lambda: any(line.startswith(old_rs) for line in watch.snapshot()), what="initial rs list")
        out = k.out("set", "image", "deployment", "nginx", "nginx=nginx:1.27")
        assert out.strip() == "deployment.apps/nginx image updated"
        status = k.run("rollout", "status", "deployment/nginx", "--timeout=60s", timeout=90)
        assert status.stdout.splitlines()[-1] == 'deployment "nginx" successfully rolled out'
        # Which progress lines appear depends on timing; each must be one of kubectl's deployment messages.
        waiting = [ln for ln in status.stdout.splitlines() if ln.startswith("Waiting")]
        assert waiting, status.stdout
        for line in waiting:
            assert re.match(
                r'^Waiting for deployment "nginx" rollout to finish: '
                r"(\d out of 3 new replicas have been updated|\d old replicas are pending termination"
                r"|\d of 3 updated replicas are available)\.\.\.$",
                line,
            ), line

        def done() -> bool:
            last: dict[str, list[str]] = {}
            for line in watch.snapshot()[1:]:
                last[line.split()[0]] = line.split()
            new = [c for n, c in last.items() if n != old_rs]
            return bool(
                old_rs in last
                and last[old_rs][1] == "0"
                and last[old_rs][3] == "0"
                and new
                and new[0][1:4] == ["3", "3", "3"]
            )

        wait_for(done, what="the watch to show the finished rollout")
    finally:
        watch.stop()

    lines = watch.snapshot()
    assert " ".join(lines[0].split()) == "NAME DESIRED CURRENT READY AGE"
    state: dict[str, tuple[int, int]] = {}
    desired_seq: dict[str, list[int]] = {}
    for line in lines[1:]:
        name, desired, _current, ready, _age = line.split()
        state[name] = (int(desired), int(ready))
        seq = desired_seq.setdefault(name, [])
        if not seq or seq[-1] != int(desired):
            seq.append(int(desired))
        assert sum(d for d, _ in state.values()) <= 4, lines  # maxSurge 1
        assert sum(r for _, r in state.values()) >= 3, lines  # maxUnavailable 0
    new_rs = [n for n in desired_seq if n != old_rs]
    assert len(new_rs) == 1, desired_seq
    assert desired_seq[new_rs[0]] == [1, 2, 3]
    assert desired_seq[old_rs] == [3, 2, 1, 0]

    d = k.deployment()
    assert d["metadata"]["generation"] == 2
    assert d["metadata"]["annotations"][REVISION] == "2"


def test_progress_deadline_exceeded(kubectl: Kubectl) -> None:
    """Check 13: a template that never becomes ready fails `rollout status` after progressDeadlineSeconds."""
    k = kubectl
    k.apply(
        deployment_manifest(
            replicas=2,
            annotations={"kubesim.io/never-ready": "true"},
            extra_spec={"progressDeadlineSeconds": 2},
        )
    )
    proc = k.run("rollout", "status", "deployment/nginx", "--timeout=30s", check=False, timeout=60)
    assert proc.returncode != 0
    assert 'error: deployment "nginx" exceeded its progress deadline' in proc.stderr, proc.stderr
    conds = {c["type"]: c for c in k.deployment()["status"]["conditions"]}
    assert (conds["Progressing"]["status"], conds["Progressing"]["reason"]) == (
        "False",
        "ProgressDeadlineExceeded",
    )
    header, rows = header_and_rows(k.out("get", "pods"))
    assert len(rows) == 2 and all(r.split()[1:3] == ["0/1", "Running"] for r in rows), rows


def test_pause_scale_resume(kubectl: Kubectl) -> None:
    """Check 14: paused Deployments get no new ReplicaSet, and scale exactly the active one."""
    k = kubectl
    k.apply(deployment_manifest(replicas=3))
    k.wait_available()
    assert k.out("rollout", "pause", "deployment/nginx").strip() == "deployment.apps/nginx paused"
    assert k.out("set", "image", "deployment", "nginx", "nginx=nginx:1.27").strip() == (
        "deployment.apps/nginx image updated"
    )
    wait_for(lambda: _observed(k), what="observedGeneration to catch up")
    assert len(k.replicasets()) == 1
    cells = header_and_rows(k.out("get", "deploy"))[1][0].split()
    assert cells[2] == "0"  # UP-TO-DATE
    assert k.out("scale", "deployment", "nginx", "--replicas=6").strip() == "deployment.apps/nginx scaled"
    wait_for(lambda: [rs["spec"]["replicas"] for rs in k.replicasets()] == [6], what="the single RS at 6")
    assert k.out("rollout", "resume", "deployment/nginx").strip() == "deployment.apps/nginx resumed"
    k.wait_available()
    by_image = {_image(rs): rs["spec"]["replicas"] for rs in k.replicasets()}
    assert by_image == {"nginx:1.26": 0, "nginx:1.27": 6}


def test_history_undo_scale_wait_and_watch_timeout(kubectl: Kubectl, sim: Any) -> None:
    """Checks 16-17, `rollout history`, `wait --for=condition=Available`, `get -w` ending at its timeout."""
    k = kubectl
    k.apply(deployment_manifest(replicas=3))
    out = k.out("wait", "--for=condition=Available", "deployment/nginx", "--timeout=60s", timeout=90)
    assert out.strip() == "deployment.apps/nginx condition met"
    k.wait_available()
    first_rs = k.replicasets()[0]["metadata"]["name"]
    proc = k.run("rollout", "undo", "deployment/nginx", check=False)
    assert proc.returncode != 0 and "no rollout history found" in proc.stderr, proc.stderr

    k.out("set", "image", "deployment", "nginx", "nginx=nginx:1.27")
    k.wait_available()
    header, rows = header_and_rows(k.out("rollout", "history", "deployment/nginx"))
    assert header == "deployment.apps/nginx"
    assert [r.split() for r in rows] == [["REVISION", "CHANGE-CAUSE"], ["1", "<none>"], ["2", "<none>"]]
    detail = k.out("rollout", "history", "deployment/nginx", "--revision=1")
    assert "nginx:1.26" in detail

    assert k.out("rollout", "undo", "deployment/nginx").strip() == "deployment.apps/nginx rolled back"
    k.wait_available()
    rss = {rs["metadata"]["name"]: rs for rs in k.replicasets()}
    assert len(rss) == 2  # the revision-1 ReplicaSet was re-used, not a third one created
    reused = rss[first_rs]
    assert reused["spec"]["replicas"] == 3
    assert reused["metadata"]["annotations"][REVISION] == "3"
    assert reused["metadata"]["annotations"][REVISION_HISTORY] == "1"
    d = k.deployment()
    assert _image(d) == "nginx:1.26" and d["metadata"]["annotations"][REVISION] == "3"

    assert k.out("scale", "deployment", "nginx", "--replicas=5").strip() == "deployment.apps/nginx scaled"
    scale = json.loads(
        k.out("get", "--raw", f"/apis/apps/v1/namespaces/{k.namespace}/deployments/nginx/scale")
    )
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["spec"]["replicas"] == 5 and scale["status"]["selector"] == "app=nginx"
    k.wait_available()
    assert header_and_rows(k.out("get", "deploy"))[1][0].split()[1:4] == ["5/5", "5", "5"]

    # `get -w` with a request timeout: prints the table, then exits 0 when the watch times out.
    proc = k.run("get", "deploy", "-w", "--request-timeout=1s", timeout=30)
    header, rows = header_and_rows(proc.stdout)
    assert header == "NAME READY UP-TO-DATE AVAILABLE AGE"
    assert rows[0].split()[:4] == ["nginx", "5/5", "5", "5"]


def test_paused_proportional_scaling(kubectl: Kubectl) -> None:
    """Check 15: a stuck 10-replica rollout (old 8, new 5, max-replicas 13), paused, scaled to 5: 4 and 3."""
    k = kubectl
    k.apply(deployment_manifest(replicas=10))
    k.wait_available()
    # The new template never becomes ready: 25%/25% of 10 is surge 3 / unavailable 2, so the rollout
    # settles at old 8 + new 5 = 13 and stays there.
    never_ready = {"kubesim.io/never-ready": "true"}
    k.apply(deployment_manifest(replicas=10, image="nginx:1.27", annotations=never_ready))

    def sizes() -> dict[str, int]:
        return {_image(rs): rs["spec"]["replicas"] for rs in k.replicasets()}

    wait_for(lambda: sizes() == {"nginx:1.26": 8, "nginx:1.27": 5}, what="old 8 / new 5")
    for rs in k.replicasets():
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "13"
    assert k.out("rollout", "pause", "deployment/nginx").strip() == "deployment.apps/nginx paused"
    assert k.out("scale", "deployment", "nginx", "--replicas=5").strip() == "deployment.apps/nginx scaled"
    # allowed = 5 + ceil(1.25) = 7: old round(8*7/13)=4, new gets the rest, 3.
    wait_for(lambda: sizes() == {"nginx:1.26": 4, "nginx:1.27": 3}, what="proportional 4 / 3")
    wait_for(lambda: _observed(k), what="observedGeneration to catch up")
    assert sizes() == {"nginx:1.26": 4, "nginx:1.27": 3}


def test_replicaset_scale_down_deletes_not_ready_pod_first(kubectl: Kubectl) -> None:
    """Check 18: with one pod not ready, scaling a ReplicaSet 3 -> 2 deletes that pod."""
    k = kubectl
    manifest = deployment_manifest("web", replicas=3)
    manifest["kind"] = "ReplicaSet"
    for key in ("strategy", "progressDeadlineSeconds"):
        manifest["spec"].pop(key, None)
    assert k.apply(manifest).strip() == "replicaset.apps/web created"

    def ready_pods() -> list[str]:
        pods = k.json("get", "pods", "-l", "app=web")["items"]
        return [
            p["metadata"]["name"]
            for p in pods
            if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]

    def three_ready() -> list[str] | None:
        names = ready_pods()
        return names if len(names) == 3 else None

    names = wait_for(three_ready, what="3 ready pods")
    victim = sorted(names)[1]
    out = k.out("annotate", "pod", victim, "kubesim.io/crash-loop=true")
    assert out.strip() == f"pod/{victim} annotated"

    def victim_status() -> str:
        for row in header_and_rows(k.out("get", "pods", "-l", "app=web"))[1]:
            if row.split()[0] == victim:
                return row.split()[2]
        return ""

    wait_for(lambda: victim_status() == "CrashLoopBackOff", what="the annotated pod to crash-loop")
    assert k.out("scale", "rs", "web", "--replicas=2").strip() == "replicaset.apps/web scaled"
    wait_for(lambda: victim_status() == "", what="the not-ready pod to be deleted")
    remaining = {p["metadata"]["name"] for p in k.json("get", "pods", "-l", "app=web")["items"]}
    assert remaining == set(names) - {victim}


def test_rollout_restart(kubectl: Kubectl) -> None:
    """`rollout restart` stamps restartedAt into the template, which rolls a new ReplicaSet."""
    k = kubectl
    k.apply(deployment_manifest(replicas=2))
    k.wait_available()
    assert k.out("rollout", "restart", "deployment/nginx").strip() == "deployment.apps/nginx restarted"
    k.wait_available()
    d = k.deployment()
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert d["metadata"]["annotations"][REVISION] == "2"
    assert sorted(rs["spec"]["replicas"] for rs in k.replicasets()) == [0, 2]
