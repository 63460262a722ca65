"""`rollout dev up|down|status`: a local stack of Temporal dev server + kubesim (or, with `--cluster real`,
the real kube-apiserver and kube-controller-manager of realk8s/) + worker.

With `--clusters dev,staging,prod` it runs one kubesim (or realk8s) and one `rollout-worker --cluster NAME`
per cluster, beside the base worker (single rollouts on the first cluster, and the releases' parent
workflows); the stack's kubeconfig has one context per cluster, named after it.

Everything lives in one state directory (default `.rollout/`): the Temporal SQLite file, the kubesim
state and kubeconfig, one log per process, `env` (shell exports) and `pids.json`, which records each
process with its PID *and* its kernel start time so that `dev down` never signals a recycled PID.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from devstack.clusters import parse_clusters, write_kubeconfig
from devstack.components import (
    cluster_command,
    controller_command,
    install_crd,
    stack_env,
    temporal_command,
    worker_command,
    write_env_file,
)
from devstack.health import pod_metrics_target, wait_healthy
from devstack.layout import CLUSTERS, COMPONENTS, NAMESPACE, DevError, Layout, kind, stop_order
from devstack.procs import (
    Proc,
    free_ports,
    is_alive,
    port_in_use,
    read_pids,
    recorded_cluster,
    recorded_clusters,
    spawn,
    stop_process,
    write_pids,
)
from devstack.prometheus import SCRAPE_INTERVAL, prometheus_binary, prometheus_command

__all__ = ["build_parser", "cmd_down", "cmd_status", "cmd_up", "main"]


# --- commands -------------------------------------------------------------------------------------


def _print_urls(layout: Layout) -> None:
    print(f"Temporal:    {layout.temporal_address} (namespace {NAMESPACE})")
    print(f"Temporal UI: {layout.ui_url}/namespaces/{NAMESPACE}/workflows")
    if layout.clusters:
        print(f"Kubernetes:  one context per cluster in {layout.kubeconfig} (the first is the default)")
        for server in layout.kube_servers():
            print(f"  {server.context:<12} {server.url}   kubectl --context {server.context} get deploy")
        queues = ", ".join(layout.workers().values())
        print(f"Workers:     task queues {queues} (`rollout-worker --cluster NAME` each)")
    else:
        print(f"Kubernetes:  {layout.kube_url} (kubeconfig {layout.kubeconfig})")
    if layout.prometheus:
        print(f"Prometheus:  {layout.prometheus_url} (scrapes the pods' metrics every {SCRAPE_INTERVAL})")
    else:
        print("Prometheus:  not installed (`make prometheus`); analysis with the web provider still works")
    kube = [s.component for s in layout.kube_servers()]
    logs = ",".join(["temporal", *kube, *layout.workers(), "controller"])
    print(f"Logs:        {layout.state_dir}/{{{logs}}}.log")
    print(f"Environment: . {layout.env_file}")


def _stop_all(procs: dict[str, Proc]) -> None:
    for name in stop_order(list(procs)):
        stop_process(procs[name])


def cmd_up(layout: Layout, detach: bool) -> int:
    layout.state_dir.mkdir(parents=True, exist_ok=True)
    recorded, ports = read_pids(layout)
    alive = {n: p for n, p in recorded.items() if is_alive(p)}
    same_clusters = recorded_clusters(layout) == layout.clusters
    if recorded and len(alive) == len(recorded) and set(layout.required) <= set(alive) and same_clusters:
        print(f"dev stack already running (state dir {layout.state_dir}); `rollout dev status` for details")
        layout.use_recorded(ports, recorded_cluster(layout), layout.clusters)
        _print_urls(layout)
        return 0
    if alive:
        what = "partly running" if same_clusters else "running with other clusters"
        print(f"dev stack {what} ({', '.join(sorted(alive))}); restarting it", file=sys.stderr)
        _stop_all(alive)
    layout.pids_file.unlink(missing_ok=True)
    procs = _start_all(layout)
    write_env_file(layout)
    print(f"dev stack is up (state dir {layout.state_dir})")
    _print_urls(layout)
    sys.stdout.flush()
    if detach:
        print("Stop it with: rollout dev down" + _state_dir_flag(layout))
        return 0
    return _foreground(layout, procs)


def _start_all(layout: Layout) -> dict[str, Proc]:
    """Start every component in order, each once the one before is healthy; on any failure stop them all."""
    # Prometheus scrapes the simulated pod metrics: kubesim's, or the same served by realk8s' fake kubelet.
    prometheus = prometheus_binary()
    layout.prometheus = prometheus is not None
    if layout.clusters:  # the first cluster on --kube-port, the others wherever the OS has room
        others = free_ports(len(layout.clusters) - 1)
        layout.cluster_ports = dict(zip(layout.clusters, [layout.kube_port, *others], strict=True))
    for label, port in (
        ("Temporal gRPC", layout.temporal_port),
        ("Temporal UI", layout.ui_port),
        (layout.kube_component, layout.kube_port),
        *((("Prometheus", layout.prometheus_port),) if prometheus else ()),
    ):
        if port_in_use(port):
            raise DevError(f"port {port} ({label}) is already in use")

    servers = layout.kube_servers()
    kube_cmds = {s.component: cluster_command(layout, s) for s in servers}  # a missing binary fails first
    procs: dict[str, Proc] = {}
    try:
        procs["temporal"] = spawn("temporal", temporal_command(layout), layout)
        for server in servers:
            if server.context:  # a stale file from an earlier run may name another port
                server.kubeconfig.unlink(missing_ok=True)
            procs[server.component] = spawn(server.component, kube_cmds[server.component], layout)
        write_pids(layout, procs)  # recorded at once, so `dev down` can clean up a failed start
        wait_healthy("temporal", procs["temporal"], layout)
        for kube in kube_cmds:
            wait_healthy(kube, procs[kube], layout)
        if layout.clusters:
            write_kubeconfig(layout, servers)
        install_crd(layout)
        if prometheus is not None:
            cmd = prometheus_command(
                prometheus, layout.state_dir, layout.prometheus_port, pod_metrics_target(layout)
            )
            procs["prometheus"] = spawn("prometheus", cmd, layout)
            write_pids(layout, procs)
            wait_healthy("prometheus", procs["prometheus"], layout)
        workers = list(layout.workers())
        for worker in workers:  # `worker-NAME` serves cluster NAME's queue with context NAME
            cmd = worker_command(worker.partition("-")[2] or None)
            procs[worker] = spawn(worker, cmd, layout, env=stack_env(layout))
        layout.controller_ready.unlink(missing_ok=True)
        procs["controller"] = spawn("controller", controller_command(layout), layout, env=stack_env(layout))
        write_pids(layout, procs)
        for worker in workers:
            wait_healthy(worker, procs[worker], layout)
        wait_healthy("controller", procs["controller"], layout)
    except BaseException:
        _stop_all(procs)
        layout.pids_file.unlink(missing_ok=True)
        raise
    return procs


def _state_dir_flag(layout: Layout) -> str:
    default = Path(".rollout").resolve()
    return "" if layout.state_dir == default else f" --state-dir {shlex.quote(str(layout.state_dir))}"


def _foreground(layout: Layout, procs: dict[str, Proc]) -> int:
    """Stay up until Ctrl-C/SIGTERM (then stop everything) or until a component dies."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    print("Press Ctrl-C to stop the stack.")
    sys.stdout.flush()
    rc = 0
    try:
        while not stop.wait(0.5):
            dead = [n for n, p in procs.items() if not is_alive(p)]
            if dead:
                print(
                    f"error: {', '.join(dead)} exited; stopping the stack (see {layout.state_dir})",
                    file=sys.stderr,
                )
                rc = 1
                break
    finally:
        print("stopping the dev stack ...")
        _stop_all(procs)
        layout.pids_file.unlink(missing_ok=True)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return rc


def cmd_down(layout: Layout) -> int:
    procs, _ = read_pids(layout)
    if not procs:
        print(f"dev stack is not running (no {layout.pids_file})")
        return 0
    _stop_all(procs)
    still = [n for n, p in procs.items() if is_alive(p)]
    if still:
        print(f"error: could not stop {', '.join(still)}", file=sys.stderr)
        return 1
    layout.pids_file.unlink(missing_ok=True)
    print(f"dev stack stopped ({', '.join(f'{n} pid {procs[n].pid}' for n in stop_order(list(procs)))})")
    return 0


def cmd_status(layout: Layout) -> int:
    procs, ports = read_pids(layout)
    if not procs:
        print(f"dev stack is not running (no {layout.pids_file})")
        return 1
    layout.use_recorded(ports, recorded_cluster(layout), recorded_clusters(layout))
    where = {
        "temporal": f"{layout.temporal_address}, UI {layout.ui_url}",
        "controller": "Kruise Rollout objects + admission webhook",
        "prometheus": layout.prometheus_url,
    }
    for server in layout.kube_servers():
        where[server.component] = server.url + (f" (context {server.context})" if server.context else "")
    for worker, queue in layout.workers().items():
        where[worker] = f"task queue {queue}"
    names = [*procs, *(n for n in layout.required if n not in procs)]
    width = max(9, *(len(n) for n in names))
    ok = True
    for name in sorted(names, key=lambda n: -COMPONENTS.index(kind(n)) if kind(n) in COMPONENTS else 0):
        proc = procs.get(name)
        if proc is None:
            state, ok = "not started", False
        elif is_alive(proc):
            state = f"running (pid {proc.pid})"
        else:
            state, ok = f"stopped (pid {proc.pid} is gone; see {layout.log(name)})", False
        print(f"{name:<{width}} {state:<40} {where.get(name, '')}")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rollout dev", description="Local Temporal + kubesim + worker stack."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def add_state_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--state-dir", default=".rollout", help="where state, logs and pids live (default .rollout)"
        )

    up = sub.add_parser("up", help="start the stack")
    add_state_dir(up)
    up.add_argument("--detach", action="store_true", help="return once all three are healthy")
    up.add_argument("--temporal-port", type=int, default=7233)
    up.add_argument("--ui-port", type=int, default=8233)
    up.add_argument("--kube-port", type=int, default=6443)
    up.add_argument("--prometheus-port", type=int, default=9090, help="used when prometheus is installed")
    up.add_argument(
        "--cluster",
        choices=sorted(CLUSTERS),
        default="kubesim",
        help="kubesim (default: starts in a second) or real (realk8s: the real kube-apiserver and "
        "kube-controller-manager; build it first with `make realk8s`)",
    )
    up.add_argument(
        "--clusters",
        default="",
        metavar="NAMES",
        help="comma-separated cluster names (e.g. dev,staging,prod): one kubesim (or realk8s) and one "
        "`rollout-worker --cluster NAME` each; the kubeconfig has one context per cluster, the first "
        "is the default and listens on --kube-port",
    )
    up.add_argument(
        "--ready-delay",
        type=float,
        default=None,
        help="seconds until a new pod is Ready (default: the cluster's own, 0.5)",
    )
    add_state_dir(sub.add_parser("down", help="stop the processes started by `dev up`"))
    add_state_dir(sub.add_parser("status", help="report each process of the stack"))
    return parser


def main(argv: list[str]) -> int:
    """Entry point for `rollout dev ...` (argv excludes `dev`)."""
    args = build_parser().parse_args(argv)
    layout = Layout(state_dir=Path(args.state_dir).resolve())
    try:
        if args.command == "up":
            layout.temporal_port, layout.ui_port, layout.kube_port = (
                args.temporal_port,
                args.ui_port,
                args.kube_port,
            )
            layout.ready_delay = args.ready_delay
            layout.prometheus_port = args.prometheus_port
            layout.cluster = args.cluster
            layout.clusters = parse_clusters(args.clusters) if args.clusters else ()
            return cmd_up(layout, detach=args.detach)
        if args.command == "down":
            return cmd_down(layout)
        return cmd_status(layout)
    except DevError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
