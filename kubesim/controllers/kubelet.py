"""Simulated scheduler and kubelet (reference 2.6).

Each pod goes: bound to ``kubesim-node`` (``spec.nodeName``) and Pending/ContainerCreating -> Running with a
pod IP -> Ready after the ready delay (global, or the pod's ``kubesim.io/ready-delay`` annotation). The
annotations ``kubesim.io/never-ready`` and ``kubesim.io/crash-loop`` model bad releases. Every step is a
separate store write, so watchers see the real MODIFIED stream. A pod with a deletionTimestamp and no
finalizers is removed after a short simulated grace period.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Hashable, Iterable
from typing import Any

from kubesim.controllers.base import Context, Controller
from kubesim.controllers.writes import bind_pod, update_status
from kubesim.errors import ApiError
from kubesim.resources import PODS
from kubesim.store import WatchEvent, now_rfc3339

log = logging.getLogger("kubesim.controllers")

Obj = dict[str, Any]

NODE_NAME = "kubesim-node"
HOST_IP = "172.18.0.2"
READY_DELAY_ANNOTATION = "kubesim.io/ready-delay"
NEVER_READY_ANNOTATION = "kubesim.io/never-ready"
CRASH_LOOP_ANNOTATION = "kubesim.io/crash-loop"
# Grace periods are simulated, capped at this many seconds.
MAX_GRACE = 0.05
# Crash-loop back-off: base * 2**restarts, capped (upstream: 10 s doubling up to 5 min).
CRASH_BACKOFF_CAP = 5


class IpAllocator:
    """Unique pod IPs from 10.244.0.0/16 (.0 and .255 skipped)."""

    def __init__(self) -> None:
        self._next = 0
        self.in_use: set[str] = set()

    def allocate(self) -> str:
        for _ in range(256 * 254):
            n = self._next
            self._next = (self._next + 1) % (256 * 254)
            ip = f"10.244.{n // 254}.{n % 254 + 1}"
            if ip not in self.in_use:
                self.in_use.add(ip)
                return ip
        raise RuntimeError("pod IP range exhausted")

    def release(self, ip: str | None) -> None:
        if ip:
            self.in_use.discard(ip)


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def _condition(type_: str, status: str, when: str, reason: str = "", message: str = "") -> Obj:
    cond: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": when}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _keep_transitions(new: list[Obj], old: list[Obj]) -> list[Obj]:
    """Keep ``lastTransitionTime`` of conditions whose status did not change."""
    before = {c.get("type"): c for c in old}
    for cond in new:
        prev = before.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"]:
            cond["lastTransitionTime"] = prev.get("lastTransitionTime")
    return new


def container_id(pod: Obj, name: str, restarts: int) -> str:
    digest = hashlib.sha256(f"{pod['metadata'].get('uid')}/{name}/{restarts}".encode()).hexdigest()
    return f"containerd://{digest}"


class Kubelet(Controller):
    """Scheduler plus kubelet for the single simulated node."""

    name = "kubelet"
    resync_factor = 10.0

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.ips = IpAllocator()
        # Monotonic start time per pod uid; lost on restart, then the ready delay counts from the reload.
        self._started: dict[str, float] = {}
        self._next_crash: dict[str, float] = {}
        for pod in self.cache.all(PODS):
            ip = (pod.get("status") or {}).get("podIP")
            if ip:
                self.ips.in_use.add(ip)

    def keys(self) -> Iterable[Hashable]:
        return [(p["metadata"].get("namespace", ""), p["metadata"]["name"]) for p in self.cache.all(PODS)]

    def on_event(self, event: WatchEvent, old: Obj | None) -> None:
        if event.resource != PODS:
            return
        meta = event.obj["metadata"]
        if event.type == "DELETED":
            uid = meta.get("uid", "")
            self._started.pop(uid, None)
            self._started.pop(f"term/{uid}", None)
            self._next_crash.pop(uid, None)
            self.ips.release((event.obj.get("status") or {}).get("podIP"))
            return
        self.enqueue((meta.get("namespace", ""), meta["name"]))

    # ---- reconcile -----------------------------------------------------------------------------------------

    def reconcile(self, key: Any) -> None:
        ns, name = key
        pod = self.cache.get(PODS, ns, name)
        if pod is None:
            return
        meta = pod["metadata"]
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            self._terminate(pod)
            return
        if status.get("phase") in ("Succeeded", "Failed"):
            return
        if not (pod.get("spec") or {}).get("nodeName"):
            self._schedule(pod)
            return
        if not status.get("podIP"):
            self._start(pod)
            return
        self._tick(pod, key)

    def _ready_delay(self, pod: Obj) -> float:
        value = (pod["metadata"].get("annotations") or {}).get(READY_DELAY_ANNOTATION)
        if value is not None:
            try:
                return max(0.0, float(value))
            except ValueError:
                log.warning("pod %s: bad %s %r", pod["metadata"]["name"], READY_DELAY_ANNOTATION, value)
        return self.ctx.ready_delay

    def _terminate(self, pod: Obj) -> None:
        meta = pod["metadata"]
        if meta.get("finalizers"):
            return  # whoever owns the finalizers removes them; the store then drops the pod
        uid = meta.get("uid", "")
        grace = min(float(meta.get("deletionGracePeriodSeconds") or 0), MAX_GRACE)
        started = self._started.setdefault(f"term/{uid}", time.monotonic())
        remaining = started + grace - time.monotonic()
        key = (meta.get("namespace", ""), meta["name"])
        if remaining > 0:
            self.enqueue_after(key, remaining)
            return
        self._started.pop(f"term/{uid}", None)
        try:
            self.store.delete(PODS, meta.get("namespace", ""), meta["name"], uid=uid)
        except ApiError as exc:
            if exc.code != 404:
                raise

    def _schedule(self, pod: Obj) -> None:
        """Bind to the node and report Pending with ContainerCreating containers (one binding write)."""
        now = now_rfc3339()
        containers = (pod.get("spec") or {}).get("containers") or []
        # Upstream formats a Go []string: "[a b]".
        names = " ".join(c.get("name", "") for c in containers)
        status = {
            "phase": "Pending",
            "conditions": [
                _condition("PodReadyToStartContainers", "False", now),
                _condition("Initialized", "True", now),
                _condition(
                    "Ready", "False", now, "ContainersNotReady", f"containers with unready status: [{names}]"
                ),
                _condition(
                    "ContainersReady",
                    "False",
                    now,
                    "ContainersNotReady",
                    f"containers with unready status: [{names}]",
                ),
                _condition("PodScheduled", "True", now),
            ],
            "hostIP": HOST_IP,
            "hostIPs": [{"ip": HOST_IP}],
            "startTime": now,
            "containerStatuses": [
                {
                    "name": c.get("name", ""),
                    "image": c.get("image", ""),
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": "ContainerCreating"}},
                    "lastState": {},
                }
                for c in containers
            ],
            "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
        }
        bind_pod(self.store, pod, NODE_NAME, status)
        meta = pod["metadata"]
        self.ctx.recorder.event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {meta.get('namespace', '')}/{meta['name']} to {NODE_NAME}",
            "default-scheduler",
            "Pod",
        )

    def _start(self, pod: Obj) -> None:
        """Containers started: Running with an IP, not yet Ready."""
        ip = self.ips.allocate()
        try:
            self._write_running(pod, ip=ip, ready=False, restarts=0, crashed=False)
        except Exception:
            self.ips.release(ip)
            raise
        uid = pod["metadata"].get("uid", "")
        self._started[uid] = time.monotonic()
        key = (pod["metadata"].get("namespace", ""), pod["metadata"]["name"])
        self.enqueue_after(key, self._ready_delay(pod))

    def _tick(self, pod: Obj, key: Hashable) -> None:
        meta = pod["metadata"]
        annotations = meta.get("annotations") or {}
        uid = meta.get("uid", "")
        started = self._started.setdefault(uid, time.monotonic())
        status = pod.get("status") or {}
        restarts = max(
            (int(cs.get("restartCount") or 0) for cs in status.get("containerStatuses") or []), default=0
        )
        if _truthy(annotations.get(CRASH_LOOP_ANNOTATION, "")):
            base = max(0.1, self._ready_delay(pod))
            due = self._next_crash.setdefault(uid, started + base)
            now = time.monotonic()
            if now < due:
                self.enqueue_after(key, due - now)
                return
            restarts += 1
            self._next_crash[uid] = now + base * 2 ** min(restarts, CRASH_BACKOFF_CAP)
            self._write_running(pod, ip=status["podIP"], ready=False, restarts=restarts, crashed=True)
            for c in (pod.get("spec") or {}).get("containers") or []:
                # Repeated identical events aggregate into one Event with a rising count, like upstream.
                self.ctx.recorder.event(
                    pod,
                    "Warning",
                    "BackOff",
                    f"Back-off restarting failed container {c.get('name', '')} in pod "
                    f"{meta['name']}_{meta.get('namespace', '')}({uid})",
                    "kubelet",
                    "Pod",
                )
            self.enqueue_after(key, self._next_crash[uid] - now)
            return
        if _truthy(annotations.get(NEVER_READY_ANNOTATION, "")):
            return
        if any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        ):
            return  # already Ready: nothing left to simulate
        remaining = started + self._ready_delay(pod) - time.monotonic()
        if remaining > 0:
            self.enqueue_after(key, remaining)
            return
        self._write_running(pod, ip=status["podIP"], ready=True, restarts=restarts, crashed=False)

    def _write_running(self, pod: Obj, *, ip: str, ready: bool, restarts: int, crashed: bool) -> None:
        old_status = pod.get("status") or {}
        now = now_rfc3339()
        containers = (pod.get("spec") or {}).get("containers") or []
        old_cs = {cs.get("name"): cs for cs in old_status.get("containerStatuses") or []}
        statuses = []
        for c in containers:
            cname = c.get("name", "")
            prev = old_cs.get(cname) or {}
            started_at = ((prev.get("state") or {}).get("running") or {}).get("startedAt") or now
            cs: Obj = {
                "name": cname,
                "image": c.get("image", ""),
                "imageID": "",
                "containerID": container_id(pod, cname, restarts),
                "ready": ready,
                "restartCount": restarts,
                "started": not crashed,
                "lastState": {},
            }
            if crashed:
                cs["state"] = {
                    "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": f"back-off restarting failed container={cname} "
                        f"pod={pod['metadata']['name']}",
                    }
                }
                cs["lastState"] = {
                    "terminated": {
                        "exitCode": 1,
                        "reason": "Error",
                        "startedAt": started_at,
                        "finishedAt": now,
                        "containerID": container_id(pod, cname, restarts - 1),
                    }
                }
            else:
                cs["state"] = {"running": {"startedAt": started_at}}
            statuses.append(cs)
        # Upstream formats a Go []string: "[a b]".
        names = " ".join(c.get("name", "") for c in containers)
        unready = "" if ready else f"containers with unready status: [{names}]"
        ready_word = "True" if ready else "False"
        reason = "" if ready else "ContainersNotReady"
        conditions = _keep_transitions(
            [
                _condition("PodReadyToStartContainers", "True", now),
                _condition("Initialized", "True", now),
                _condition("Ready", ready_word, now, reason, unready),
                _condition("ContainersReady", ready_word, now, reason, unready),
                _condition("PodScheduled", "True", now),
            ],
            old_status.get("conditions") or [],
        )
        new = {
            "metadata": pod["metadata"],
            "status": {
                "phase": "Running",
                "conditions": conditions,
                "hostIP": HOST_IP,
                "hostIPs": [{"ip": HOST_IP}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": old_status.get("startTime") or now,
                "containerStatuses": statuses,
                "qosClass": old_status.get("qosClass") or "BestEffort",
            },
        }
        update_status(self.store, PODS, new, owned=True)
