"""The worker the tests run in-process: the one place tests (other than the worker's own) build it."""

from __future__ import annotations

from kubernetes import client as k8s
from temporalio.client import Client
from temporalio.worker import Worker

from worker import build_worker


def in_process_worker(client: Client, api_client: k8s.ApiClient, task_queue: str) -> Worker:
    """``worker.build_worker``: our workflow and activities on ``task_queue`` (use as ``async with``)."""
    return build_worker(client, api_client, task_queue)
