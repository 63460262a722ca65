"""`rollout status NAME -w` end to end: piped (not a TTY) it prints plain frames, one per change,
and it exits by outcome (0 Completed, 3 RolledBack, 4 Failed).

The piped case runs the installed `rollout` console script as a subprocess (so `main`'s flush and
`os._exit` are exercised too); the outcome cases run `starter.run` in-process with a StringIO.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.view import EXIT_FAILED, EXIT_ROLLED_BACK
from workflows.model import Phase

ROLLOUT = Path(sys.executable).parent / "rollout"
NEVER_READY = {"kubesim.io/never-ready": "true"}


class _Piped:
    """`rollout status -w` as a subprocess with stdout on a pipe, read by a thread."""

    def __init__(self, kit: Any, *argv: str) -> None:
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": kit.ctx.client.service_client.config.target_host,
            "KUBECONFIG": kit.sim.kubeconfig,
            "TERM": "xterm-256color",  # colour would be allowed on a terminal: the pipe alone turns it off
        }
        env.pop("NO_COLOR", None)
        self.proc = subprocess.Popen(
            [str(ROLLOUT), *argv, "-n", kit.namespace, "--task-queue", kit.ctx.task_queue],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        self._out = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for chunk in iter(lambda: os.read(self.proc.stdout.fileno(), 65536), b""):  # type: ignore[union-attr]
            with self._lock:
                self._out += chunk

    @property
    def text(self) -> str:
        with self._lock:
            return self._out.decode("utf-8", errors="replace")

    def frames(self) -> list[str]:
        """Whole frames so far (each ends with its last pod row; frames are split by a blank line)."""
        text = self.text
        return [
            f for f in re.split(r"(?<=\n)\n(?=Name:)", text) if f.startswith("Name:") and f.endswith("\n")
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self._reader.join(timeout=10)


def _pod_rows(frame: str) -> int:
    return sum(1 for line in frame.splitlines() if "  Pod  " in line)


def _pod_lists(kit: Any, seq: int) -> int:
    """Pod lists in the test's namespace since `seq`: one per poll of the watch (nothing else lists them)."""
    return sum(
        1
        for e in kit.sim.audit(since=seq)
        if e["verb"] == "list" and e["resource"] == "pods" and e["namespace"] == kit.namespace
    )


async def _settled(kit: Any, pods: int) -> None:
    """Wait until the namespace holds exactly `pods` pods, none terminating."""

    def check() -> bool:
        items = kit.kube.list_pods(kit.namespace)
        return len(items) == pods and not any(p["metadata"].get("deletionTimestamp") for p in items)

    await kit.eventually(check, timeout=30, message=f"{pods} settled pods")


@pytest.mark.clusters
async def test_piped_watch_of_paused_rollout_prints_once_per_change_and_exits_0(
    kit: Any, rollout_worker: None
) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli("start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,50%,100%")
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.PAUSED, 1)
    await _settled(kit, 4)

    watch = _Piped(kit, "status", "nginx", "-w")
    try:
        first = await kit.eventually(
            lambda: next((f for f in watch.frames() if _pod_rows(f) >= 4), None),
            timeout=30,
            message="the first frame",
        )
        # The rollout stays paused: let the watch poll three more times, and it prints nothing more.
        seq = kit.audit_seq()
        await kit.eventually(lambda: _pod_lists(kit, seq) >= 3, timeout=20, message="three more polls")
        assert watch.text == first, "a paused rollout must not be reprinted every poll"

        lines = first.splitlines()
        assert "\x1b[" not in first, "no colour or clear-screen codes into a pipe"
        for expected in (
            "Name:            nginx",
            f"Namespace:       {kit.namespace}",
            "Status:          ॥ Paused",
            "Message:         Rollout is in step(1/3), and you need manually confirm to enter the next step",
            "  Step:          1/3 (StepPaused)",
            "Images:          nginx:1.26 (stable)",
            "                 nginx:1.27 (canary)",
            "  Desired:       4",
            "  Updated:       1",
        ):
            assert expected in lines, f"missing {expected!r} in:\n{first}"
        tree = lines[next(i for i, x in enumerate(lines) if x.startswith("NAME")) + 1 :]
        assert tree[0].split() == ["⟳", "nginx", "Rollout", "॥", "Paused"]
        canary_rs = next(x for x in tree if f"⧉ nginx-{st.canary_revision} " in x)
        assert canary_rs.split()[-1] == "canary,replicas:1,ready:1"

        rc, _, err = await kit.cli("approve", "nginx")  # step 1 -> 2 (paused)
        assert rc == 0, err
        await kit.eventually(
            lambda: any("  Step:          2/3 (StepPaused)" in f for f in watch.frames()),
            timeout=30,
            message="a frame paused at step 2",
        )
        rc, _, err = await kit.cli("approve", "nginx")  # step 2 -> 3 (100%: completes)
        assert rc == 0, err
        await kit.eventually(lambda: watch.proc.poll() is not None, timeout=60, message="the watch to exit")
    finally:
        watch.stop()
    assert watch.proc.returncode == 0
    assert watch.proc.stderr is not None and watch.proc.stderr.read() == b""
    frames = watch.frames()
    assert watch.text == "\n".join(frames), "only whole frames, separated by one blank line"
    assert "\x1b[" not in watch.text
    assert "Status:          ✔ Completed" in frames[-1].splitlines()
    ageless = [re.sub(r"\b\d+[smhd]\b", "", f) for f in frames]
    assert all(a != b for a, b in zip(ageless, ageless[1:], strict=False)), "a frame per change only"


def _never_ready_file(kit: Any, tmp_path: Path) -> str:
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(kit.seed(replicas=4, image="nginx:1.27", pod_annotations=NEVER_READY)))
    return str(path)


async def test_watch_exits_4_when_failed_and_3_when_rolled_back(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    await kit.create(kit.seed(replicas=4))
    rc, _, err = await kit.cli(
        "start", "-f", _never_ready_file(kit, tmp_path), "--steps", "1,100%", "--progress-deadline", "2"
    )
    assert rc == 0, err
    # Failed is a live state (the workflow waits for undo or --replace), yet the watch ends non-zero.
    rc, out, err = await asyncio.wait_for(kit.cli("status", "nginx", "-w"), timeout=60)
    assert rc == EXIT_FAILED, err
    assert err.startswith(f"rollout: rollout/{kit.namespace}/nginx is Failed: ") and err.count("\n") == 1
    assert "has timed out progressing" in err
    assert "\x1b[" not in out and "Status:          ✖ Failed" in out.splitlines()
    assert (await kit.status()).phase == Phase.FAILED  # the watch only watched

    rc, _, err = await kit.cli("undo", "nginx")
    assert rc == 0, err

    async def left_failed() -> bool:
        return (await kit.status()).phase != Phase.FAILED

    await kit.eventually(left_failed, timeout=30, message="the undo to start")
    rc, out, err = await asyncio.wait_for(kit.cli("status", "nginx", "-w", "--no-color"), timeout=60)
    assert rc == EXIT_ROLLED_BACK, err
    assert err.startswith(f"rollout: rollout/{kit.namespace}/nginx is RolledBack: ") and err.count("\n") == 1
    assert "Status:          ⚠ RolledBack" in out.split("\n\nName:")[-1].splitlines()


async def test_watch_waits_for_a_worker_instead_of_failing(kit: Any) -> None:
    """No worker answers at first (none polls the rollout's task queue): the watch says so once and
    keeps asking; once a worker starts, the rollout completes and the watch exits 0."""
    import io
    import uuid

    import starter
    from tests.helpers.worker import in_process_worker

    await kit.create(kit.seed(replicas=2))
    queue = f"watch-no-worker-{uuid.uuid4().hex[:8]}"
    common = ["-n", kit.namespace, "--task-queue", queue]
    rc = await starter.run(
        ["start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "100%", *common],
        client=kit.ctx.client,
        api_client=kit.api_client,
        out=io.StringIO(),
        err=io.StringIO(),
    )
    assert rc == 0
    out, err = io.StringIO(), io.StringIO()
    watch = asyncio.create_task(
        starter.run(
            ["status", "nginx", "-w", *common],
            client=kit.ctx.client,
            api_client=kit.api_client,
            out=out,
            err=err,
        )
    )
    await kit.eventually(lambda: "waiting for a worker" in err.getvalue(), timeout=60, message="waiting note")
    assert not watch.done()
    async with in_process_worker(kit.ctx.client, kit.api_client, queue):
        rc = await asyncio.wait_for(watch, timeout=60)
    assert rc == 0, err.getvalue()
    assert err.getvalue().count("waiting for a worker") == 1
    assert "Status:          ✔ Completed" in out.getvalue().splitlines()
