"""One tenant's analysis cannot stall another's rollout nor read the metadata service (end to end).

kubesim, the real Temporal dev server and the session worker (in this process, so a blocked event loop
would block the test too). The session worker's allow-list is the test stack's ``127.0.0.0/8``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.helpers.analysis import MetricEndpoint, web_template
from workflows.model import MetricPhase, Phase


async def test_cpu_bomb_condition_does_not_delay_another_rollouts_approval(
    kit: Any, rollout_worker: None, endpoint: MetricEndpoint, tmp_path: Path
) -> None:
    """The review: a CPU-bound analysis held a victim's approval for 7 minutes. Conditions can no longer
    burn CPU (no comprehensions, float powers), so the bomb is a backtracking jsonPath filter regex."""
    endpoint.value = [{"a": "a" * 32 + "!"}]  # `(a+)+$` against it backtracks for minutes
    redos = {"web": {"url": endpoint.url, "jsonPath": '$.rate[?(@.a =~ "(a+)+$")]', "timeoutSeconds": 2}}
    attack = web_template(
        tmp_path / "bomb.yaml", endpoint.url, name="bomb", success="true", extra={"provider": redos}
    )
    await kit.create(kit.seed(name="victim", replicas=2))
    await kit.create(kit.seed(name="web", replicas=2))
    rc, _, err = await kit.cli("start", "victim", "--image", "nginx=nginx:1.27", "--steps", "1,2,100%")
    assert rc == 0, err
    await kit.wait_phase("victim", Phase.PAUSED, 1)
    rc, _, err = await kit.cli(
        "start", "web", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--analysis", attack
    )
    assert rc == 0, err

    async def measuring() -> bool:
        return endpoint.hits >= 1

    await kit.eventually(measuring, timeout=60, message="the attacker's analysis measuring")
    t0 = time.monotonic()
    rc, _, err = await kit.cli("approve", "victim")
    assert rc == 0, err
    await kit.wait_phase("victim", Phase.PAUSED, 2, timeout=60)
    waited = time.monotonic() - t0
    print(f"\nvictim approve -> step 2 while the bomb evaluates: {waited:.2f} s")
    assert waited < 15, waited  # seconds, not the minutes the review measured
    st = await kit.wait_phase("web", Phase.ROLLED_BACK, timeout=90)
    assert "took longer than 2s" in st.message, st.message  # the bomb ends its own rollout as Error
    assert st.analysis is not None and st.analysis.runs[0].phase == MetricPhase.ERROR


async def test_metadata_address_is_refused_and_nothing_is_read_back(
    kit: Any, rollout_worker: None, tmp_path: Path
) -> None:
    url = "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
    ssrf = web_template(tmp_path / "ssrf.yaml", url, name="latency", consecutive_error_limit=0)
    await kit.create(kit.seed(replicas=2))
    rc, _, err = await kit.cli(
        "start", "nginx", "--image", "nginx=nginx:1.27", "--steps", "1,100%", "--analysis", ssrf
    )
    assert rc == 0, err
    st = await kit.wait_phase("nginx", Phase.ROLLED_BACK, timeout=60)
    assert "169.254.169.254 is not on the worker's egress allow-list (ROLLOUT_EGRESS_ALLOW)" in st.message
    _, out, _ = await kit.cli("status", "nginx")
    assert "egress allow-list" in out and "ya29" not in out
