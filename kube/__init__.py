"""The project's neutral Kubernetes layer: raw-JSON client, object helpers, watch streams, names.

Imported downward by activities, the CLI, bench and tests. ``kube.names`` and ``kube.objects`` are pure
(no client import), so workflow code may use them inside the sandbox.
"""
