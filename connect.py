"""Connections for the worker and the CLI: Temporal, Kubernetes, search attributes, a clean exit.

- Temporal: the SDK's environment config (``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``,
  ``TEMPORAL_API_KEY``, ``TEMPORAL_TLS_*`` and the ``temporal.toml`` profile), plus the short
  ``TEMPORAL_TLS_CERT`` / ``TEMPORAL_TLS_KEY`` / ``TEMPORAL_TLS_CA`` paths for mTLS.
- Payloads: pydantic JSON, AES-GCM encrypted when ``ROLLOUT_PAYLOAD_KEY_FILE`` is set (``codec.py``).
- Kubernetes: ``KUBECONFIG`` (or ``--kubeconfig``/``--context``), else the in-cluster service account.
  Each caller names itself with a user agent, so API server audit logs tell the worker from the CLI.

No CLI or activity import: ``worker.py`` and ``cli/`` both import this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any, NoReturn

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from codec import codec_from_env
from workflows.model import (
    SA_PHASE,
    SA_STEP,
    SA_TARGET,
    RolloutSpec,
    RolloutStatus,
    legacy_workflow_id,
    workflow_id_for,
)

__all__ = [
    "CLI_USER_AGENT",
    "CONNECTION_POOL_SIZE",
    "SEARCH_ATTRIBUTES",
    "WORKER_USER_AGENT",
    "connect_temporal",
    "data_converter",
    "ensure_search_attributes",
    "exit_now",
    "find_rollout",
    "has_search_attributes",
    "load_api_client",
]

log = logging.getLogger("rollout-worker")

WORKER_USER_AGENT = "rollout-worker/0.1"
CLI_USER_AGENT = "rollout-cli/0.1"
# Pooled API connections: one per activity thread (activities.ACTIVITY_THREADS; see worker.py).
CONNECTION_POOL_SIZE = 2048

SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    SA_TARGET: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_PHASE: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_STEP: IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


async def connect_temporal(address: str | None = None, namespace: str | None = None) -> Client:
    """Connect to Temporal from env config; explicit ``address``/``namespace`` win over it."""
    config: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    if address:
        config["target_host"] = address
    if namespace:
        config["namespace"] = namespace
    config.setdefault("target_host", "localhost:7233")
    cert, key, ca = (os.environ.get(f"TEMPORAL_TLS_{k}") for k in ("CERT", "KEY", "CA"))
    if cert or key or ca:
        config["tls"] = TLSConfig(
            client_cert=_read(cert) if cert else None,
            client_private_key=_read(key) if key else None,
            server_root_ca_cert=_read(ca) if ca else None,
        )
    return await Client.connect(data_converter=data_converter(), **config)


def data_converter() -> DataConverter:
    """Pydantic JSON, encrypted when ``ROLLOUT_PAYLOAD_KEY_FILE`` names keys (``codec.py``)."""
    codec = codec_from_env()
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def load_api_client(
    kubeconfig: str | None = None, context: str | None = None, *, user_agent: str = WORKER_USER_AGENT
) -> k8s_client.ApiClient:
    """A Kubernetes ``ApiClient`` from a kubeconfig (``KUBECONFIG`` by default) or in-cluster config.

    ``user_agent`` names the caller in API server audit logs (worker vs. CLI).
    """
    path = kubeconfig or os.environ.get("KUBECONFIG")
    configuration = k8s_client.Configuration()
    if path or context or os.path.exists(os.path.expanduser("~/.kube/config")):
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    else:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException as exc:
            raise RuntimeError(
                "no Kubernetes config: set KUBECONFIG or --kubeconfig, or run in a cluster"
            ) from exc
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    api = k8s_client.ApiClient(configuration)
    api.user_agent = user_agent
    return api


async def has_search_attributes(client: Client) -> bool:
    """Whether the namespace has all three rollout search attributes (False if we may not ask)."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except Exception:  # noqa: BLE001 - any refusal means "don't rely on them"
        return False
    return all(name in resp.custom_attributes for name in SEARCH_ATTRIBUTES)


async def ensure_search_attributes(client: Client) -> bool:
    """Register missing rollout search attributes where allowed; return whether all exist now."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in resp.custom_attributes}
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
            )
            log.info("registered search attributes %s", ", ".join(sorted(missing)))
    except Exception as exc:  # noqa: BLE001 - e.g. Temporal Cloud without operator permission
        log.warning("could not register search attributes (%s); rollouts run without them", exc)
    return await has_search_attributes(client)




def exit_now(rc: int) -> NoReturn:
    """Flush, then leave without interpreter teardown.

    The Temporal SDK's Rust core threads can crash the interpreter's teardown (SIGABRT or SIGSEGV
    *after* the work is done, temporalio/sdk-python#300), turning a success into exit 134 or 139.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`rollout list | head -1`) must not change rc
            pass
    os._exit(rc)


# -- finding a Deployment's rollout (new and legacy workflow IDs) -------------------------------------


async def _describe(handle: WorkflowHandle[Any, Any]) -> WorkflowExecutionDescription | None:
    try:
        return await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _run_targets(client: Client, handle: WorkflowHandle[Any, Any], namespace: str, name: str) -> bool:
    """Whether the run's input names ``namespace/name`` (legacy IDs are ambiguous: check the input)."""
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        if not payloads:
            return False
        spec = client.data_converter.payload_converter.from_payloads(list(payloads), [RolloutSpec])[0]
        return bool((spec.namespace, spec.name) == (namespace, name))
    return False


async def find_rollout(
    client: Client, namespace: str, name: str
) -> tuple[WorkflowHandle[Any, RolloutStatus], WorkflowExecutionDescription | None]:
    """The rollout of Deployment ``namespace/name``: the handle and its description (``None``: no run).

    New runs use ``rollout/<ns>/<name>``. A run under the older ``rollout-<ns>-<name>`` counts only
    when its input names this Deployment (that ID is shared by ``shop``/``prod-web`` and
    ``shop-prod``/``web``), and wins only while it runs or when no new-form run exists.
    """
    handle = client.get_workflow_handle(workflow_id_for(namespace, name), result_type=RolloutStatus)
    desc = await _describe(handle)
    if desc is not None and desc.status == WorkflowExecutionStatus.RUNNING:
        return handle, desc
    legacy = client.get_workflow_handle(legacy_workflow_id(namespace, name), result_type=RolloutStatus)
    legacy_desc = await _describe(legacy)
    if legacy_desc is not None and (desc is None or legacy_desc.status == WorkflowExecutionStatus.RUNNING):
        if await _run_targets(client, legacy, namespace, name):
            return legacy, legacy_desc
    return handle, desc
