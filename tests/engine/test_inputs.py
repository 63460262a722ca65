"""Other inputs and outputs: a Kruise Rollout manifest, -f deployment.yaml, search attributes, status/list."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import yaml
from temporalio.common import SearchAttributeKey

import starter
from workflows.model import Phase, workflow_id_for

KRUISE = """
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: rollouts-nginx
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      failureThreshold: 0
      steps:
      - replicas: 1
        pause: {duration: 1}
      - replicas: 100%
"""


async def test_kruise_rollout_manifest(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=3))
    path = tmp_path / "rollout.yaml"
    path.write_text(KRUISE)
    rc, out, err = await kit.cli("start", "-r", str(path), "--image", "nginx=nginx:1.27", "-o", "json")
    assert rc == 0, err
    started = json.loads(out)
    assert started["workflowId"] == workflow_id_for(ns, "nginx")
    assert started["spec"]["steps"] == [
        {"replicas": 1, "pauseSeconds": 1, "traffic": None, "analysis": []},
        {"replicas": "100%", "pauseSeconds": None, "traffic": None, "analysis": []},
    ]
    st = await kit.wait_phase("nginx", Phase.COMPLETED, timeout=30)
    assert st.approvals == []
    assert kit.images() == {"nginx:1.27": (3, 3), "nginx:1.26": (0, 0)}

    # Search attributes were upserted on the way (the dev server has them registered).
    desc = await kit.ctx.client.get_workflow_handle(started["workflowId"]).describe()
    attrs = desc.typed_search_attributes
    assert attrs.get(SearchAttributeKey.for_keyword("RolloutPhase")) == "Completed"
    assert attrs.get(SearchAttributeKey.for_keyword("RolloutTarget")) == f"{ns}/nginx"
    assert attrs.get(SearchAttributeKey.for_int("RolloutStep")) == 2


async def test_deployment_file_and_status_outputs(kit: Any, rollout_worker: None, tmp_path: Path) -> None:
    ns = kit.namespace
    await kit.create(kit.seed(replicas=2))
    desired = kit.seed(replicas=2, image="nginx:1.27")
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(desired))
    rc, _, err = await kit.cli("start", "-f", str(path), "--steps", "50%,100%")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 1)

    rc, out, err = await kit.cli("status", "nginx")
    assert rc == 0, err
    assert "Paused" in out and "1/2" in out
    assert f"Temporal UI: http://localhost:8233/namespaces/default/workflows/rollout%2F{ns}%2Fnginx" in out

    rc, out, err = await kit.cli("status", "nginx", "-o", "json")
    assert rc == 0, err
    data = json.loads(out)  # only JSON on stdout
    for key in (
        "phase",
        "currentStepIndex",
        "totalSteps",
        "stepState",
        "canaryReplicas",
        "canaryReadyReplicas",
        "stableReplicas",
        "stableReadyReplicas",
        "canaryRevision",
        "stableRevision",
        "message",
        "approvals",
        "namespace",
        "name",
        "workflowId",
        "replicas",
        "stableImages",
        "canaryImages",
        "steps",
    ):
        assert key in data, key
    assert data["stepState"] == "StepPaused" and data["canaryImages"] == {"nginx": "nginx:1.27"}
    assert data["stableImages"] == {"nginx": "nginx:1.26"}

    rc, out, err = await kit.cli("list", "-o", "json")
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["workflowId"] for r in rows] == [f"rollout/{ns}/nginx"]
    assert rows[0]["phase"] == "Paused" and rows[0]["uiUrl"].endswith(f"/workflows/rollout%2F{ns}%2Fnginx")

    rc, out, err = await kit.cli("list")
    assert rc == 0, err
    assert f"rollout/{ns}/nginx" in out and "http://localhost:8233/namespaces/default/workflows/" in out

    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    # status -w on a finished rollout draws once and returns.
    buf, ebuf = io.StringIO(), io.StringIO()
    rc = await starter.run(
        ["status", "nginx", "-w", "-n", ns],
        client=kit.ctx.client,
        api_client=kit.api_client,
        out=buf,
        err=ebuf,
    )
    assert rc == 0, ebuf.getvalue()
    assert "Completed" in buf.getvalue()
