"""``--service`` alone (no Ingress, no HTTPRoute): pods split between the stable and the canary Service.

At every step the stable Service selects only the stable pods and ``<svc>-canary`` only the canary
pods (checked on their Endpoints); after completion and after an undo the Service equals the user's
original and the canary Service is gone.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.helpers.traffic import canonical, endpoint_ips, make_service, raw, ready_pod_ips
from workflows.model import Phase


async def _endpoints_match(kit: Any, service: str, pod_hash: str, count: int) -> set[str]:
    """Wait until the Service's Endpoints are exactly the ``count`` ready pods of ``pod_hash``."""
    api, ns = kit.api_client, kit.namespace

    def check() -> set[str] | None:
        ips = ready_pod_ips(api, ns, f"pod-template-hash={pod_hash}")
        return ips if len(ips) == count and endpoint_ips(api, ns, service) == ips else None

    return await kit.eventually(check, timeout=20, message=f"Endpoints {service} = {count} {pod_hash} pods")


def _service(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    return raw(client.CoreV1Api(api).read_namespaced_service, name, ns)


def _assert_restored(api: client.ApiClient, ns: str, original: dict[str, Any]) -> None:
    svc = _service(api, ns, "nginx")
    assert svc is not None
    assert canonical(svc["spec"]) == canonical(original["spec"])
    assert svc["metadata"].get("annotations") == original["metadata"].get("annotations")
    assert _service(api, ns, "nginx-canary") is None


@pytest.mark.clusters
async def test_service_alone_complete_then_undo(kit: Any, rollout_worker: None) -> None:
    ns, api = kit.namespace, kit.api_client
    await kit.create(kit.seed())
    original = make_service(api, ns, "nginx", {"app": "nginx"})
    argv = ["--steps", "1,50%,100%", "--service", "nginx", "--grace-period", "0"]
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", *argv)
    assert rc == 0, err

    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    stable, canary = st.stable_revision, st.canary_revision
    svc = _service(api, ns, "nginx")
    assert svc is not None and svc["spec"]["selector"] == {"app": "nginx", "pod-template-hash": stable}
    canary_svc = _service(api, ns, "nginx-canary")
    assert canary_svc is not None
    assert canary_svc["spec"]["selector"] == {"app": "nginx", "pod-template-hash": canary}
    await _endpoints_match(kit, "nginx-canary", canary, 1)
    await _endpoints_match(kit, "nginx", stable, 9)

    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.PAUSED, 2)
    await _endpoints_match(kit, "nginx-canary", canary, 5)
    await _endpoints_match(kit, "nginx", stable, 5)

    rc, _, err = await kit.cli("approve", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.COMPLETED)
    _assert_restored(api, ns, original)
    await _endpoints_match(kit, "nginx", canary, 10)
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")

    # A second rollout, undone at step 1: the Service is the user's again, on the stable pods.
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.28", *argv)
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    await _endpoints_match(kit, "nginx-canary", st.canary_revision, 1)
    await _endpoints_match(kit, "nginx", st.stable_revision, 9)
    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err
    await kit.wait_phase("nginx", Phase.ROLLED_BACK)
    _assert_restored(api, ns, original)
    await _endpoints_match(kit, "nginx", st.stable_revision, 10)
    kit.assert_handed_back(kit.deployment(), "nginx:1.27")
