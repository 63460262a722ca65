"""Named, non-retryable error types (the ``type`` of an ``ApplicationError``).

Two behaviours only: *transient* errors (API 5xx, 429, 409 conflicts, timeouts) are raised as is
and Temporal retries them; *impossible requests* are raised as
``ApplicationError(message, type=<one of these>, non_retryable=True)`` and fail the activity at
once. The workflow's retry policies, the CLI and the tests all use these constants.
"""

from __future__ import annotations

from workflows.traffic import NON_RETRYABLE_TRAFFIC_ERRORS

__all__ = [
    "DEPLOYMENT_NOT_FOUND",
    "INVALID_ROLLOUT_SPEC",
    "NOT_OWNER",
    "NON_RETRYABLE",
    "REPLICASET_CONFLICT",
    "STABLE_NOT_FOUND",
    "UNSUPPORTED",
]

DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
"""The target Deployment does not exist (or was deleted mid-rollout)."""

INVALID_ROLLOUT_SPEC = "InvalidRolloutSpec"
"""The request can never succeed: bad steps, 0 replicas, unchanged template, unknown container, ..."""

STABLE_NOT_FOUND = "StableReplicaSetNotFound"
"""No ReplicaSet of the Deployment carries its current template (not fully rolled out)."""

NOT_OWNER = "NotRolloutOwner"
"""The Deployment is under another workflow's rollout."""

REPLICASET_CONFLICT = "ReplicaSetConflict"
"""A ReplicaSet with our deterministic name exists with another template or owner."""

UNSUPPORTED = "UnsupportedFeature"
"""A Kruise feature this project does not implement (trafficRoutings, canary style, ...)."""

NON_RETRYABLE = [
    DEPLOYMENT_NOT_FOUND,
    INVALID_ROLLOUT_SPEC,
    STABLE_NOT_FOUND,
    NOT_OWNER,
    REPLICASET_CONFLICT,
    UNSUPPORTED,
    *NON_RETRYABLE_TRAFFIC_ERRORS,
]
