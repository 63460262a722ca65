"""A local Prometheus (Debian's ``prometheus`` package) that scrapes the pods' simulated metrics
(kubesim's, or realk8s' fake kubelet's: the same route and series).

``rollout dev up`` starts it when the binary is installed (``make prometheus`` / ``.ci/run`` install
it); tests start their own on a free port. One scrape job, every second, of
``/kubesim/pod-metrics`` with ``honor_labels`` so the pods' ``namespace``/``pod`` labels stay as
served.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

__all__ = [
    "SCRAPE_INTERVAL",
    "prometheus_binary",
    "prometheus_command",
    "prometheus_ready",
    "prometheus_scraping",
    "start_prometheus",
    "write_config",
]

SCRAPE_INTERVAL = "1s"
METRICS_PATH = "/kubesim/pod-metrics"


def prometheus_binary() -> str | None:
    """``$PROMETHEUS_BIN``, else ``prometheus`` on PATH, else Debian's path; None when not installed."""
    explicit = os.environ.get("PROMETHEUS_BIN")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    found = shutil.which("prometheus")
    if found:
        return found
    return "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None


def write_config(directory: Path, kube_target: str) -> Path:
    """``prometheus.yml`` scraping ``kube_target`` (``host:port`` of kubesim) every second."""
    config = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL,
            "scrape_timeout": SCRAPE_INTERVAL,
            "evaluation_interval": SCRAPE_INTERVAL,
        },
        "scrape_configs": [
            {
                "job_name": "kubesim-pods",
                "honor_labels": True,
                "metrics_path": METRICS_PATH,
                "static_configs": [{"targets": [kube_target]}],
            }
        ],
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_command(binary: str, directory: Path, port: int, kube_target: str) -> list[str]:
    """The command line: config and TSDB under ``directory``, listening on 127.0.0.1:``port``."""
    config = write_config(directory, kube_target)
    return [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'prometheus-data'}",
        "--storage.tsdb.retention.time=1d",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]


def prometheus_ready(url: str) -> bool:
    """True once ``/-/ready`` answers 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/-/ready", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def prometheus_scraping(url: str) -> bool:
    """True once the kubesim job has been scraped (``up == 1``); Prometheus applies its scrape targets
    a few seconds after it is ready, and an analysis that starts before would see no data."""
    query = url.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="kubesim-pods"}'})
    try:
        with urllib.request.urlopen(query, timeout=2) as resp:
            result = json.loads(resp.read()).get("data", {}).get("result") or []
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(r.get("value", [0, "0"])[1] == "1" for r in result)


def start_prometheus(
    binary: str, directory: Path, port: int, kube_target: str, timeout: float = 60
) -> subprocess.Popen[bytes]:
    """Start Prometheus (logging to ``directory/prometheus.log``); return once it scrapes its target.

    The caller stops it by PID (``proc.terminate()``); on a start failure it is stopped here.
    """
    directory.mkdir(parents=True, exist_ok=True)
    log = (directory / "prometheus.log").open("ab")
    proc = subprocess.Popen(
        prometheus_command(binary, directory, port, kube_target),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}"
    while not (prometheus_ready(url) and prometheus_scraping(url)):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            tail = (directory / "prometheus.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"prometheus did not become ready on {url}: {tail}")
        time.sleep(0.2)
    return proc
