"""Named, non-retryable error types (the ``type`` of an ``ApplicationError``).

Two behaviours only: *transient* errors (API 5xx, 429, 409 conflicts, timeouts) are raised as is
and Temporal retries them; *impossible requests* are raised as
``ApplicationError(message, type=<one of these>, non_retryable=True)`` and fail the activity at
once. The workflow's retry policies, the CLI and the tests all use these constants.
"""

from __future__ import annotations

__all__ = [
    "DEPLOYMENT_NOT_FOUND",
    "INVALID_ROLLOUT_SPEC",
    "NOT_OWNER",
    "NOT_HELD",
    "NAMESPACE_NOT_ALLOWED",
    "TEMPLATE_IN_INPUT",
    "TEMPLATE_MISMATCH",
    "WORKFLOW_ID_MISMATCH",
    "NON_RETRYABLE",
    "ANALYSIS_ROLLBACK",
    "PROGRESS_DEADLINE",
    "REPLICASET_CONFLICT",
    "STABLE_NOT_FOUND",
    "UNSUPPORTED",
    "STEP_JUMP_REFUSED",
    "PLAN_CHANGE_REFUSED",
    "TRAFFIC_OBJECT_NOT_FOUND",
    "TRAFFIC_OBJECT_INVALID",
    "TRAFFIC_OBJECT_CONFLICT",
    "NON_RETRYABLE_TRAFFIC_ERRORS",
    "InputError",
    "TrafficSpecError",
    "AnalysisInputError",
    "ConditionError",
    "MeasurementError",
    "CommandError",
]

DEPLOYMENT_NOT_FOUND = "DeploymentNotFound"
"""The target Deployment does not exist (or was deleted mid-rollout)."""

INVALID_ROLLOUT_SPEC = "InvalidRolloutSpec"
"""The request can never succeed: bad steps, 0 replicas, unchanged template, unknown container, ..."""

STABLE_NOT_FOUND = "StableReplicaSetNotFound"
"""No ReplicaSet of the Deployment carries its current template (not fully rolled out)."""

NOT_OWNER = "NotRolloutOwner"
"""The Deployment is under another workflow's rollout."""

NOT_HELD = "DeploymentNotHeld"
"""The Deployment carries no hold for this rollout: nobody wrote the template with their own credentials."""

TEMPLATE_MISMATCH = "TemplateMismatch"
"""The Deployment's pod template is not the one the rollout's reference names (changed, or never written)."""

TEMPLATE_IN_INPUT = "TemplateInInput"
"""A new run's input carries a pod template: templates reach the cluster only through the starter's write."""

WORKFLOW_ID_MISMATCH = "WorkflowIdMismatch"
"""The workflow ID is not the one of the Deployment the input names."""

NAMESPACE_NOT_ALLOWED = "NamespaceNotAllowed"
"""The worker is not configured for the namespace (ROLLOUT_WATCH_NAMESPACES; kube-system only when named)."""

REPLICASET_CONFLICT = "ReplicaSetConflict"
"""A ReplicaSet with our deterministic name exists with another template or owner."""

UNSUPPORTED = "UnsupportedFeature"
"""A Kruise feature this project does not implement (trafficRoutings, canary style, ...)."""

TRAFFIC_OBJECT_NOT_FOUND = "TrafficObjectNotFound"
"""A Service, Ingress or HTTPRoute named in the traffic routing does not exist."""

TRAFFIC_OBJECT_INVALID = "TrafficObjectInvalid"
"""A traffic object cannot be used as given (no selector, does not route to the Service, ...)."""

TRAFFIC_OBJECT_CONFLICT = "TrafficObjectConflict"
"""An object with the name of one of ours exists and is not ours."""

ANALYSIS_ROLLBACK = "AnalysisRollback"
"""The run's outcome, not an activity's: canary analysis failed and the rollout rolled back."""

PROGRESS_DEADLINE = "ProgressDeadlineExceeded"
"""The run's outcome: a step made no progress within the deadline (rolled back, or left held)."""

RELEASE_FAILED = "ReleaseFailed"
"""A release's outcome: a wave failed and nothing (or not everything) was rolled back."""

RELEASE_ROLLED_BACK = "ReleaseRolledBack"
"""A release's outcome: a wave failed and the policy rolled the released targets back."""

RELEASE_ABORTED = "ReleaseAborted"
"""A release's outcome: a person aborted it (``rollout release abort``)."""

STEP_JUMP_REFUSED = "StepJumpRefused"
"""A step jump (``nextStepIndex``) the run cannot make now: it is ending, aborted, failed or taking over."""

PLAN_CHANGE_REFUSED = "PlanChangeRefused"
"""A plan edit the run cannot take: another number of steps, invalid steps, or the run cannot move now."""

NON_RETRYABLE_TRAFFIC_ERRORS = (TRAFFIC_OBJECT_NOT_FOUND, TRAFFIC_OBJECT_INVALID, TRAFFIC_OBJECT_CONFLICT)

NON_RETRYABLE = [
    DEPLOYMENT_NOT_FOUND,
    INVALID_ROLLOUT_SPEC,
    STABLE_NOT_FOUND,
    NOT_OWNER,
    NOT_HELD,
    TEMPLATE_MISMATCH,
    TEMPLATE_IN_INPUT,
    WORKFLOW_ID_MISMATCH,
    NAMESPACE_NOT_ALLOWED,
    REPLICASET_CONFLICT,
    UNSUPPORTED,
    *NON_RETRYABLE_TRAFFIC_ERRORS,
]


# --- errors raised in the caller's process (never an ApplicationError type) ----------------------------


class InputError(ValueError):
    """A bad argument, file or Kruise manifest; the message is the one line the CLI prints (and the
    declarative controller writes into the Rollout's status)."""


class TrafficSpecError(ValueError):
    """Invalid traffic routing input (CLI flags or manifest); the message is one user-facing line."""


class AnalysisInputError(ValueError):
    """A bad AnalysisTemplate or ``--analysis-arg``; the message is the one line the CLI prints."""


class ConditionError(ValueError):
    """An analysis condition that does not parse, or that failed on a measured value."""


class MeasurementError(Exception):
    """An analysis provider could not produce a value (unreachable, HTTP error, bad response)."""


class CommandError(Exception):
    """The root of the one-line failures a person reads at the edge (the ``rollout`` CLI, ``rollout dev``,
    ``make demo``): ``str(err)`` is the line, ``exit_code`` the process's exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
