"""`rollout dev up --clusters a,b`: one kubesim and one `rollout-worker --cluster NAME` per cluster, one
kubeconfig context per cluster named after it; `status` lists them all and `down` stops every one."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from devstack import Layout, Proc, is_alive
from devstack.clusters import write_kubeconfig
from devstack.stack import main
from kubesim.app import write_kubeconfig as write_one
from tests.helpers.devstack import REPO, DevRun, free_ports, stop_leftovers

KUBECTL = str(Path(REPO) / ".venv/bin/kubectl")


@pytest.fixture
def two_clusters(tmp_path: Path) -> Iterator[DevRun]:
    t, u, k, p = free_ports(4)
    run = DevRun(state_dir=tmp_path / "state", temporal_port=t, ui_port=u, kube_port=k, prometheus_port=p)
    seen: dict[str, Proc] = {}
    try:
        yield run
    finally:
        if (run.state_dir / "pids.json").exists():
            seen.update(run.procs())
            run.run("down", timeout=90)
        stop_leftovers(seen)


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True, timeout=60)


def test_up_two_clusters_contexts_workers_status_down(two_clusters: DevRun) -> None:
    run = two_clusters
    up = run.up("--clusters", "a,b")
    assert up.returncode == 0, up.stderr + up.stdout
    procs = run.procs()
    assert {"temporal", "kubesim-a", "kubesim-b", "worker", "worker-a", "worker-b", "controller"} <= set(
        procs
    )
    assert not {"kubesim"} & set(procs)
    assert all(is_alive(p) for p in procs.values())
    # one worker per cluster, each serving its own queue with its own context (`--cluster NAME`)
    assert procs["worker-a"].cmd[-2:] == ["--cluster", "a"]
    assert procs["worker-b"].cmd[-2:] == ["--cluster", "b"]
    assert "--cluster" not in procs["worker"].cmd  # the base queue: rollouts on `a`, releases

    ports = run.pids_json()["ports"]
    assert ports["kube-a"] == run.kube_port and ports["kube-b"] not in (run.kube_port, 0)
    env = run.env()
    config = yaml.safe_load(Path(env["KUBECONFIG"]).read_text())
    assert [c["name"] for c in config["contexts"]] == ["a", "b"]
    assert config["current-context"] == "a"  # every single-cluster command keeps working
    servers = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
    assert servers == {"a": f"http://127.0.0.1:{run.kube_port}", "b": f"http://127.0.0.1:{ports['kube-b']}"}

    # two different servers: what is created through context b exists in b only
    created = kubectl(env, "--context", "b", "create", "deployment", "web", "--image", "nginx:1.26")
    assert created.returncode == 0, created.stderr
    in_b = kubectl(env, "--context", "b", "get", "deploy", "-o", "name")
    assert in_b.returncode == 0 and in_b.stdout.split() == ["deployment.apps/web"], in_b.stderr
    for ctx in (["--context", "a"], []):
        in_a = kubectl(env, *ctx, "get", "deploy", "-o", "name")
        assert in_a.returncode == 0 and in_a.stdout.strip() == "", in_a.stdout + in_a.stderr

    status = run.run("status")
    assert status.returncode == 0, status.stdout
    lines = {line.split()[0]: line for line in status.stdout.splitlines()}
    for name, where in (
        ("kubesim-a", f"http://127.0.0.1:{run.kube_port} (context a)"),
        ("kubesim-b", f"http://127.0.0.1:{ports['kube-b']} (context b)"),
        ("worker-a", "task queue rollouts-a"),
        ("worker-b", "task queue rollouts-b"),
    ):
        assert f"running (pid {procs[name].pid})" in lines[name] and lines[name].endswith(where)

    down = run.run("down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert not [n for n, p in procs.items() if is_alive(p)], "a process survived `dev down`"


@pytest.mark.parametrize(
    ("clusters", "error"),
    [
        ("a,a", "error: --clusters: a is listed twice"),
        ("dev,Prod", "error: --clusters: 'Prod' is not a cluster name"),
        ("dev,", "error: --clusters: '' is not a cluster name"),
    ],
)
def test_bad_cluster_names_are_one_line_and_start_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clusters: str, error: str
) -> None:
    state_dir = tmp_path / "bad"
    rc = main(["up", "--detach", "--clusters", clusters, "--state-dir", str(state_dir)])
    assert rc == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(error), lines
    assert not state_dir.exists()


def test_kubeconfig_contexts_named_like_yaml_booleans_stay_names(tmp_path: Path) -> None:
    """kubectl reads YAML 1.1: contexts `y` and `on` must reach it as names, not booleans."""
    layout = Layout(state_dir=tmp_path, clusters=("y", "on"), cluster_ports={"y": 1111, "on": 2222})
    servers = layout.kube_servers()
    for server in servers:
        assert server.context is not None
        write_one(server.kubeconfig, server.url)
    write_kubeconfig(layout, servers)
    env = {"PATH": "/usr/bin:/bin", "KUBECONFIG": str(layout.kubeconfig)}
    names = kubectl(env, "config", "get-contexts", "-o", "name")
    assert names.returncode == 0, names.stderr
    assert names.stdout.split() == ["on", "y"]
    server = kubectl(
        env, "--context", "on", "config", "view", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}"
    )
    assert server.stdout == "http://127.0.0.1:2222", server.stdout + server.stderr
