"""The resource types kubesim serves: one registry used by the store, the HTTP layer and discovery."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (group/version/plural) and its wire facts."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # e.g. ("status", "scale")
    # Kubernetes bumps metadata.generation on spec changes only for some kinds.
    generation_on_spec: bool = False
    # Deployments also bump generation when metadata.annotations change (apps strategy PrepareForUpdate).
    generation_on_annotations: bool = False
    singular: str = ""
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Store key: ``plural`` for core, ``plural.group`` otherwise (kubectl's fully-qualified name)."""
        return self.plural if not self.group else f"{self.plural}.{self.group}"

    @property
    def group_version(self) -> str:
        return self.version if not self.group else f"{self.group}/{self.version}"

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


RESOURCES: list[ResourceType] = [
    ResourceType(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        short_names=("ns",),
        subresources=("status",),
        singular="namespace",
    ),
    ResourceType(
        "",
        "v1",
        "pods",
        "Pod",
        short_names=("po",),
        subresources=("status",),
        singular="pod",
        categories=("all",),
    ),
    ResourceType(
        "",
        "v1",
        "services",
        "Service",
        short_names=("svc",),
        subresources=("status",),
        singular="service",
        categories=("all",),
    ),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",), singular="configmap"),
    ResourceType("", "v1", "secrets", "Secret", singular="secret"),
    ResourceType("", "v1", "endpoints", "Endpoints", short_names=("ep",), singular="endpoints"),
    ResourceType("", "v1", "events", "Event", short_names=("ev",), singular="event"),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", singular="endpointslice"),
    ResourceType(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources=("status", "scale"),
        generation_on_spec=True,
        generation_on_annotations=True,
        singular="deployment",
        categories=("all",),
    ),
    ResourceType(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        subresources=("status", "scale"),
        generation_on_spec=True,
        singular="replicaset",
        categories=("all",),
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        short_names=("ing",),
        subresources=("status",),
        generation_on_spec=True,
        singular="ingress",
    ),
    ResourceType(
        "gateway.networking.k8s.io",
        "v1",
        "httproutes",
        "HTTPRoute",
        subresources=("status",),
        generation_on_spec=True,
        singular="httproute",
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=("status",),
        generation_on_spec=True,
        singular="customresourcedefinition",
        categories=("api-extensions",),
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease", singular="lease"),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        namespaced=False,
        generation_on_spec=True,
        singular="mutatingwebhookconfiguration",
        categories=("api-extensions",),
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        namespaced=False,
        generation_on_spec=True,
        singular="validatingwebhookconfiguration",
        categories=("api-extensions",),
    ),
]

BY_KEY: dict[str, ResourceType] = {r.key: r for r in RESOURCES}
BY_GVR: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[str, ResourceType] = {r.kind: r for r in RESOURCES}


def register(rt: ResourceType) -> None:
    """Serve one more resource type (a CRD version); the tables above are updated in place."""
    RESOURCES.append(rt)
    BY_KEY.setdefault(rt.key, rt)
    BY_GVR[(rt.group, rt.version, rt.plural)] = rt
    BY_KIND.setdefault(rt.kind, rt)


def unregister(rt: ResourceType) -> None:
    """Stop serving ``rt`` (its CRD was deleted or changed)."""
    if rt in RESOURCES:
        RESOURCES.remove(rt)
    BY_GVR.pop((rt.group, rt.version, rt.plural), None)
    rest = [r for r in RESOURCES if r.key == rt.key]
    if rest:
        BY_KEY[rt.key] = rest[0]
    else:
        BY_KEY.pop(rt.key, None)
    if BY_KIND.get(rt.kind) is rt:
        BY_KIND.pop(rt.kind)


# Convenient keys for controllers.
PODS = "pods"
SERVICES = "services"
ENDPOINTS = "endpoints"
EVENTS = "events"
ENDPOINTSLICES = "endpointslices.discovery.k8s.io"
DEPLOYMENTS = "deployments.apps"
REPLICASETS = "replicasets.apps"
CRDS = "customresourcedefinitions.apiextensions.k8s.io"
