"""Names and IDs: the task queue, workflow type, search attributes and workflow IDs of a rollout, and the
Kubernetes metadata keys (defined in ``kube.names``; re-exported because inputs and the CLI speak of them)."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

from kube.names import (
    ANN_HANDING_BACK,
    ANN_IN_PROGRESS,
    ANN_ORIGINAL_STRATEGY,
    ANN_WORKFLOW_ID,
    ANNOTATION_PREFIX,
    CANARY_SUFFIX,
    LABEL_STABLE_REVISION,
    LABEL_WORKLOAD_TYPE,
)

__all__ = [
    "ANNOTATION_PREFIX",
    "ANN_HANDING_BACK",
    "ANN_IN_PROGRESS",
    "ANN_ORIGINAL_STRATEGY",
    "ANN_WORKFLOW_ID",
    "CANARY_SUFFIX",
    "LABEL_STABLE_REVISION",
    "LABEL_WORKLOAD_TYPE",
    "TASK_QUEUE",
    "WORKFLOW_TYPE",
    "SA_TARGET",
    "SA_PHASE",
    "SA_STEP",
    "SA_TARGET_KEY",
    "SA_PHASE_KEY",
    "SA_STEP_KEY",
    "WORKFLOW_ID_PREFIX",
    "workflow_id_for",
    "legacy_workflow_id",
    "target_of_workflow_id",
]


TASK_QUEUE = "rollouts"
WORKFLOW_TYPE = "Rollout"

# Custom search attribute names (registered on the server; see connect.ensure_search_attributes).
SA_TARGET = "RolloutTarget"
SA_PHASE = "RolloutPhase"
SA_STEP = "RolloutStep"
SA_TARGET_KEY = SearchAttributeKey.for_keyword(SA_TARGET)
SA_PHASE_KEY = SearchAttributeKey.for_keyword(SA_PHASE)
SA_STEP_KEY = SearchAttributeKey.for_int(SA_STEP)


WORKFLOW_ID_PREFIX = "rollout"


def workflow_id_for(namespace: str, name: str, cluster: str = "") -> str:
    """Return the one workflow ID a Deployment's new rollouts run under: ``rollout/<namespace>/<name>``,
    or ``rollout/<cluster>/<namespace>/<name>`` in a named cluster (a release target).

    ``/`` cannot occur in a namespace or Deployment name, so no two targets share an ID (the older
    ``rollout-<namespace>-<name>`` made ``shop``/``prod-web`` and ``shop-prod``/``web`` one ID); the
    segment count tells the default-cluster and named-cluster forms apart.
    """
    if cluster:
        return f"{WORKFLOW_ID_PREFIX}/{cluster}/{namespace}/{name}"
    return f"{WORKFLOW_ID_PREFIX}/{namespace}/{name}"


def legacy_workflow_id(namespace: str, name: str) -> str:
    """The ID of rollouts started before ``workflow_id_for``: ambiguous, so found only with a target check."""
    return f"{WORKFLOW_ID_PREFIX}-{namespace}-{name}"


def target_of_workflow_id(workflow_id: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of a ``workflow_id_for`` ID, ``None`` for any other (legacy) form."""
    parts = workflow_id.split("/")
    if len(parts) == 4 and all(parts[1:]):  # rollout/<cluster>/<ns>/<name>
        parts = parts[:1] + parts[2:]
    if len(parts) != 3 or parts[0] != WORKFLOW_ID_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]
