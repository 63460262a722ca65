"""Argo CD's own health check for Kruise's Rollout, run the way Argo CD runs it.

Argo CD (``util/lua``) evaluates ``resource_customizations/<group>/<kind>/health.lua`` in a Lua 5.1
interpreter (gopher-lua) with the live object as the global ``obj``; the table the script returns is the
health (``status``, ``message``), and a script error leaves the resource's health ``Unknown`` with the
error as message. Here the script runs in Lua 5.1 through ``lupa``, one fresh interpreter per call, read
from the Go module ``github.com/argoproj/argo-cd/v3`` that ``make argocd`` (tools/argocd/source.sh) puts
in Go's module cache. Nothing of Argo CD is copied into this repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import yaml

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR_FILE = ROOT / "tools" / "bin" / "argocd-source-dir"
KRUISE_ROLLOUT = "resource_customizations/rollouts.kruise.io/Rollout"


@dataclass(frozen=True)
class Health:
    """What Argo CD shows for a resource; ``error`` is the script's error (Argo CD: status Unknown)."""

    status: str
    message: str
    error: str = ""


def check_dir(rel: str = KRUISE_ROLLOUT) -> Path:
    """The directory of one health check in the fetched Argo CD module (``make argocd`` first)."""
    if not SOURCE_DIR_FILE.is_file():
        raise RuntimeError(f"{SOURCE_DIR_FILE.relative_to(ROOT)} is missing: run `make argocd`")
    path = Path(SOURCE_DIR_FILE.read_text().strip()) / rel
    if not (path / "health.lua").is_file():
        raise RuntimeError(
            f"{path}/health.lua is missing (Go's module cache was cleared?): run `make argocd`"
        )
    return path


def _lua_value(lua: Any, value: Any) -> Any:
    """JSON -> Lua as Argo CD decodes objects: maps and lists become tables (lists from index 1)."""
    if isinstance(value, dict):
        return lua.table_from({k: _lua_value(lua, v) for k, v in value.items() if v is not None})
    if isinstance(value, list):
        return lua.table_from([_lua_value(lua, v) for v in value])
    return value


class HealthCheck:
    """One ``health.lua``; call it with an object (the JSON of ``kubectl get -o json``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.script = (directory / "health.lua").read_text()

    def __call__(self, obj: dict[str, Any]) -> Health:
        lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
        lua.globals().obj = _lua_value(lua, obj)
        try:
            out = lua.execute(self.script)
        except lua51.LuaError as exc:
            return Health("Unknown", str(exc), error=str(exc))
        if out is None:
            return Health("", "")
        return Health(str(out["status"] or ""), str(out["message"] or ""))

    def own_cases(self) -> list[tuple[str, dict[str, Any], Health]]:
        """The check's own test table (``health_test.yaml``): (input path, object, expected health)."""
        table = yaml.safe_load((self.directory / "health_test.yaml").read_text())
        cases = []
        for case in table["tests"]:
            want = case["healthStatus"]
            obj = yaml.safe_load((self.directory / case["inputPath"]).read_text())
            cases.append((case["inputPath"], obj, Health(want["status"], want.get("message", ""))))
        return cases
