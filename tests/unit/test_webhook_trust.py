"""Security review F9: only our ServiceAccounts may mark a hand-back that the webhook lets through.

The reproduction: a Deployment editor writes ``rollouts.temporal.io/handing-back`` and then a new
image; before, the second write passed the webhook unheld and the native controller rolled every pod.
"""

from __future__ import annotations

from typing import Any

from declarative.webhook import hold
from tests.unit.test_declarative_pure import dep, stable

HANDING_BACK = "rollouts.temporal.io/handing-back"


def test_an_untrusted_handing_back_mark_is_reverted() -> None:
    out = hold(dep(), dep(**{HANDING_BACK: "me"}), "rollouts-nginx", stable, trusted=False)
    assert out is not None and HANDING_BACK not in out["metadata"]["annotations"]


def test_a_template_change_under_an_untrusted_mark_is_still_held() -> None:
    old = dep(**{HANDING_BACK: "me"})  # stored before this check existed
    new = dep("nginx:9.9-unreviewed", **{HANDING_BACK: "me"})
    out = hold(old, new, "rollouts-nginx", stable, trusted=False)
    assert out is not None
    assert out["spec"]["paused"] is True and out["spec"]["strategy"] == {"type": "Recreate"}


def test_our_service_accounts_hand_back_as_before() -> None:
    old: dict[str, Any] = dep(**{HANDING_BACK: "rollout/ns/nginx"})
    assert hold(old, dep("nginx:1.27"), "rollouts-nginx", stable, trusted=True) is None
    marked = hold(dep(), dep(**{HANDING_BACK: "rollout/ns/nginx"}), "rollouts-nginx", stable, trusted=True)
    assert marked is None  # the mark itself is stored as written
