"""The local dev stack (``rollout dev up|down|status``, ``make demo``): developer tooling beside the product.

It starts the product's programs as processes (the Temporal dev server, kubesim or realk8s, the workers,
the controller, and Prometheus when installed) and imports nothing of the product but the workflow IDs
and task queues (``workflows.model``) and the root of the one-line failures
(``workflows.errors.CommandError``, which ``DevError`` and ``DemoError`` derive from).

- ``layout.py``: the state directory, ports, component names and ``DevError``.
- ``procs.py``: starting, recording (``pids.json``) and stopping exactly the recorded processes.
- ``components.py``: each component's command line, the Rollout CRD, the environment.
- ``health.py``: when each component counts as up.
- ``stack.py``: ``up``/``down``/``status`` and their parser (``rollout dev`` hands its arguments here).
- ``prometheus.py``: the local Prometheus that scrapes the pods' simulated metrics (kubesim's, or realk8s'
  fake kubelet's); the tests start it too.
- ``clusters.py``: ``--clusters`` names and the kubeconfig with one context per cluster.
- ``demo.py``: ``make demo``, the seed scenario narrated through the command lines a user has.
- ``demo_release.py``: ``make demo-release``, one release across three local clusters.
"""

from devstack.layout import DevError, Layout
from devstack.procs import Proc, is_alive, read_pids, stop_process

__all__ = ["DevError", "Layout", "Proc", "is_alive", "read_pids", "stop_process"]
