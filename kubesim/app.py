"""The kubesim runtime: store + HTTP server + controllers + persistence, on one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kubesim import crd, errors
from kubesim.admin import AdminState
from kubesim.controllers import start_controllers
from kubesim.defaults import ClusterIPAllocator
from kubesim.resources import CRDS
from kubesim.server import ApiServer, build_app, parse_request
from kubesim.store import Store, WatchEvent

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
PERSIST_INTERVAL = 1.0


class KubeSim:
    """One emulated cluster. ``await serve()`` runs until ``request_stop()`` (or SIGTERM/SIGINT)."""

    def __init__(self, *, ready_delay: float = 0.5, state_path: Path | None = None) -> None:
        self.ready_delay = ready_delay
        self.state_path = state_path
        self.store = Store()
        self.admin = AdminState()
        self._ips = ClusterIPAllocator()
        self._dirty = False
        self._stop: asyncio.Event | None = None
        self.server: ApiServer | None = None
        self.controllers: Any = None
        self.port = 0

    # -- store bootstrap and persistence ---------------------------------------------------------------------

    def bootstrap(self) -> None:
        """Load ``--state`` if present, then make sure the standard namespaces exist."""
        if self.state_path is not None and self.state_path.exists():
            self.store.load(json.loads(self.state_path.read_text()))
        for name in DEFAULT_NAMESPACES:
            if self.store.peek("namespaces", "", name) is None:
                self.store.create(
                    "namespaces",
                    {
                        "apiVersion": "v1",
                        "kind": "Namespace",
                        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
                        "spec": {"finalizers": ["kubernetes"]},
                        "status": {"phase": "Active"},
                    },
                )
        self.store.subscribe(self._mark_dirty)
        self.store.subscribe(self._serve_crds)

    def _serve_crds(self, event: WatchEvent) -> None:
        """A created/changed CRD serves its custom resources at once; a deleted one takes them away."""
        if event.resource != CRDS:
            return
        if event.type == "DELETED":
            crd.unregister(event.obj, self.store)
        else:
            crd.register(event.obj, self.store)

    def _mark_dirty(self, event: WatchEvent) -> None:
        self._dirty = True

    def persist(self) -> None:
        """Write the store to ``--state`` atomically (temp file + rename)."""
        if self.state_path is None:
            return
        data = json.dumps(self.store.dump(), separators=(",", ":"))
        directory = self.state_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kubesim-state-", dir=directory)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(data)
            os.replace(tmp, self.state_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._dirty = False

    async def _persist_loop(self) -> None:
        while True:
            await asyncio.sleep(PERSIST_INTERVAL)
            if self._dirty:
                self.persist()

    def allocate_cluster_ip(self) -> str:
        in_use = {(s.get("spec") or {}).get("clusterIP", "") for s in self.store.list("services")}
        return self._ips.allocate(in_use)

    # -- serving ---------------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def serve(self, port: int, kubeconfig: Path | None, on_ready: Any = None) -> None:
        """Serve on 127.0.0.1:``port`` until stopped; ``on_ready(url)`` runs once the socket listens."""
        self._stop = asyncio.Event()
        self.bootstrap()
        app, self.server = build_app(
            self.store, self.admin, self.allocate_cluster_ip, [self.admin.middleware(parse_request)]
        )
        # handler_cancellation: a watch whose client went away ends at once instead of at its timeout.
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=2.0, handler_cancellation=True
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            self.controllers = start_controllers(self.store, ready_delay=self.ready_delay)
        except Exception:  # serve the API anyway; the traceback in the log says why nothing reconciles
            traceback.print_exc()
            print("kubesim: controllers failed to start; serving without them", file=sys.stderr, flush=True)
        persister = asyncio.create_task(self._persist_loop())
        url = f"http://127.0.0.1:{self.port}"
        if kubeconfig is not None:
            write_kubeconfig(kubeconfig, url)
        if on_ready is not None:
            on_ready(url)
        try:
            await self._stop.wait()
        finally:
            persister.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await persister
            if self.controllers is not None:
                with contextlib.suppress(Exception):
                    await self.controllers.stop()
            self.server.close_watches()
            await runner.cleanup()
            self.persist()


def write_kubeconfig(path: Path, url: str, name: str = "kubesim") -> None:
    """A kubeconfig with one cluster, one credential-less user and the current context set."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    os.replace(tmp, path)


__all__ = ["KubeSim", "write_kubeconfig", "errors"]
