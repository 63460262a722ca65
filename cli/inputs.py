"""Files and images of ``rollout start`` (pure: no cluster, no Temporal).

``--image CONTAINER=IMAGE`` and ``-f deployment.yaml`` give the new pod template; YAML files (a
Deployment, a Kruise Rollout, AnalysisTemplates) are read here. Kruise manifests are parsed in
``kruise/manifest.py``; everything is put together, once per start, in ``cli/start_inputs.py``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from kube.image_ref import image_error
from workflows.errors import InputError

__all__ = [
    "apply_images",
    "load_single_doc",
    "parse_images",
    "read_yaml_docs",
    "template_from_deployment_doc",
]


def parse_images(values: list[str]) -> dict[str, str]:
    """``["nginx=nginx:1.27"]`` -> ``{"nginx": "nginx:1.27"}``."""
    out: dict[str, str] = {}
    for value in values:
        container, sep, image = value.partition("=")
        if not sep or not container.strip() or not image.strip():
            raise InputError(f"invalid --image {value!r}: want CONTAINER=IMAGE")
        if error := image_error(container.strip(), image.strip()):
            raise InputError(error)
        out[container.strip()] = image.strip()
    return out


def apply_images(template: dict[str, Any], images: dict[str, str], deployment: str) -> dict[str, Any]:
    """A copy of ``template`` with the named containers' images replaced.

    Raises:
        InputError: when a container does not exist in the template.
    """
    new = copy.deepcopy(template)
    spec = new.setdefault("spec", {})
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    names = [c.get("name") for c in containers]
    for container, image in images.items():
        matches = [c for c in containers if c.get("name") == container]
        if not matches:
            raise InputError(
                f'container "{container}" not found in deployment "{deployment}" '
                f"(containers: {', '.join(str(n) for n in names) or 'none'})"
            )
        for c in matches:
            c["image"] = image
    return new


def read_yaml_docs(path: str, error: type[ValueError] = InputError) -> list[Any]:
    """The documents of a YAML file (empty ones left out); a file that cannot be read or parsed raises
    ``error`` with one line."""
    try:
        return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from exc


def load_single_doc(path: str) -> dict[str, Any]:
    """Read a YAML file holding exactly one object."""
    docs = read_yaml_docs(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InputError(f"{path}: want exactly one YAML object, found {len(docs)}")
    doc: dict[str, Any] = docs[0]
    return doc


def template_from_deployment_doc(doc: dict[str, Any], path: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(name, namespace, spec.template)`` of a Deployment manifest."""
    if doc.get("apiVersion") != "apps/v1" or doc.get("kind") != "Deployment":
        raise InputError(f"{path}: want an apps/v1 Deployment, got {doc.get('apiVersion')}/{doc.get('kind')}")
    md = doc.get("metadata") or {}
    name = md.get("name")
    template = (doc.get("spec") or {}).get("template")
    if not name or not isinstance(template, dict):
        raise InputError(f"{path}: the Deployment needs metadata.name and spec.template")
    pod = template.get("spec") or {}
    for c in [*(pod.get("containers") or []), *(pod.get("initContainers") or [])]:
        if isinstance(c, dict) and (error := image_error(str(c.get("name")), str(c.get("image") or ""))):
            raise InputError(f"{path}: {error}")
    return str(name), md.get("namespace"), template
