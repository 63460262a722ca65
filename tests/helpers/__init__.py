"""Test helpers shared by the test suites (fixtures stay in the conftest files).

- ``poll``: ``wait_for`` / ``assert_eventually`` (poll with a deadline).
- ``cluster``: seed Deployments, ReplicaSet counts and sampler, kubectl, ``Kit``.
- ``worker``: the in-process worker.
- ``kubectl``, ``kubesim_api``, ``kubesim_controllers``: kubesim's own tests.
- ``traffic``: Service/Ingress/HTTPRoute fixtures. ``durability``, ``devserver``: the crash harness.
- ``devstack``, ``ui_stack``, ``cdp_driver``: ``rollout dev`` stacks and the headless browser.
- ``declarative``: the controller + webhook harness and the seed's manifests for declarative mode.
"""
