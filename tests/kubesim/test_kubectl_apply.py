"""kubectl apply / create / diff / patch / delete against kubesim (reference 5.2 checks 4-5, 1.4, section 4).

These exercise the API surface only; they do not wait for controllers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tests.helpers.kubectl import Kubectl, deployment_manifest

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _image(d: dict[str, Any]) -> str:
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


def test_apply_created_configured_unchanged(kubectl: Kubectl) -> None:
    k = kubectl
    assert k.apply(deployment_manifest()).strip() == "deployment.apps/nginx created"
    live = k.deployment()
    assert LAST_APPLIED in live["metadata"]["annotations"]
    assert live["metadata"]["generation"] == 1
    assert k.apply(deployment_manifest()).strip() == "deployment.apps/nginx unchanged"
    assert k.apply(deployment_manifest(image="nginx:1.27")).strip() == "deployment.apps/nginx configured"
    live = k.deployment()
    assert _image(live) == "nginx:1.27"
    # The three-way SMP merged the container by name and kept its ports.
    assert live["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] == 80
    assert live["metadata"]["generation"] == 2


def test_apply_strict_field_validation_rejects_typos(kubectl: Kubectl) -> None:
    k = kubectl
    bad = deployment_manifest()
    bad["spec"]["replicaz"] = 3
    path = k.write("bad.yaml", bad)
    proc = k.run("apply", "-f", str(path), check=False)
    assert proc.returncode != 0
    assert "strict decoding error" in proc.stderr and "replicaz" in proc.stderr, proc.stderr
    # Nothing was written.
    proc = k.run("get", "deployment", "nginx", check=False)
    assert proc.returncode == 1 and "NotFound" in proc.stderr


def test_apply_server_side(kubectl: Kubectl, sim: Any) -> None:
    k = kubectl
    path = k.write("d.yaml", deployment_manifest())
    out = k.out("apply", "--server-side", "-f", str(path))
    assert out.strip() == "deployment.apps/nginx serverside-applied"
    live = k.deployment()
    assert live["spec"]["replicas"] == 3 and _image(live) == "nginx:1.26"
    path = k.write("d.yaml", deployment_manifest(replicas=4))
    out = k.out("apply", "--server-side", "--force-conflicts", "--field-manager=canary", "-f", str(path))
    assert out.strip() == "deployment.apps/nginx serverside-applied"
    assert k.deployment()["spec"]["replicas"] == 4
    shown = k.json("get", "deployment", "nginx", "--show-managed-fields")
    managers = {m.get("manager") for m in shown["metadata"].get("managedFields") or []}
    assert {"kubectl", "canary"} <= managers, managers


def test_diff_is_a_dry_run(kubectl: Kubectl, sim: Any) -> None:
    k = kubectl
    k.apply(deployment_manifest())
    before = k.deployment()
    path = k.write("changed.yaml", deployment_manifest(image="nginx:1.27"))
    proc = k.run("diff", "-f", str(path), check=False)
    assert proc.returncode == 1, proc.stderr  # 1 = differences found, >1 = error
    assert re.search(r"^-\s+(- )?image: nginx:1\.26$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^\+\s+(- )?image: nginx:1\.27$", proc.stdout, re.M), proc.stdout
    after = k.deployment()
    assert _image(after) == "nginx:1.26"
    # Controllers keep writing status, so compare what a write through the diff would have changed.
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["metadata"]["annotations"] == before["metadata"]["annotations"]
    dry = [
        e
        for e in sim.audit()
        if e.get("verb") == "patch" and e.get("namespace") == k.namespace and e.get("name") == "nginx"
    ]
    assert dry and all(e["dryRun"] for e in dry), dry
    # No difference: exit 0, nothing printed.
    same = k.write("same.yaml", deployment_manifest())
    proc = k.run("diff", "-f", str(same), check=False)
    assert proc.returncode == 0 and proc.stdout == "", (proc.stdout, proc.stderr)


def test_patch_types_and_error_rendering(kubectl: Kubectl) -> None:
    k = kubectl
    k.apply(deployment_manifest())
    out = k.out("patch", "deployment", "nginx", "-p", '{"spec":{"minReadySeconds":1}}')
    assert out.strip() == "deployment.apps/nginx patched"
    out = k.out("patch", "deployment", "nginx", "--type=merge", "-p", '{"spec":{"revisionHistoryLimit":5}}')
    assert out.strip() == "deployment.apps/nginx patched"
    out = k.out(
        "patch",
        "deployment",
        "nginx",
        "--type=json",
        "-p",
        '[{"op":"replace","path":"/spec/replicas","value":2}]',
    )
    assert out.strip() == "deployment.apps/nginx patched"
    live = k.deployment()
    spec = live["spec"]
    assert (spec["minReadySeconds"], spec["revisionHistoryLimit"], spec["replicas"]) == (1, 5, 2)

    proc = k.run("get", "deployment", "missing", check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == 'Error from server (NotFound): deployments.apps "missing" not found'
    proc = k.run("delete", "deployment", "missing", check=False)
    assert proc.returncode == 1
    assert 'Error from server (NotFound): deployments.apps "missing" not found' in proc.stderr
    proc = k.run("patch", "deployment", "nginx", "-p", '{"spec":{"replicas":-1}}', check=False)
    assert proc.returncode == 1
    assert (
        'The Deployment "nginx" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0"
    ) in proc.stderr, proc.stderr
    path = k.write("again.yaml", deployment_manifest())
    proc = k.run("create", "-f", str(path), check=False)
    assert proc.returncode == 1
    assert (
        f'Error from server (AlreadyExists): error when creating "{path}": '
        'deployments.apps "nginx" already exists'
    ) in proc.stderr, proc.stderr
    # Immutable selector: 422, object unchanged.
    proc = k.run(
        "patch",
        "deployment",
        "nginx",
        "--type=merge",
        "-p",
        '{"spec":{"selector":{"matchLabels":{"app":"other"}}}}',
        check=False,
    )
    assert proc.returncode == 1
    assert 'The Deployment "nginx" is invalid' in proc.stderr and "field is immutable" in proc.stderr
    assert k.deployment()["spec"]["selector"] == {"matchLabels": {"app": "nginx"}}
    assert k.deployment()["spec"]["replicas"] == 2

    out = k.out("delete", "deployment", "nginx")
    assert re.match(r'^deployment\.apps "nginx" deleted', out.strip()), out
    proc = k.run("get", "deployment", "nginx", check=False)
    assert proc.returncode == 1 and "NotFound" in proc.stderr


def test_watch_json_events_and_timeout(kubectl: Kubectl) -> None:
    """`get -w -o json --output-watch-events` prints typed events and exits 0 at its request timeout."""
    k = kubectl
    k.apply(deployment_manifest())
    proc = k.run(
        "get", "deploy", "-w", "-o", "json", "--output-watch-events", "--request-timeout=1s", timeout=30
    )
    decoder = json.JSONDecoder()
    text, events = proc.stdout.strip(), []
    while text:
        event, end = decoder.raw_decode(text)
        events.append(event)
        text = text[end:].strip()
    assert events and events[0]["type"] == "ADDED"
    assert events[0]["object"]["kind"] == "Deployment" and events[0]["object"]["metadata"]["name"] == "nginx"
