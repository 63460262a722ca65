"""`rollout start`'s inputs without a cluster (`StartInputs.parse`) and the one spec rule (`spec_for`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.context import StartOptions
from cli.start_inputs import StartInputs
from kruise.manifest import KruisePlan
from kruise.spec import Overrides, progress_deadline, spec_for
from kube.objects import template_hash
from workflows.errors import AnalysisInputError, InputError
from workflows.model import DEFAULT_PROGRESS_DEADLINE_SECONDS, RolloutTimings, StepSpec

# A Kruise Rollout with a failure threshold and our progress deadline extension.
ROLLOUT: dict[str, Any] = {
    "apiVersion": "rollouts.kruise.io/v1beta1",
    "kind": "Rollout",
    "metadata": {"name": "rollouts-nginx"},
    "spec": {
        "workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "nginx"},
        "strategy": {
            "canary": {
                "failureThreshold": "10%",
                "progressDeadlineSeconds": 120,
                "steps": [{"replicas": 1, "pause": {"duration": 5}}, {"replicas": "100%"}],
            }
        },
    },
}


def _deployment(
    name: str = "nginx", namespace: str | None = None, image: str = "nginx:1.27"
) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    pod = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "nginx", "image": image}]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": {"template": pod}}


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    out = {
        "rollout": tmp_path / "rollout.yaml",
        "deployment": tmp_path / "deployment.yaml",
        "other_ns": tmp_path / "other-ns.yaml",
    }
    out["rollout"].write_text(yaml.safe_dump(ROLLOUT))
    out["deployment"].write_text(yaml.safe_dump(_deployment()))
    out["other_ns"].write_text(yaml.safe_dump(_deployment(namespace="prod")))
    return {k: str(v) for k, v in out.items()}


IMAGE = ["nginx=nginx:1.27"]
REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("notify URL", {"notify": ["https://hooks"]}, "--notify takes a target name"),
    ("notify name", {"notify": ["Ops Team"]}, "is not a target name"),
    ("deadline 0", {"progress_deadline": 0}, "--progress-deadline must be a positive number of seconds"),
    (
        "replace with analysis",
        {"replace": True, "analysis_files": ["a.yaml"]},
        "cannot be combined with --replace",
    ),
    (
        "-r and --steps",
        {"rollout_file": "{rollout}", "steps": "1,100%"},
        "use either --steps or -r/--rollout",
    ),
    ("-r and traffic flags", {"rollout_file": "{rollout}", "service": "web"}, "(use its trafficRoutings)"),
    ("-r for another deployment", {"name": "web", "rollout_file": "{rollout}"}, "targets deployment 'nginx'"),
    ("-r and --pause-duration", {"rollout_file": "{rollout}", "pause_duration": 3}, "(use pause.duration)"),
    ("negative pause", {"pause_duration": -1}, "--pause-duration must be >= 0"),
    ("bad steps", {"steps": "1,,x"}, "invalid --steps"),
    ("step traffic, no routing", {"steps": "1:5%,100%"}, "no traffic routing is configured"),
    ("bad failure threshold", {"failure_threshold": "120%"}, "invalid failureThreshold"),
    ("-f and --image", {"deployment_file": "{deployment}"}, "use either --image or -f/--filename"),
    (
        "-f for another deployment",
        {"name": "web", "deployment_file": "{deployment}", "images": []},
        "not 'web'",
    ),
    ("-f in another namespace", {"deployment_file": "{other_ns}", "images": []}, "is in namespace 'prod'"),
    ("nothing", {"images": []}, "nothing to roll out"),
    ("no name", {"name": None}, "missing deployment name"),
    ("bad --image", {"images": ["nginx"]}, "want CONTAINER=IMAGE"),
    ("analysis arg alone", {"analysis_args": ["a=b"]}, "--analysis-arg given without --analysis"),
]


@pytest.mark.parametrize(("case", "given", "message"), REFUSED, ids=[c[0] for c in REFUSED])
def test_refused(files: dict[str, str], case: str, given: dict[str, Any], message: str) -> None:
    kwargs: dict[str, Any] = {"name": "nginx", "images": IMAGE, **given}
    kwargs = {k: v.format(**files) if isinstance(v, str) else v for k, v in kwargs.items()}
    with pytest.raises((InputError, AnalysisInputError)) as err:
        StartInputs.parse(StartOptions(**kwargs), "default")
    assert message in str(err.value), case


def test_flags_give_the_plan_and_the_overrides() -> None:
    opts = StartOptions(
        name="nginx",
        images=IMAGE,
        steps="1:5%,50%,100%",
        pause_duration=2,
        service="web",
        ingress="web",
        matches=["header:X-Canary=1"],
        failure_threshold=1,
        progress_deadline=90,
        auto_rollback=True,
        notify=["ops", "dev", "ops"],
    )
    got = StartInputs.parse(opts, "default")
    assert got.name == "nginx" and got.images == {"nginx": "nginx:1.27"} and got.template is None
    assert [(s.replicas, s.pause_seconds) for s in got.plan.steps] == [(1, 2), ("50%", 2), ("100%", 2)]
    first = got.plan.steps[0].traffic
    assert first is not None and first.weight == 5 and first.matches[0].headers[0].name == "X-Canary"
    assert got.plan.routing is not None and got.plan.routing.canary_service == "web-canary"
    assert got.overrides == Overrides(failure_threshold=1, progress_deadline_seconds=90, auto_rollback=True)
    assert got.notify == ["ops", "dev"]


def test_manifest_plan_with_the_template_from_a_file(files: dict[str, str]) -> None:
    opts = StartOptions(rollout_file=files["rollout"], deployment_file=files["deployment"])
    got = StartInputs.parse(opts, "default")
    assert got.name == "nginx" and got.images == {}
    assert got.template == _deployment()["spec"]["template"]
    assert [s.replicas for s in got.plan.steps] == [1, "100%"]
    assert (got.plan.failure_threshold, got.plan.progress_deadline_seconds) == ("10%", 120)
    assert got.overrides == Overrides()


# --- spec_for: override, else manifest, else the Deployment's own, else the default ----------------------

PLAN = KruisePlan(
    deployment="nginx", namespace=None, steps=[StepSpec(replicas="100%")], failure_threshold=None
)
DEADLINES = [
    ("override", Overrides(progress_deadline_seconds=30), 60, 90, 30),
    ("manifest", Overrides(), 60, 90, 60),
    ("deployment", Overrides(), None, 90, 90),
    ("default", Overrides(), None, None, DEFAULT_PROGRESS_DEADLINE_SECONDS),
]


@pytest.mark.parametrize(
    ("case", "overrides", "manifest", "own", "want"), DEADLINES, ids=[d[0] for d in DEADLINES]
)
def test_progress_deadline_rule(
    case: str, overrides: Overrides, manifest: int | None, own: int | None, want: int
) -> None:
    plan = replace(PLAN, progress_deadline_seconds=manifest)
    dep = _deployment(namespace="prod")
    if own is not None:
        dep["spec"]["progressDeadlineSeconds"] = own
    assert progress_deadline(plan, dep, overrides) == want, case


THRESHOLDS = [
    ("override", Overrides(failure_threshold=0), 3, False, 0),
    ("manifest", Overrides(), 3, True, 3),
    ("neither", Overrides(), None, None, None),
]


@pytest.mark.parametrize(
    ("case", "overrides", "manifest", "auto", "want"), THRESHOLDS, ids=[t[0] for t in THRESHOLDS]
)
def test_spec_for(
    case: str, overrides: Overrides, manifest: int | None, auto: bool | None, want: int | None
) -> None:
    plan = replace(PLAN, failure_threshold=manifest, auto_rollback=auto)
    dep = _deployment(namespace="prod")
    dep["metadata"]["generation"] = 4
    new = _deployment(image="nginx:1.28")["spec"]["template"]
    spec = spec_for(
        plan,
        dep,
        template=new,
        stable_images={"nginx": "nginx:1.27"},
        requested_by="alice",
        timings=RolloutTimings(),
        overrides=overrides,
    )
    assert (spec.namespace, spec.name, spec.workflow_id) == ("prod", "nginx", "rollout/prod/nginx"), case
    assert (spec.template, spec.template_hash, spec.generation) == (None, template_hash(new), 4)
    assert (spec.stable_images, spec.canary_images) == ({"nginx": "nginx:1.27"}, {"nginx": "nginx:1.28"})
    assert spec.failure_threshold == want
    assert spec.auto_rollback is bool(auto), case
