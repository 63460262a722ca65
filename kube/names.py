"""Every label and annotation name the project reads or writes, in one place.

Kubernetes' own names first, then ours (prefix ``rollouts.temporal.io/``, never Kruise's), then the
ingress-nginx ones the traffic layer writes.
"""

from __future__ import annotations

# --- Kubernetes ---------------------------------------------------------------------------------------
HASH_LABEL = "pod-template-hash"
ANN_REVISION = "deployment.kubernetes.io/revision"
ANN_DESIRED = "deployment.kubernetes.io/desired-replicas"
ANN_MAX = "deployment.kubernetes.io/max-replicas"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"

# --- ours ---------------------------------------------------------------------------------------------
ANNOTATION_PREFIX = "rollouts.temporal.io/"
ANN_WORKFLOW_ID = ANNOTATION_PREFIX + "workflow-id"
ANN_ORIGINAL_STRATEGY = ANNOTATION_PREFIX + "original-strategy"
LABEL_STABLE_REVISION = ANNOTATION_PREFIX + "stable-revision"
# Declarative mode: set by the admission webhook on a Deployment it holds until the workflow takes over.
ANN_IN_PROGRESS = ANNOTATION_PREFIX + "in-progressing"
# Declarative mode: written just before the hand-back, so the webhook tells it from a writer that
# merely dropped our marks (e.g. `kubectl replace` of the original manifest mid-rollout).
ANN_HANDING_BACK = ANNOTATION_PREFIX + "handing-back"
# Declarative mode, on a Rollout: ``stable`` makes its deletion or disabling mid-rollout roll the
# Deployment back to the stable template; the default (``new``, Kruise's) finishes the release.
ANN_HAND_BACK = ANNOTATION_PREFIX + "hand-back"
# Kruise's bookkeeping on a Deployment it holds (declarative mode writes them beside ours, for the
# tools that read them: kubectl-kruise, dashboards); they go when the Deployment is handed back.
KRUISE_ANN_IN_PROGRESS = "rollouts.kruise.io/in-progressing"
KRUISE_ANN_DEPLOYMENT_STRATEGY = "rollouts.kruise.io/deployment-strategy"
KRUISE_ANN_EXTRA_STATUS = "rollouts.kruise.io/deployment-extra-status"
KRUISE_LABEL_STABLE_REVISION = "rollouts.kruise.io/stable-revision"
KRUISE_MARKS = (
    KRUISE_ANN_IN_PROGRESS,
    KRUISE_ANN_DEPLOYMENT_STRATEGY,
    KRUISE_ANN_EXTRA_STATUS,
    KRUISE_LABEL_STABLE_REVISION,
)
# Kruise's label on a workload under a Rollout (the webhook's objectSelector; kept on hand-back).
LABEL_WORKLOAD_TYPE = "rollouts.kruise.io/workload-type"

# --- the Kruise Rollout API (declarative mode) ----------------------------------------------------------
ROLLOUT_GROUP = "rollouts.kruise.io"
ROLLOUT_VERSION = "v1beta1"
ROLLOUT_PLURAL = "rollouts"
ROLLOUT_FINALIZER = "rollouts.kruise.io/rollout"
CANARY_OF_ANNOTATION = ANNOTATION_PREFIX + "canary-of"  # on <svc>-canary / <ing>-canary: the source object
# On the stable Service while we narrow it: the user's selector, so any run can restore it.
ORIGINAL_SELECTOR_ANNOTATION = ANNOTATION_PREFIX + "original-selector"
MANAGED_BY_VALUE = "temporal-rollouts"
CANARY_SUFFIX = "-canary"

# --- ingress-nginx ------------------------------------------------------------------------------------
NGINX_ANNOTATION_PREFIX = "nginx.ingress.kubernetes.io/"
