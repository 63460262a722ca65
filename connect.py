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
import json
import logging
import os
import sys
import weakref
from collections.abc import Iterable
from typing import Any, NoReturn

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig, ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from codec import codec_from_env
from workflows.model import (
    PATCH_COMPACT_HISTORY,
    PATCH_OUTCOMES,
    SA_CLUSTER,
    SA_PHASE,
    SA_RELEASE_ID,
    SA_RELEASE_WAVE,
    SA_STEP,
    SA_TARGET,
    RolloutSpec,
    RolloutStatus,
    legacy_workflow_id,
    workflow_id_for,
)

__all__ = [
    "CLI_USER_AGENT",
    "ConnectionProblem",
    "CONNECTION_POOL_SIZE",
    "SEARCH_ATTRIBUTES",
    "WORKER_USER_AGENT",
    "cancel_is_undo",
    "connect_temporal",
    "data_converter",
    "ensure_search_attributes",
    "exit_now",
    "find_rollout",
    "first_task_patches",
    "takes_cancel_as_undo",
    "has_search_attributes",
    "load_api_client",
    "temporal_address",
    "unreachable_text",
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
# Release waves: ReleaseId lists every target of a release (checked apart: rollouts need only the above).
RELEASE_SEARCH_ATTRIBUTES: dict[str, IndexedValueType.ValueType] = {
    SA_RELEASE_ID: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SA_RELEASE_WAVE: IndexedValueType.INDEXED_VALUE_TYPE_INT,
    SA_CLUSTER: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
}


DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
# Where each loaded ApiClient's config came from ("kubeconfig PATH (KUBECONFIG)"), for unreachable_text.
_KUBE_SOURCES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_NEXT_STEP = 'for the local stack, run "rollout dev up", then ". .rollout/env" in this shell'


class ConnectionProblem(RuntimeError):
    """Temporal or Kubernetes cannot be used; ``str()`` is one line in the user's words: what was tried,
    where that setting came from, and what to do."""


def temporal_address(address: str | None = None) -> tuple[str, str]:
    """The Temporal address ``connect_temporal`` uses and where it came from (for error messages)."""
    if address:
        return address, "from --address"
    env = os.environ.get("TEMPORAL_ADDRESS")
    if env:
        return env, "from TEMPORAL_ADDRESS"
    try:
        from_file = ClientConfigProfile.load(disable_env=True).address
    except Exception:  # noqa: BLE001 - an unreadable profile is reported by the connect itself
        from_file = None
    if from_file:
        profile = os.environ.get("TEMPORAL_PROFILE") or "default"
        where = os.environ.get("TEMPORAL_CONFIG_FILE") or "~/.config/temporalio/temporal.toml"
        return from_file, f'from profile "{profile}" in {where}'
    return DEFAULT_TEMPORAL_ADDRESS, "the default: no --address, TEMPORAL_ADDRESS or temporal.toml profile"


def _reason(text: str) -> str:
    """The cause of a failed connection in plain words (the SDK's and urllib3's texts are internals)."""
    low = text.lower()
    for needle, words in (
        ("refused", "connection refused"),
        ("dns", "the host name does not resolve"),
        ("name or service not known", "the host name does not resolve"),
        ("certificate", "the TLS certificate was not accepted"),
        ("tls", "the TLS handshake failed"),
        ("timed out", "the connection timed out"),
        ("timeout", "the connection timed out"),
    ):
        if needle in low:
            return words
    return "the connection failed"


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
    try:
        return await Client.connect(data_converter=data_converter(), **config)
    except RuntimeError as exc:
        if "client connect" not in str(exc).lower():
            raise
        target, source = temporal_address(address)
        if config["target_host"] != target:  # e.g. a profile the SDK read that we could not
            target, source = config["target_host"], "from the Temporal environment config"
        raise ConnectionProblem(
            f"cannot reach Temporal at {target} ({source}): {_reason(str(exc))}; {_NEXT_STEP}"
        ) from None


def _load_kubeconfig(configuration: Any, flag: str | None, path: str | None, context: str | None) -> str:
    """Load a kubeconfig into ``configuration``; returns "kubeconfig PATH from ORIGIN, context NAME"."""
    shown = path or "~/.kube/config"
    origin = "--kubeconfig" if flag else "KUBECONFIG" if path else "the default path"
    if path and not os.path.exists(os.path.expanduser(path.split(os.pathsep)[0])):
        raise ConnectionProblem(
            f"cannot read the kubeconfig {shown} (from {origin}): the file does not exist; {_NEXT_STEP}"
        )
    try:
        if context is None:
            context = str(k8s_config.list_kube_config_contexts(config_file=path)[1]["name"])
        k8s_config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    except (k8s_config.ConfigException, OSError, ValueError, KeyError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if context and "expected object with name" in detail.lower():
            detail = f'it has no context "{context}"'
        where = f"the kubeconfig {shown} (from {origin})" + (f", context {context}" if context else "")
        raise ConnectionProblem(f"cannot use {where}: {detail}") from None
    return f"kubeconfig {shown} from {origin}, context {context}"


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
        source = _load_kubeconfig(configuration, kubeconfig, path, context)
    else:
        source = "the in-cluster service account"
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            raise ConnectionProblem(
                "no Kubernetes config: no --kubeconfig, no KUBECONFIG, no ~/.kube/config, and not running in "
                f"a cluster; {_NEXT_STEP}"
            ) from None
    configuration.connection_pool_maxsize = CONNECTION_POOL_SIZE
    api = k8s_client.ApiClient(configuration)
    api.user_agent = user_agent
    _KUBE_SOURCES[api] = source
    return api


def unreachable_text(exc: BaseException, api: Any) -> str | None:
    """A Kubernetes API server that could not be reached, in the user's words (None for other errors)."""
    import urllib3.exceptions

    if not isinstance(exc, urllib3.exceptions.HTTPError) or api is None:
        return None
    host = getattr(api.configuration, "host", "?")
    source = _KUBE_SOURCES.get(api, "the Kubernetes config")
    return f"cannot reach the Kubernetes API at {host} ({source}): {_reason(str(exc))}; {_NEXT_STEP}"


async def has_search_attributes(client: Client, *, release: bool = False) -> bool:
    """Whether the namespace has all three rollout search attributes (with ``release``: the release ones
    too; False if we may not ask)."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except Exception:  # noqa: BLE001 - any refusal means "don't rely on them"
        return False
    wanted = {**SEARCH_ATTRIBUTES, **(RELEASE_SEARCH_ATTRIBUTES if release else {})}
    return all(name in resp.custom_attributes for name in wanted)


async def ensure_search_attributes(client: Client) -> bool:
    """Register missing rollout search attributes where allowed; return whether all exist now."""
    try:
        resp = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        wanted = {**SEARCH_ATTRIBUTES, **RELEASE_SEARCH_ATTRIBUTES}
        missing = {k: v for k, v in wanted.items() if k not in resp.custom_attributes}
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


def first_task_patches(events: Iterable[HistoryEvent]) -> set[str] | None:
    """The patch IDs the run's first workflow task recorded (``None``: no task has completed yet)."""
    tasks_done, found = 0, set()
    for event in events:
        et = event.event_type
        if et == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks_done += 1
            if tasks_done > 1:
                break  # the first task's commands (its markers among them) are behind us
        elif tasks_done and et == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = event.marker_recorded_event_attributes.details.get("patch-data")
            if data is not None and data.payloads:
                found.add(str(json.loads(data.payloads[0].data).get("id", "")))
    return found if tasks_done else None


async def cancel_is_undo(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the run takes a cancellation request as an undo (it recorded ``PATCH_OUTCOMES``, or
    ``PATCH_COMPACT_HISTORY``, which stands for it and every other earlier patch).

    A run whose first task is still to come will run this code's workflow, so it counts as new; only
    a run begun by an older worker build answers False.
    """
    events: list[HistoryEvent] = []
    tasks_done = 0
    async for event in handle.fetch_history_events():
        events.append(event)
        tasks_done += event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        if tasks_done > 1:
            break  # no need to read the rest of a long history
    return takes_cancel_as_undo(first_task_patches(events))


def takes_cancel_as_undo(patches: set[str] | None) -> bool:
    """``cancel_is_undo`` from the first task's patch IDs (``None``: no task has completed yet)."""
    return patches is None or bool({PATCH_OUTCOMES, PATCH_COMPACT_HISTORY} & patches)
