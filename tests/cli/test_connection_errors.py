"""What a newcomer sees when Temporal or Kubernetes cannot be used: one line naming the address or
kubeconfig that was tried, where it came from, and the next step; never the SDK's or urllib3's internals.
``rollout list`` and ``rollout history`` read Temporal only and need no kubeconfig."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import connect

ROLLOUT = Path(sys.executable).parent / "rollout"
INTERNALS = (
    "tonic",
    "Failed client connect",
    "transport::Error",
    "HTTPConnectionPool",
    "MaxRetryError",
    "NewConnectionError",
    "Traceback",
    "urllib3",
)
NEXT_STEP = 'for the local stack, run "rollout dev up", then ". .rollout/env" in this shell'


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A shell with none of the user's settings: an empty HOME, no KUBECONFIG, no TEMPORAL_*."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "KUBECONFIG"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), **extra)
    return env


def _rollout(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROLLOUT), *argv], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
    )


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("rollout: error: "), proc.stderr
    for internal in INTERNALS:
        assert internal not in proc.stderr
    return proc.stderr.strip()


def _temporal_address(temporal_env: Any) -> str:
    return str(temporal_env.client.service_client.config.target_host)


# --- Temporal -------------------------------------------------------------------------------------------


def test_temporal_unreachable_names_the_flag(tmp_path: Path) -> None:
    port = _closed_port()
    text = _one_line_error(_rollout(_env(tmp_path), "status", "web", "--address", f"127.0.0.1:{port}"))
    assert text == (
        f"rollout: error: cannot reach Temporal at 127.0.0.1:{port} (from --address): connection "
        f"refused; {NEXT_STEP}"
    )


def test_temporal_unreachable_names_the_environment_variable(tmp_path: Path) -> None:
    port = _closed_port()
    text = _one_line_error(_rollout(_env(tmp_path, TEMPORAL_ADDRESS=f"127.0.0.1:{port}"), "list"))
    assert f"cannot reach Temporal at 127.0.0.1:{port} (from TEMPORAL_ADDRESS): connection refused" in text


def test_temporal_unreachable_names_the_profile(tmp_path: Path) -> None:
    port = _closed_port()
    profile = tmp_path / "temporal.toml"
    profile.write_text(f'[profile.default]\naddress = "127.0.0.1:{port}"\n')
    text = _one_line_error(_rollout(_env(tmp_path, TEMPORAL_CONFIG_FILE=str(profile)), "history", "web"))
    assert (
        f'cannot reach Temporal at 127.0.0.1:{port} (from profile "default" in {profile}): connection refused'
    ) in text


def test_the_default_address_says_it_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("TEMPORAL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TEMPORAL_CONFIG_FILE", str(tmp_path / "none.toml"))
    address, source = connect.temporal_address(None)
    assert address == "localhost:7233"
    assert source == "the default: no --address, TEMPORAL_ADDRESS or temporal.toml profile"
    assert connect.temporal_address("example.com:7233") == ("example.com:7233", "from --address")


# --- Kubernetes -----------------------------------------------------------------------------------------


def test_list_and_history_need_no_kubeconfig(tmp_path: Path, temporal_env: Any) -> None:
    env = _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env))
    listed = _rollout(env, "list", "-n", "no-such-namespace")
    assert listed.returncode == 0 and listed.stderr == "", listed
    assert listed.stdout.startswith("WORKFLOW ID")
    text = _one_line_error(_rollout(env, "history", "web", "-n", "no-such-namespace"))
    assert "no rollouts found for deployment no-such-namespace/web" in text


def test_no_kubernetes_config_at_all(tmp_path: Path, temporal_env: Any) -> None:
    env = _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env))
    text = _one_line_error(_rollout(env, "status", "web"))
    assert text == (
        "rollout: error: no Kubernetes config: no --kubeconfig, no KUBECONFIG, no "
        f"~/.kube/config, and not running in a cluster; {NEXT_STEP}"
    )


def test_a_missing_kubeconfig_file_is_named(tmp_path: Path, temporal_env: Any) -> None:
    missing = tmp_path / "gone" / "kubeconfig"
    env = _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env), KUBECONFIG=str(missing))
    text = _one_line_error(_rollout(env, "status", "web"))
    assert f"cannot read the kubeconfig {missing} (from KUBECONFIG): the file does not exist" in text
    text = _one_line_error(
        _rollout(
            _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env)),
            "status",
            "web",
            "--kubeconfig",
            str(missing),
        )
    )
    assert f"cannot read the kubeconfig {missing} (from --kubeconfig)" in text


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "local",
                "clusters": [{"name": "local", "cluster": {"server": server}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "me"}}],
                "users": [{"name": "me", "user": {}}],
            }
        )
    )
    return path


def test_an_unknown_context_is_named(tmp_path: Path, temporal_env: Any) -> None:
    path = _kubeconfig(tmp_path, "http://127.0.0.1:1")
    env = _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env), KUBECONFIG=str(path))
    text = _one_line_error(_rollout(env, "status", "web", "--context", "prod"))
    assert text == (
        f"rollout: error: cannot use the kubeconfig {path} (from KUBECONFIG), context prod: "
        'it has no context "prod"'
    )


def test_an_unreachable_api_server_names_the_kubeconfig(tmp_path: Path, temporal_env: Any) -> None:
    port = _closed_port()
    path = _kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
    env = _env(tmp_path, TEMPORAL_ADDRESS=_temporal_address(temporal_env), KUBECONFIG=str(path))
    text = _one_line_error(_rollout(env, "start", "web", "--image", "web=nginx:1.27"))
    assert text == (
        f"rollout: error: cannot reach the Kubernetes API at http://127.0.0.1:{port} "
        f"(kubeconfig {path} from KUBECONFIG, context local): connection refused; {NEXT_STEP}"
    )


def test_the_controller_says_it_in_one_line_too(tmp_path: Path) -> None:
    from kubesim.testing import start_kubesim

    port = _closed_port()
    sim = start_kubesim(tmp_path / "kubesim")  # its own: the controller writes its webhook configuration
    try:
        env = _env(tmp_path, TEMPORAL_ADDRESS=f"127.0.0.1:{port}", KUBECONFIG=sim.kubeconfig)
        proc = subprocess.run(
            [str(ROLLOUT.parent / "rollout-controller"), "--webhook-port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    finally:
        sim.stop()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        f"rollout-controller: error: cannot reach Temporal at 127.0.0.1:{port} (from "
        f"TEMPORAL_ADDRESS): connection refused; {NEXT_STEP}"
    )
    assert "Traceback" not in proc.stderr and "tonic" not in proc.stderr
