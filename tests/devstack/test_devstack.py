"""`rollout dev up|status|down`: a real Temporal dev server, kubesim and worker in a tmp state dir."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack import Layout, Proc, is_alive, read_pids
from devstack.prometheus import prometheus_binary
from tests.helpers.devstack import REPO, DevRun, free_ports, stop_leftovers
from tests.helpers.poll import wait_for


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[DevRun]:
    t, u, k, p = free_ports(4)
    run = DevRun(state_dir=tmp_path / "state", temporal_port=t, ui_port=u, kube_port=k, prometheus_port=p)
    seen: dict[str, Proc] = {}
    try:
        yield run
    finally:
        seen.update(run.procs())
        run.run("down", timeout=60)
        stop_leftovers(seen)


SEED_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx, namespace: default, labels: {app: nginx}}
spec:
  replicas: 10
  selector: {matchLabels: {app: nginx}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  template:
    metadata: {labels: {app: nginx}}
    spec: {containers: [{name: nginx, image: "nginx:1.26", ports: [{containerPort: 80}]}]}
"""
SEED_ROLLOUT = """apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata: {name: rollouts-nginx, namespace: default}
spec:
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: nginx}
  strategy:
    canary:
      enableExtraWorkloadForCanary: false
      steps: [{replicas: 1}, {replicas: 50%}, {replicas: 100%}]
"""


def seed_commands_on_the_stack(env: dict[str, str]) -> None:
    """Declarative mode on `dev up`'s stack: the seed's kubectl commands, as docs/declarative.md shows."""

    def kubectl(*args: str, stdin: str | None = None) -> str:
        proc = subprocess.run(
            [str(Path(REPO) / ".venv/bin/kubectl"), *args],
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def until(fn: Callable[[], bool], what: str, timeout: float = 90) -> None:
        wait_for(fn, timeout=timeout, interval=0.3, what=what)

    kubectl("apply", "-f", "-", stdin=SEED_DEPLOYMENT)
    kubectl("rollout", "status", "deployment/nginx", "--timeout=90s")
    kubectl("apply", "-f", "-", stdin=SEED_ROLLOUT)
    until(lambda: "Healthy" in kubectl("get", "rollout", "rollouts-nginx"), "Rollout Healthy")
    kubectl("set", "image", "deployment", "nginx", "nginx=nginx:1.27")

    def rs_sizes() -> list[str]:
        path = "jsonpath={range .items[*]}{.status.readyReplicas}/{.spec.replicas} {end}"
        out = kubectl("get", "rs", "-o", path)
        return sorted(out.split())

    until(lambda: rs_sizes() == ["1/1", "9/9"], "ReplicaSets 1/9")
    until(lambda: "StepPaused" in kubectl("get", "rollout", "rollouts-nginx"), "StepPaused")
    table = kubectl("get", "rollout", "rollouts-nginx")
    assert "Rollout is in step(1/3), and you need manually confirm to enter the next step" in table
    kubectl(
        "patch",
        "rollout",
        "rollouts-nginx",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}',
    )
    until(lambda: rs_sizes() == ["5/5", "5/5"], "ReplicaSets 5/5")


def test_up_status_second_up_down(dev_run: DevRun) -> None:
    up = dev_run.up()
    assert up.returncode == 0, up.stderr + up.stdout
    assert f"Temporal UI: http://127.0.0.1:{dev_run.ui_port}/namespaces/default/workflows" in up.stdout
    assert f"Kubernetes:  http://127.0.0.1:{dev_run.kube_port}" in up.stdout

    procs = dev_run.procs()
    with_prometheus = prometheus_binary() is not None
    assert sorted(procs) == [
        "controller", "kubesim", *(["prometheus"] if with_prometheus else []), "temporal", "worker"
    ]  # fmt: skip
    assert all(is_alive(p) for p in procs.values())
    assert dev_run.pids_json()["ports"] == {
        "temporal": dev_run.temporal_port,
        "ui": dev_run.ui_port,
        "kube": dev_run.kube_port,
        **({"prometheus": dev_run.prometheus_port} if with_prometheus else {}),
    }
    temporal_cmd = procs["temporal"].cmd
    assert "--db-filename" in temporal_cmd and str(dev_run.state_dir / "temporal.db") in temporal_cmd
    assert "journal_mode=wal" in temporal_cmd
    for attr in ("RolloutTarget=Keyword", "RolloutPhase=Keyword", "RolloutStep=Int"):
        assert attr in temporal_cmd

    env = dev_run.env()
    assert env["KUBECONFIG"] == str(dev_run.state_dir / "kubeconfig")
    assert env["TEMPORAL_ADDRESS"] == f"127.0.0.1:{dev_run.temporal_port}"
    if with_prometheus:  # Prometheus scrapes kubesim's pod metrics
        assert env["PROMETHEUS_URL"] == f"http://127.0.0.1:{dev_run.prometheus_port}"
        assert f"Prometheus:  {env['PROMETHEUS_URL']}" in up.stdout
        _assert_scraping(env["PROMETHEUS_URL"])
    else:
        assert "PROMETHEUS_URL" not in env and "Prometheus:  not installed" in up.stdout
    for log in ("temporal.log", "kubesim.log", "worker.log"):
        assert (dev_run.state_dir / log).exists()

    # the kubeconfig works with the real kubectl
    kubectl = subprocess.run(
        [str(Path(REPO) / ".venv/bin/kubectl"), "get", "deployments", "-A"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert kubectl.returncode == 0, kubectl.stderr
    seed_commands_on_the_stack(env)

    # the search attributes are registered on the dev server
    sa = subprocess.run(
        [
            str(Path(REPO) / ".venv/bin/temporal"),
            "operator",
            "search-attribute",
            "list",
            "--address",
            env["TEMPORAL_ADDRESS"],
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sa.returncode == 0, sa.stderr
    for name in ("RolloutTarget", "RolloutPhase", "RolloutStep"):
        assert name in sa.stdout

    status = dev_run.run("status")
    assert status.returncode == 0, status.stdout
    lines = status.stdout.splitlines()
    for name in ("temporal", "kubesim", "worker", "controller"):
        line = next(line for line in lines if line.startswith(name))
        assert f"running (pid {procs[name].pid})" in line

    again = dev_run.up()
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert {n: p.pid for n, p in dev_run.procs().items()} == {n: p.pid for n, p in procs.items()}

    down = dev_run.run("down", timeout=90)
    assert down.returncode == 0, down.stderr
    assert not (dev_run.state_dir / "pids.json").exists()
    assert not [n for n, p in procs.items() if is_alive(p)], "a process survived `dev down`"

    after = dev_run.run("status")
    assert after.returncode == 1 and "not running" in after.stdout


def _assert_scraping(url: str) -> None:
    """``up{job="kubesim-pods"}`` is 1 within a few scrapes (polled with a deadline)."""
    query = url + "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="kubesim-pods"}'})

    def up() -> bool:
        with urllib.request.urlopen(query, timeout=5) as resp:
            result = json.loads(resp.read().decode())["data"]["result"]
        return bool(result and result[0]["value"][1] == "1")

    wait_for(up, timeout=30, interval=0.5, what="prometheus scraping kubesim")


def test_port_in_use_is_a_one_line_error(dev_run: DevRun) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", dev_run.kube_port))
        busy.listen()
        result = dev_run.up()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: port {dev_run.kube_port} (kubesim) is already in use"
    ]
    # nothing was started or recorded
    assert not (dev_run.state_dir / "pids.json").exists()


def test_foreground_up_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    t, u, k, p = free_ports(4)
    run = DevRun(state_dir=tmp_path / "fg", temporal_port=t, ui_port=u, kube_port=k, prometheus_port=p)
    proc = subprocess.Popen(
        run.cmd("up", *run.port_args(), "--ready-delay", "0.1"),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    seen: dict[str, Proc] = {}
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:  # read until the stack reports it is up (or the process ends)
            banner += line
            if "Press Ctrl-C" in line:
                break
        assert "dev stack is up" in banner, banner
        seen = read_pids(Layout(state_dir=run.state_dir))[0]
        assert {"controller", "kubesim", "temporal", "worker"} <= set(seen)
        assert all(is_alive(p) for p in seen.values())
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=90)
        assert proc.returncode == 0, rest
        assert "stopping the dev stack" in rest
        assert not [n for n, p in seen.items() if is_alive(p)]
        assert not (run.state_dir / "pids.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop_leftovers(seen)


def test_down_without_stack_and_stale_pid_file(tmp_path: Path) -> None:
    run = DevRun(state_dir=tmp_path / "none", temporal_port=1, ui_port=2, kube_port=3)
    result = run.run("down")
    assert result.returncode == 0 and "not running" in result.stdout
    # a pid file naming a dead process (same PID, other start time) is reported, never signalled
    run.state_dir.mkdir()
    (run.state_dir / "pids.json").write_text(
        json.dumps({"processes": {"worker": {"pid": 1, "startTime": "0", "cmd": []}}, "ports": {}})
    )
    status = run.run("status")
    assert status.returncode == 1
    assert "stopped (pid 1 is gone" in status.stdout
    down = run.run("down")
    assert down.returncode == 0
    assert not (run.state_dir / "pids.json").exists()
