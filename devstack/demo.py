"""`make demo`: the seed scenario, narrated, against the local dev stack.

Brings the stack up detached (harmless when it already runs), applies the 10-replica nginx:1.26
Deployment, rolls it out to nginx:1.27 in batches of 1, 50% and 100%, and at each pause prints the
command it runs and `kubectl get rs -L pod-template-hash` before approving.  It leaves the stack up.
A second run first undoes a rollout left running, then resets the Deployment to nginx:1.26.

Everything goes through the command lines a user has (`rollout`, `kubectl`, `temporal`), so the
demo shows exactly what a reader can type.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from devstack.components import venv_bin
from workflows.errors import CommandError
from workflows.model import workflow_id_for

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "examples" / "nginx.yaml"
NAMESPACE = "default"
NAME = "nginx"
WORKFLOW_ID = workflow_id_for(NAMESPACE, NAME)
STEPS = "1,50%,100%"
WAIT_S = 120.0
RUNNING_PHASES = ("Progressing", "Paused")

BOLD = "\x1b[1m" if sys.stdout.isatty() else ""
RESET = "\x1b[0m" if sys.stdout.isatty() else ""


class DemoError(CommandError):
    """The demo cannot go on; the message says why."""


def say(text: str) -> None:
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def quiet(argv: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
    )


def _exit_abort_only(proc: subprocess.CompletedProcess[str]) -> bool:
    """True when a command printed its result, then died of SIGABRT/SIGSEGV at interpreter exit.

    That is temporalio/sdk-python#300 (the SDK's native threads vs. CPython finalisation: "Fatal
    Python error: PyGILState_Release"); the demo says so rather than failing on a finished command.
    """
    return proc.returncode in (-6, -11, 134, 139) and bool(proc.stdout.strip())


def run(display: str, argv: list[str], env: dict[str, str], *, check: bool = True) -> str:
    """Print `$ display`, run argv, echo its output; raise DemoError on failure when `check`."""
    print(f"$ {display}", flush=True)
    proc = quiet(argv, env, timeout=180)
    if _exit_abort_only(proc):
        print(proc.stdout.rstrip(), flush=True)
        print("(the command completed, then aborted at exit: temporalio/sdk-python#300)", flush=True)
        return proc.stdout
    out = proc.stdout + proc.stderr
    if out.strip():
        print(out.rstrip(), flush=True)
    if check and proc.returncode != 0:
        raise DemoError(f"`{display}` failed with exit code {proc.returncode}")
    return proc.stdout


def wait_until(what: str, check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.3)


def tool(name: str) -> str:
    found = venv_bin(name)
    if not found:
        raise DemoError(f"`{name}` not found; run `make install`")
    return found


def load_env(env_file: Path) -> dict[str, str]:
    """The process environment plus the exports `rollout dev up` wrote."""
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


def status(env: dict[str, str]) -> dict[str, Any] | None:
    """`rollout status nginx -o json`, or None when there is no such rollout (yet)."""
    proc = quiet([tool("rollout"), "status", NAME, "-o", "json"], env)
    if proc.returncode != 0 and not _exit_abort_only(proc):
        return None
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return None
    return result if isinstance(result, dict) else None


def run_id(env: dict[str, str]) -> str:
    """The run ID of the rollout's workflow, for a deep link into the Temporal UI."""
    proc = quiet(
        [
            tool("temporal"),
            "workflow",
            "describe",
            "--workflow-id",
            WORKFLOW_ID,
            "-o",
            "json",
            "--address",
            env["TEMPORAL_ADDRESS"],
            "--namespace",
            env.get("TEMPORAL_NAMESPACE", NAMESPACE),
        ],
        env,
    )
    if proc.returncode != 0:
        return ""
    return str(json.loads(proc.stdout)["workflowExecutionInfo"]["execution"]["runId"])


def replicasets_settled(kubectl: str, env: dict[str, str]) -> bool:
    """Every nginx ReplicaSet has as many current and ready pods as it wants (what a reader expects)."""
    proc = quiet([kubectl, "get", "rs", "-n", NAMESPACE, "-l", f"app={NAME}", "-o", "json"], env)
    if proc.returncode != 0:
        return False
    for rs in json.loads(proc.stdout).get("items", []):
        want = int(rs.get("spec", {}).get("replicas") or 0)
        st = rs.get("status", {})
        if int(st.get("replicas") or 0) != want or int(st.get("readyReplicas") or 0) != want:
            return False
    return True


def show_replicasets(kubectl: str, env: dict[str, str]) -> None:
    wait_until("the ReplicaSets to settle", lambda: replicasets_settled(kubectl, env))
    run(
        "kubectl get rs -L pod-template-hash",
        [kubectl, "get", "rs", "-n", NAMESPACE, "-L", "pod-template-hash"],
        env,
    )


def paused_at(env: dict[str, str], step: int) -> bool:
    st = status(env) or {}
    if st.get("phase") in ("Failed", "RolledBack"):
        raise DemoError(f"the rollout ended in phase {st['phase']}: {st.get('message', '')}")
    return st.get("phase") == "Paused" and st.get("currentStepIndex") == step


def main(argv: list[str] | None = None) -> int:
    """Run the demo; `argv` goes to `rollout dev up --detach` (e.g. `--temporal-port 17233`)."""
    return run_demo(_demo, argv)


def run_demo(demo: Callable[[Path, float, list[str]], int], argv: list[str] | None) -> int:
    """Run one demo, ``demo(state_dir, started, up_args)``; on a ``DemoError`` say where to look."""
    started = time.monotonic()
    state_dir = Path(".rollout").resolve()
    try:
        return demo(state_dir, started, list(argv or []))
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        print(
            f"The stack is left up for a look: logs in {state_dir}/*.log; stop it with `rollout dev down`.",
            file=sys.stderr,
        )
        return exc.exit_code


def _demo(state_dir: Path, started: float, up_args: list[str]) -> int:
    env = _bring_up(state_dir, up_args)
    kubectl, rollout = tool("kubectl"), tool("rollout")
    _clear_earlier_runs(env, kubectl, rollout)
    _apply_seed(env, kubectl)
    _roll_out(env, kubectl, rollout)
    _closing_words(env, state_dir, started)
    return 0


def _bring_up(state_dir: Path, up_args: list[str]) -> dict[str, str]:
    """``rollout dev up --detach`` (harmless when the stack runs); the environment it wrote."""
    say("Start the local stack: Temporal dev server (with Web UI), kubesim, rollout worker and controller")
    print("$ " + shlex.join(["rollout", "dev", "up", "--detach", *up_args]), flush=True)
    up = subprocess.run(
        [tool("rollout"), "dev", "up", "--detach", *up_args], stdin=subprocess.DEVNULL, check=False
    )
    if up.returncode != 0:
        raise DemoError("`rollout dev up --detach` failed")
    return load_env(state_dir / "env")


def _clear_earlier_runs(env: dict[str, str], kubectl: str, rollout: str) -> None:
    """Rollout objects from docs/declarative.md, and a rollout of nginx an earlier run left going."""
    leftover = quiet([kubectl, "get", "rollouts.rollouts.kruise.io", "-n", NAMESPACE, "-o", "name"], env)
    if leftover.returncode == 0 and leftover.stdout.strip():
        say("Rollout objects from docs/declarative.md are here: delete them (their rollouts roll back)")
        run(
            "kubectl annotate rollouts --all rollouts.temporal.io/hand-back=stable",
            [
                kubectl,
                "annotate",
                "rollouts.rollouts.kruise.io",
                "--all",
                "-n",
                NAMESPACE,
                "--overwrite",
                "rollouts.temporal.io/hand-back=stable",
            ],
            env,
        )
        run(
            "kubectl delete rollouts --all",
            [kubectl, "delete", "rollouts.rollouts.kruise.io", "--all", "-n", NAMESPACE, "--timeout=120s"],
            env,
        )
    earlier = status(env)
    if earlier and earlier.get("phase") in RUNNING_PHASES:
        say("A rollout of nginx from an earlier run is still going: undo it first")
        run(f"rollout undo {NAME}", [rollout, "undo", NAME], env)
        wait_until(
            "the earlier rollout to end", lambda: (status(env) or {}).get("phase") not in RUNNING_PHASES
        )


def _apply_seed(env: dict[str, str], kubectl: str) -> None:
    say("Apply the seed's Deployment: 10 replicas of nginx:1.26, RollingUpdate 25%/25%")
    run(f"kubectl apply -f {MANIFEST.relative_to(REPO)}", [kubectl, "apply", "-f", str(MANIFEST)], env)
    run(
        f"kubectl rollout status deployment/{NAME} --timeout=120s",
        [kubectl, "rollout", "status", f"deployment/{NAME}", "-n", NAMESPACE, "--timeout=120s"],
        env,
    )
    show_replicasets(kubectl, env)


def _roll_out(env: dict[str, str], kubectl: str, rollout: str) -> None:
    """Start the rollout, show and approve each pause, and wait for it to complete."""
    say(f"Start the rollout to nginx:1.27 in batches {STEPS}")
    run(
        f"rollout start {NAME} --image nginx=nginx:1.27 --steps {STEPS}",
        [rollout, "start", NAME, "--image", "nginx=nginx:1.27", "--steps", STEPS],
        env,
    )
    for step in (1, 2):
        wait_until(f"step {step}/3 to pause", lambda s=step: paused_at(env, s))  # type: ignore[misc]
        say(f"Step {step}/3 is done and waits for approval")
        show_replicasets(kubectl, env)
        run(f"rollout status {NAME}", [rollout, "status", NAME], env)
        run(f"rollout approve {NAME}", [rollout, "approve", NAME], env)

    wait_until("the rollout to complete", lambda: (status(env) or {}).get("phase") == "Completed")
    say("Step 3/3 (100%) needs no approval: the rollout is complete")
    show_replicasets(kubectl, env)
    run(
        f"kubectl rollout status deployment/{NAME}",
        [kubectl, "rollout", "status", f"deployment/{NAME}", "-n", NAMESPACE, "--timeout=60s"],
        env,
    )


def _closing_words(env: dict[str, str], state_dir: Path, started: float) -> None:
    """The rollout's page in the Temporal UI, what to try next, and how long the demo took."""
    ui = env.get("ROLLOUT_UI_URL", "http://127.0.0.1:8233")
    link = f"{ui}/namespaces/{NAMESPACE}/workflows/{quote(WORKFLOW_ID, safe='')}"
    rid = run_id(env)
    if rid:
        link += f"/{rid}/history"
    say("Done")
    print(
        f"This rollout in the Temporal UI (open the User Metadata tab for its summary and details):\n  {link}"
    )
    rel = os.path.relpath(state_dir / "env")
    print(
        "\nTry `rollout undo` on a second rollout:\n"
        f"  . {rel}                       # KUBECONFIG and TEMPORAL_ADDRESS for this shell\n"
        f"  rollout start {NAME} --image nginx=nginx:1.28 --steps {STEPS}\n"
        f"  rollout status {NAME} -w       # live view; it ends with the rollout (Ctrl-C leaves it)\n"
        f"  rollout undo {NAME}            # all 10 pods back on nginx:1.27\n"
        "\nOr the seed's own commands (a Kruise Rollout object + `kubectl set image`): docs/declarative.md"
        "\nThe stack stays up. Stop it with `rollout dev down` (or `make down`)."
    )
    print(f"\n(demo took {time.monotonic() - started:.0f}s)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
