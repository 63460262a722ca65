"""Bad input through the CLI: one line on stderr, non-zero exit, empty stdout, no workflow started and
no write to the cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

from workflows.model import workflow_id_for

KRUISE_OK = """
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-nginx}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      steps:
      - replicas: 1
      - replicas: 50%
"""


def _kruise(tmp_path: Path, text: str) -> str:
    path = tmp_path / "rollout.yaml"
    path.write_text(text)
    return str(path)


CASES: list[tuple[str, list[str], str]] = [
    ("missing deployment", ["start", "nope", "--image", "nginx=nginx:1.27"], 'deployment "nope" not found'),
    (
        "unknown container",
        ["start", "nginx", "--image", "php=php:8"],
        'container "php" not found in deployment',
    ),
    (
        "template unchanged",
        ["start", "nginx", "--image", "nginx=nginx:1.26"],
        "already runs this pod template",
    ),
    (
        "--service alone with a traffic weight",
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1:5%,100%", "--service", "nginx"],
        "step 1 sets traffic 5%, but --service nginx alone only splits pods",
    ),
    ("step 0", ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "0,100%"], "must be between 1"),
    ("step 150%", ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "150%"], "must be between 1"),
    (
        "decreasing steps",
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "50%,20%"],
        "non-decreasing",
    ),
    (
        "garbage steps",
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,,x"],
        "invalid --steps",
    ),
    ("bad --image", ["start", "nginx", "--image", "nginx"], "want CONTAINER=IMAGE"),
    (
        "image reference with a space",
        ["start", "nginx", "--image", "nginx=nginx 1.27"],
        'container "nginx": image "nginx 1.27" is not a valid image reference: it contains whitespace',
    ),
    (
        "image reference in upper case",
        ["start", "nginx", "--image", "nginx=NGINX:1.27"],
        'container "nginx": image "NGINX:1.27" is not a valid image reference: invalid reference format: '
        "repository name (library/NGINX) must be lowercase",
    ),
    ("no change given", ["start", "nginx"], "nothing to roll out"),
    ("negative pause", ["start", "nginx", "--image", "nginx=n:2", "--pause-duration", "-1"], "must be >= 0"),
    (
        "bad failure threshold",
        ["start", "nginx", "--image", "nginx=n:2", "--failure-threshold", "120%"],
        "invalid failureThreshold",
    ),
    ("unknown flag", ["start", "nginx", "--bogus"], "unrecognized arguments"),
    (
        "--ingress without --service",
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--ingress", "web"],
        "--ingress/--httproute need --service",
    ),
    (
        "step traffic without routing",
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1:5%,100%"],
        "step 1 sets traffic/matches but no traffic routing is configured",
    ),
    (
        "traffic weight over 100%",
        ["start", "nginx", "--image", "nginx=n:2", "--steps", "1:150%", "--service", "s", "--ingress", "i"],
        "traffic must be percentage",
    ),
    (
        "bad --match kind",
        ["start", "nginx", "--image", "nginx=n:2", "--service", "s", "--httproute", "r", "--match", "ip:1"],
        "KIND must be header, cookie, query or path",
    ),
    (
        "query match on nginx",
        ["start", "nginx", "--image", "nginx=n:2", "--steps", "1,100%", "--service", "s", "--ingress", "i"]
        + ["--match", "query:beta=1"],
        "the nginx Ingress supports only matches of exactly one header or cookie",
    ),
    (
        "traffic step above 50%",
        ["start", "nginx", "--image", "nginx=n:2", "--steps", "80%:20%", "--service", "s", "--ingress", "i"],
        "partition-percent-limit",
    ),
    (
        "missing Service",
        [
            "start",
            "nginx",
            "--image",
            "nginx=n:2",
            "--steps",
            "1:5%,100%",
            "--service",
            "s",
            "--ingress",
            "i",
        ],
        "/s not found",
    ),
    (
        "progress deadline 0",
        ["start", "nginx", "--image", "nginx=n:2", "--progress-deadline", "0"],
        "--progress-deadline must be a positive number of seconds",
    ),
    (
        "replace without a running rollout",
        ["start", "nginx", "--image", "nginx=n:2", "--replace"],
        "is not under a rollout; start without --replace",
    ),
    ("approve unknown rollout", ["approve", "ghost"], "no rollout found for deployment"),
    ("undo unknown rollout", ["undo", "ghost"], "no rollout found for deployment"),
    ("status unknown rollout", ["status", "ghost"], "no rollout found for deployment"),
]


async def assert_nothing_started(kit: Any, seq: int, *names: str) -> None:
    """No rollout workflow exists for these Deployments (describe is read-after-write consistent, unlike
    visibility) and the cluster saw no write after audit sequence ``seq``."""
    for name in names:
        handle = kit.ctx.client.get_workflow_handle(workflow_id_for(kit.namespace, name))
        try:
            desc = await handle.describe()
        except RPCError as exc:
            assert exc.status == RPCStatusCode.NOT_FOUND, exc
        else:
            raise AssertionError(f"bad input started workflow {desc.id} ({desc.status})")
    assert kit.writes_since(seq) == []


@pytest.mark.parametrize(("argv", "needle"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input(kit: Any, argv: list[str], needle: str) -> None:
    await kit.create(kit.seed(replicas=2))
    seq = kit.audit_seq()
    rc, out, err = await kit.cli(*argv)
    assert rc != 0
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("rollout: error: "), err
    assert needle in err
    await assert_nothing_started(kit, seq, "nginx", argv[1] if len(argv) > 1 else "nginx")


KRUISE_BAD = [
    ("wrong kind", KRUISE_OK.replace("kind: Rollout", "kind: BatchRelease"), "want kind Rollout"),
    (
        "wrong apiVersion",
        KRUISE_OK.replace("v1beta1", "v1alpha1"),
        "want kind Rollout of rollouts.kruise.io/v1beta1",
    ),
    ("unknown field", KRUISE_OK.replace("      steps:", "      stepz: []\n      steps:"), "unknown field"),
    (
        "service-only routing with a traffic weight",
        KRUISE_OK.replace("      steps:", "      trafficRoutings: [{service: nginx}]\n      steps:").replace(
            "      - replicas: 1\n", "      - replicas: 1\n        traffic: 5%\n"
        ),
        "--service nginx alone only splits pods",
    ),
    (
        "canary style",
        KRUISE_OK.replace("      steps:", "      enableExtraWorkloadForCanary: true\n      steps:"),
        "enableExtraWorkloadForCanary (canary style) is not supported yet",
    ),
    (
        "step traffic without routing",
        KRUISE_OK.replace("- replicas: 1", "- replicas: 1\n        traffic: 5%"),
        "step 1 sets traffic/matches but no traffic routing is configured",
    ),
    ("decreasing", KRUISE_OK.replace("50%", "0%"), "must be between 1"),
    ("blueGreen", KRUISE_OK.replace("canary:", "blueGreen:"), "blueGreen is not supported yet"),
]


@pytest.mark.parametrize(
    ("text", "needle"), [(c[1], c[2]) for c in KRUISE_BAD], ids=[c[0] for c in KRUISE_BAD]
)
async def test_bad_kruise_rollout(kit: Any, tmp_path: Path, text: str, needle: str) -> None:
    await kit.create(kit.seed(replicas=2))
    seq = kit.audit_seq()
    rc, out, err = await kit.cli("start", "-r", _kruise(tmp_path, text), "--image", "nginx=nginx:1.27")
    assert rc != 0 and out == ""
    assert err.count("\n") == 1 and needle in err, err
    await assert_nothing_started(kit, seq, "nginx")


@pytest.mark.clusters
async def test_zero_replicas_and_paused_deployments(kit: Any) -> None:
    await kit.create(kit.seed(name="zero", replicas=0), ready=False)
    paused = kit.seed(name="held", replicas=2)
    paused["spec"]["paused"] = True
    await kit.create(paused, ready=False)
    seq = kit.audit_seq()
    rc, out, err = await kit.cli("start", "zero", "--image", "nginx=nginx:1.27")
    assert rc != 0 and out == "" and err.count("\n") == 1
    assert "has 0 replicas" in err
    rc, out, err = await kit.cli("start", "held", "--image", "nginx=nginx:1.27")
    assert rc != 0 and out == "" and err.count("\n") == 1
    assert "is paused" in err
    await assert_nothing_started(kit, seq, "zero", "held")
