"""coordination.k8s.io/v1 Leases, what leader election is built on: CRUD with the kubernetes client,
microsecond renew times, the resourceVersion precondition two candidates race on, validation, kubectl's
table, and the protobuf form."""

# The kubernetes client types every model field Optional; these tests read fields the server always sets.
# mypy: disable-error-code="union-attr"

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kube.client import Kube
from kubesim import protobuf
from tests.helpers.kubectl import Kubectl


def _lease(name: str, holder: str, renew: datetime) -> client.V1Lease:
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=15,
            acquire_time=renew,
            renew_time=renew,
            lease_transitions=0,
        ),
    )


def test_a_lease_is_taken_over_with_the_resource_version_precondition(
    kube_api: client.ApiClient, namespace: str
) -> None:
    api = client.CoordinationV1Api(kube_api)
    renew = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    created = api.create_namespaced_lease(namespace, _lease("leader", "pod-a", renew))
    assert created.spec.renew_time == renew  # MicroTime keeps microseconds
    assert created.spec.lease_transitions == 0

    # Two candidates read the same version; the first write wins, the second gets 409 and re-reads.
    a = api.read_namespaced_lease("leader", namespace)
    b = api.read_namespaced_lease("leader", namespace)
    a.spec.holder_identity, a.spec.lease_transitions = "pod-b", 1
    taken = api.replace_namespaced_lease("leader", namespace, a)
    b.spec.holder_identity = "pod-c"
    with pytest.raises(ApiException) as conflict:
        api.replace_namespaced_lease("leader", namespace, b)
    assert conflict.value.status == 409
    assert api.read_namespaced_lease("leader", namespace).spec.holder_identity == "pod-b"
    assert taken.metadata.resource_version != created.metadata.resource_version

    with pytest.raises(ApiException) as invalid:
        api.create_namespaced_lease(
            namespace,
            client.V1Lease(
                metadata=client.V1ObjectMeta(name="bad"), spec=client.V1LeaseSpec(lease_duration_seconds=0)
            ),
        )
    assert invalid.value.status == 422
    assert "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0" in invalid.value.body


def test_kubectl_shows_the_holder_and_reads_leases_in_protobuf(
    kubectl: Kubectl, kube_api: client.ApiClient
) -> None:
    api = client.CoordinationV1Api(kube_api)
    api.create_namespaced_lease(kubectl.namespace, _lease("leader", "pod-a", datetime.now(UTC)))
    out = kubectl.out("get", "lease")
    assert out.split("\n")[0].split() == ["NAME", "HOLDER", "AGE"]
    assert out.split("\n")[1].split()[:2] == ["leader", "pod-a"]
    assert "Holder Identity:" in kubectl.out("describe", "lease", "leader")  # a typed (protobuf) read
    codec = protobuf.codec()
    lease = Kube(kube_api).request(
        "GET", f"/apis/coordination.k8s.io/v1/namespaces/{kubectl.namespace}/leases/leader"
    )
    decoded = codec.decode(codec.encode(lease))
    for key in ("acquireTime", "renewTime"):  # the client sent +00:00; on the wire it is one instant
        sent, back = lease["spec"].pop(key), decoded["spec"].pop(key)
        assert datetime.fromisoformat(back) == datetime.fromisoformat(sent)
    assert decoded == lease
