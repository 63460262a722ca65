"""``rollout dev up --clusters dev,staging,prod``: the cluster names, and the stack's kubeconfig with one
context per cluster, named after it (``kubectl --context prod ...``; a Release's ``cluster:``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from devstack.layout import DevError, KubeServer, Layout

__all__ = ["parse_clusters", "write_kubeconfig"]

# A cluster name is a kubeconfig context, a task-queue suffix (`rollouts-NAME`) and part of file names.
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")
# kubectl reads kubeconfigs as YAML 1.1, where a bare `y`, `no` or `on` is a boolean: quote those.
_YAML11_SCALAR = re.compile(r"(?i)y|n|yes|no|true|false|on|off|null|~|[-+.0-9][-+.0-9e_:]*")


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = '"' if _YAML11_SCALAR.fullmatch(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def parse_clusters(text: str) -> tuple[str, ...]:
    """`dev,staging,prod` -> ("dev", "staging", "prod"); a bad or repeated name is a DevError."""
    names = tuple(n.strip() for n in text.split(","))
    for name in names:
        if not _NAME.fullmatch(name):
            raise DevError(
                f"--clusters: {name!r} is not a cluster name (lower-case letters, digits and '-', "
                "at most 40, starting and ending with a letter or digit)"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DevError(f"--clusters: {', '.join(repeated)} is listed twice")
    return names


def merged_kubeconfig(kubeconfigs: dict[str, Path]) -> str:
    """One kubeconfig (YAML) with each file's cluster and user as context NAME; the first is current.
    Names kubectl's YAML 1.1 would read as booleans (``y``, ``on``) are quoted."""
    clusters, users, contexts = [], [], []
    for name, source in kubeconfigs.items():
        one = yaml.safe_load(source.read_text())
        clusters.append({"name": name, "cluster": one["clusters"][0]["cluster"]})
        users.append({"name": name, "user": one["users"][0]["user"]})
        contexts.append({"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current-context": contexts[0]["name"],
        "preferences": {},
    }
    return yaml.dump(config, Dumper=_Dumper, sort_keys=False)


def write_kubeconfig(layout: Layout, servers: list[KubeServer]) -> None:
    """DIR/kubeconfig: each server's cluster and user as context NAME; the first is the current one."""
    sources = {server.context or server.component: server.kubeconfig for server in servers}
    _write_atomic(layout.kubeconfig, merged_kubeconfig(sources))


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
