"""kubesim can also serve from a thread of the test process; clients still go through HTTP."""

from __future__ import annotations

from pathlib import Path

from kubernetes import client

from kubesim.testing import api_client_for, start_kubesim_in_thread
from tests.helpers.kubesim_api import wait_for


def test_in_thread_kubesim_runs_controllers_and_stops(tmp_path: Path) -> None:
    sim = start_kubesim_in_thread(tmp_path, ready_delay=0.05)
    try:
        api = api_client_for(sim.kubeconfig)
        apps = client.AppsV1Api(api)
        labels = {"app": "web"}
        apps.create_namespaced_deployment(
            "default",
            client.V1Deployment(
                metadata=client.V1ObjectMeta(name="web"),
                spec=client.V1DeploymentSpec(
                    replicas=2,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(
                            containers=[client.V1Container(name="web", image="nginx:1.26")]
                        ),
                    ),
                ),
            ),
        )

        def ready() -> client.V1DeploymentStatus | None:
            st = apps.read_namespaced_deployment("web", "default").status
            return st if st.ready_replicas == 2 else None

        status = wait_for(ready, timeout=20, what="2 ready replicas")
        assert status.ready_replicas == 2
        assert any(e["verb"] == "create" and e["resource"] == "deployments" for e in sim.audit())
        api.close()
    finally:
        sim.stop()
    assert not sim.thread.is_alive()
