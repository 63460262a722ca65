"""`make demo-release`: one release across three local clusters, narrated, against the dev stack.

Brings up a three-cluster stack (`rollout dev up --detach --clusters dev,staging,prod`: one kubesim and
one `rollout-worker --cluster NAME` each), applies the 10-replica nginx:1.26 Deployment in every
cluster, and writes a Release with three waves (dev, staging, prod), a short bake after each of the
first two and an approval before staging. It starts the release, shows staging untouched while its
wave waits, approves it, follows `rollout release status -w` until it exits 0 and prints the tree.
Like `make demo` it leaves the stack up; a second run aborts a release an earlier run left going
(`--rollback none`) and resets the Deployments to nginx:1.26.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devstack.demo import (
    BOLD,
    MANIFEST,
    NAME,
    NAMESPACE,
    REPO,
    RESET,
    DemoError,
    load_env,
    quiet,
    run,
    run_demo,
    say,
    tool,
    wait_until,
)
from workflows.model import release_workflow_id

CLUSTERS = ("dev", "staging", "prod")
STEPS = "1,50%,100%"
BAKE = "5s"
WATCH_S = 300.0
RELEASE = {
    "apiVersion": "rollouts.temporal.io/v1alpha1",
    "kind": "Release",
    "metadata": {"name": "nginx-1-27"},
    "spec": {
        "change": {"images": {"nginx": "nginx:1.27"}},
        "defaults": {"steps": STEPS, "pause": "2s", "progressDeadline": "60s", "autoRollback": True},
        "waves": [
            {
                "name": "dev",
                "targets": [{"cluster": "dev", "namespace": NAMESPACE, "deployment": NAME}],
                "bake": BAKE,
            },
            {
                "name": "staging",
                "targets": [{"cluster": "staging", "namespace": NAMESPACE, "deployment": NAME}],
                "bake": BAKE,
                "approval": {"required": True},
            },
            {"name": "prod", "targets": [{"cluster": "prod", "namespace": NAMESPACE, "deployment": NAME}]},
        ],
        "failurePolicy": {"onTargetFailure": "halt", "rollback": "previousWaves"},
    },
}


def main(argv: list[str] | None = None) -> int:
    """Run the demo; `argv` goes to `rollout dev up --detach` (e.g. `--temporal-port 17233`)."""
    return run_demo(_demo, argv)


def _demo(state_dir: Path, started: float, up_args: list[str]) -> int:
    env = _bring_up(state_dir, up_args)
    kubectl, rollout = tool("kubectl"), tool("rollout")
    _end_earlier_releases(env, rollout)
    _apply_seed(env, kubectl)
    rid = f"nginx-1-27-{time.strftime('%H%M%S')}"
    release_file = _write_release(state_dir)
    _release(env, kubectl, rollout, rid, release_file)
    _closing_words(env, rid, started)
    return 0


def _bring_up(state_dir: Path, up_args: list[str]) -> dict[str, str]:
    say("Start a local stack with three clusters: one kubesim and one worker per cluster")
    argv = ["dev", "up", "--detach", "--clusters", ",".join(CLUSTERS), *up_args]
    print("$ " + shlex.join(["rollout", *argv]), flush=True)
    up = subprocess.run([tool("rollout"), *argv], stdin=subprocess.DEVNULL, check=False)
    if up.returncode != 0:
        raise DemoError("`rollout dev up --detach --clusters ...` failed")
    return load_env(state_dir / "env")


def _releases(env: dict[str, str], rollout: str) -> list[dict[str, Any]]:
    proc = quiet([rollout, "release", "list", "-o", "json"], env)
    try:
        rows = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return []
    return rows if isinstance(rows, list) else []


def _end_earlier_releases(env: dict[str, str], rollout: str) -> None:
    """A release an earlier run left going still holds the Deployments: abort it, keeping its waves."""
    running = [r["release"] for r in _releases(env, rollout) if r.get("status") == "RUNNING"]
    for rid in running:
        say(f"Release {rid} from an earlier run is still going: abort it")
        run(
            f"rollout release abort {rid} --rollback none",
            [rollout, "release", "abort", rid, "--rollback", "none"],
            env,
        )
    if running:
        wait_until(
            "the earlier releases to end",
            lambda: not any(r.get("status") == "RUNNING" for r in _releases(env, rollout)),
        )


def _apply_seed(env: dict[str, str], kubectl: str) -> None:
    say("In each cluster, the seed's Deployment: 10 replicas of nginx:1.26")
    manifest = str(MANIFEST.relative_to(REPO))
    for cluster in CLUSTERS:
        ctx = ["--context", cluster]
        run(
            f"kubectl --context {cluster} apply -f {manifest}",
            [kubectl, *ctx, "apply", "-f", str(MANIFEST)],
            env,
        )
    for cluster in CLUSTERS:
        run(
            f"kubectl --context {cluster} rollout status deployment/{NAME}",
            [kubectl, "--context", cluster, "rollout", "status", f"deployment/{NAME}", "--timeout=120s"],
            env,
        )


def _write_release(state_dir: Path) -> Path:
    import yaml

    path = state_dir / "release-nginx.yaml"
    path.write_text(yaml.safe_dump(RELEASE, sort_keys=False))
    say("The Release: three waves, a bake after dev and staging, an approval before staging")
    print(f"$ cat {os.path.relpath(path)}")
    print(path.read_text().rstrip(), flush=True)
    return path


def _phase(env: dict[str, str], rollout: str, rid: str) -> dict[str, Any]:
    proc = quiet([rollout, "release", "status", rid, "-o", "json"], env)
    try:
        st = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {}
    if st.get("phase") in ("RolledBack", "Failed", "Aborted"):
        raise DemoError(f"release {rid} ended {st['phase']}: {st.get('message', '')}")
    return st if isinstance(st, dict) else {}


def _release(env: dict[str, str], kubectl: str, rollout: str, rid: str, release_file: Path) -> None:
    say("Start the release: every target is checked in its own cluster (kubeconfig context) first")
    run(
        f"rollout release start -f {os.path.relpath(release_file)} --id {rid}",
        [rollout, "release", "start", "-f", str(release_file), "--id", rid],
        env,
    )
    wait_until(
        "the staging wave to wait for approval",
        lambda: _phase(env, rollout, rid).get("phase") == "WaitingApproval",
        timeout=180,
    )
    say("dev is released and baked; staging waits for an approval and nothing has touched it")
    run(f"rollout release status {rid}", [rollout, "release", "status", rid], env)
    run(
        "kubectl --context staging get rs -L pod-template-hash",
        [kubectl, "--context", "staging", "get", "rs", "-n", NAMESPACE, "-L", "pod-template-hash"],
        env,
    )
    run(
        f"rollout release approve {rid} --wave staging",
        [rollout, "release", "approve", rid, "--wave", "staging"],
        env,
    )

    say("staging, its bake, then prod: `status -w` follows the release until it ends")
    print(f"$ rollout release status {rid} -w", flush=True)
    try:
        watch = quiet([rollout, "release", "status", rid, "-w"], env, timeout=WATCH_S)
    except subprocess.TimeoutExpired as exc:
        raise DemoError(f"the release did not end within {WATCH_S:.0f}s") from exc
    if watch.returncode != 0:
        raise DemoError(
            f"`rollout release status {rid} -w` exited {watch.returncode}: {watch.stderr.strip()}"
        )
    final = watch.stdout.rstrip().rsplit("\n\n", 1)[-1]
    print(final)
    print(f"{BOLD}(exit 0: the release is Completed){RESET}", flush=True)
    for cluster in CLUSTERS:
        run(
            f"kubectl --context {cluster} get deploy {NAME} -o wide",
            [kubectl, "--context", cluster, "get", "deploy", NAME, "-n", NAMESPACE, "-o", "wide"],
            env,
        )


def _closing_words(env: dict[str, str], rid: str, started: float) -> None:
    ui = env.get("ROLLOUT_UI_URL", "http://127.0.0.1:8233")
    say("Done")
    link = f"{ui}/namespaces/{NAMESPACE}/workflows/{quote(release_workflow_id(rid), safe='')}"
    print(f"The release in the Temporal UI:\n  {link}")
    print(
        "Its targets, one child workflow each, in the UI's workflow list:\n"
        f'  ReleaseId="{rid}"\n'
        "\nTry it yourself:\n"
        "  . .rollout/env                     # KUBECONFIG (contexts dev, staging, prod), TEMPORAL_ADDRESS\n"
        f"  rollout release revert {rid}    # every target back to nginx:1.26, as a new release\n"
        f"  rollout release status {rid}-revert -w\n"
        "\nThe stack stays up. Stop it with `rollout dev down` (or `make down`)."
    )
    print(f"\n(demo took {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
