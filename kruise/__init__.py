"""Kruise's Rollout, as this project reads and writes it (pure: no I/O, no CLI, no controller).

- ``manifest``: a ``rollouts.kruise.io/v1beta1`` Rollout as a plan (steps, traffic, analysis names).
- ``traffic``: ``trafficRoutings`` and a step's traffic, and Kruise's traffic rules for any routing.
- ``rollout_object``: a Rollout object in the cluster, which Rollout owns a Deployment, Kruise's texts.
- ``status``: the Rollout's ``status`` from the workflow's status, and the idle status.
- ``spec``: ``spec_for``, the one rule that turns a plan and a Deployment into the workflow input.

It imports only the data model (``workflows.model``/``errors``), the pure ``workflows`` modules and
``kube.names``/``kube.objects``; the CLI, the controller and the activities import it.
"""
