"""The seed's own pattern (section 5): user-owned ``nginx``, ``nginx-stable``, ``nginx-canary`` Services.

They select a ``version`` pod label, so their Endpoints follow the pods through a rollout with no help from
us: canary empty before, both populated during, stable empty after (the seed's table in 5.3). Our engine
never touches them; asking it to route ``--service nginx`` is refused because ``nginx-canary`` is theirs.
"""

from __future__ import annotations

import pytest
from kubernetes import client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.traffic import TrafficActivities
from kube.client import KubeClient
from tests.helpers.poll import wait_for
from tests.helpers.traffic import (
    endpoint_ips,
    make_ingress,
    make_replicaset,
    make_service,
    ready_pod_ips,
    scale_replicaset,
)
from workflows.errors import TRAFFIC_OBJECT_CONFLICT
from workflows.model import IngressRef, TrafficInput, TrafficRoutingRef

OLD = {"app": "nginx", "version": "1.26", "pod-template-hash": "old"}
NEW = {"app": "nginx", "version": "1.27", "pod-template-hash": "new"}


def seed_services(api: client.ApiClient, ns: str) -> None:
    make_service(api, ns, "nginx", {"app": "nginx"})
    make_service(api, ns, "nginx-stable", {"app": "nginx", "version": "1.26"})
    make_service(api, ns, "nginx-canary", {"app": "nginx", "version": "1.27"})


def pods(api: client.ApiClient, ns: str, labels: dict[str, str], count: int) -> set[str]:
    """Wait until exactly ``count`` (> 0) pods with ``labels`` are Ready; return their IPs."""
    selector = ",".join(f"{k}={v}" for k, v in labels.items())

    def ready() -> set[str] | None:
        ips = ready_pod_ips(api, ns, selector)
        return ips if len(ips) == count else None

    return wait_for(ready, what=f"{count} ready pods {selector}")


def endpoints_are(api: client.ApiClient, ns: str, expected: dict[str, set[str]]) -> None:
    for svc, ips in expected.items():

        def check(svc: str = svc, ips: set[str] = ips) -> bool:
            return endpoint_ips(api, ns, svc) == ips

        wait_for(check, what=f"Endpoints {svc} == {sorted(ips)}")


def test_seed_services_endpoints_follow_version_labels(kube_api: client.ApiClient, namespace: str) -> None:
    ns = namespace
    seed_services(kube_api, ns)
    make_replicaset(kube_api, ns, "nginx-old", OLD, 10)
    old = pods(kube_api, ns, OLD, 10)
    # Before: canary has no pods.
    endpoints_are(kube_api, ns, {"nginx": old, "nginx-stable": old, "nginx-canary": set()})

    # During (the seed's step 1: 1 new, 9 old).
    make_replicaset(kube_api, ns, "nginx-new", NEW, 1, "nginx:1.27")
    scale_replicaset(kube_api, ns, "nginx-old", 9)
    new = pods(kube_api, ns, NEW, 1)
    old = pods(kube_api, ns, OLD, 9)
    endpoints_are(kube_api, ns, {"nginx": old | new, "nginx-stable": old, "nginx-canary": new})

    # After: every pod is 1.27, stable has no pods.
    scale_replicaset(kube_api, ns, "nginx-new", 10)
    scale_replicaset(kube_api, ns, "nginx-old", 0)
    new = pods(kube_api, ns, NEW, 10)
    endpoints_are(kube_api, ns, {"nginx": new, "nginx-stable": set(), "nginx-canary": new})


async def test_routing_through_seed_service_is_refused(kube_api: client.ApiClient, namespace: str) -> None:
    ns = namespace
    seed_services(kube_api, ns)
    make_ingress(kube_api, ns, "nginx", "nginx")
    routing = TrafficRoutingRef(service="nginx", ingress=IngressRef(name="nginx"))
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(
            TrafficActivities(KubeClient(kube_api, threads=2)).snapshot_traffic,
            TrafficInput(namespace=ns, routing=routing),
        )
    assert info.value.type == TRAFFIC_OBJECT_CONFLICT
    # Nothing was written: the user's Services are exactly as created.
    svc = client.CoreV1Api(kube_api).read_namespaced_service("nginx-canary", ns)
    assert svc.spec is not None and svc.spec.selector == {"app": "nginx", "version": "1.27"}
