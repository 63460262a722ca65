"""Unit tests for kubesim.patch: strategic merge, JSON merge and JSON Patch (reference section 3)."""

from __future__ import annotations

import pytest

from kubesim.patch import PatchError, json_patch, merge_patch, strategic_merge


def deployment(*containers: dict) -> dict:
    return {
        "metadata": {"name": "nginx", "labels": {"app": "nginx", "tier": "web"}, "finalizers": ["a"]},
        "spec": {
            "replicas": 3,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            },
            "template": {"spec": {"containers": list(containers)}},
        },
    }


NGINX = {
    "name": "nginx",
    "image": "nginx:1.26",
    "ports": [{"containerPort": 80, "protocol": "TCP"}],
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
}
SIDECAR = {"name": "sidecar", "image": "envoy:1", "args": ["--x", "--y"]}


def containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def test_kubectl_set_image_body_merges_by_name_and_keeps_ports() -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "nginx"}],
                    "containers": [{"image": "nginx:1.27", "name": "nginx"}],
                }
            }
        }
    }
    original = deployment(NGINX)
    out = strategic_merge(original, body)
    assert containers(out) == [{**NGINX, "image": "nginx:1.27"}]
    assert containers(original)[0]["image"] == "nginx:1.26"  # input untouched


def test_set_element_order_reorders_and_keeps_unmentioned_elements() -> None:
    order = [{"name": "sidecar"}, {"name": "nginx"}]
    body = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": order,
                    "containers": [{"name": "sidecar", "image": "envoy:2"}],
                }
            }
        }
    }
    out = strategic_merge(deployment(NGINX, SIDECAR), body)
    assert [c["name"] for c in containers(out)] == ["sidecar", "nginx"]
    assert containers(out)[0]["image"] == "envoy:2"
    assert containers(out)[0]["args"] == ["--x", "--y"]


def test_new_container_is_appended_and_delete_directive_removes_by_key() -> None:
    out = strategic_merge(deployment(NGINX), {"spec": {"template": {"spec": {"containers": [SIDECAR]}}}})
    assert [c["name"] for c in containers(out)] == ["nginx", "sidecar"]
    out = strategic_merge(
        out, {"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}
    )
    assert [c["name"] for c in containers(out)] == ["nginx"]


def test_nested_merge_keys_env_ports_and_atomic_args() -> None:
    body = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "sidecar", "args": ["--z"]},
                        {
                            "name": "nginx",
                            "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                            "ports": [{"containerPort": 443}],
                        },
                    ]
                }
            }
        }
    }
    out = strategic_merge(deployment(NGINX, SIDECAR), body)
    nginx, sidecar = containers(out)
    assert nginx["env"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "3"},
        {"name": "C", "value": "4"},
    ]
    assert [p["containerPort"] for p in nginx["ports"]] == [80, 443]
    assert sidecar["args"] == ["--z"]  # args is atomic: replaced


def test_maps_merge_and_null_deletes_keys() -> None:
    out = strategic_merge(
        deployment(NGINX),
        {"metadata": {"labels": {"tier": None, "track": "canary"}}, "spec": {"paused": True}},
    )
    assert out["metadata"]["labels"] == {"app": "nginx", "track": "canary"}
    assert out["spec"]["paused"] is True
    out = strategic_merge(out, {"spec": {"paused": None}})
    assert "paused" not in out["spec"]


def test_retain_keys_and_replace_directive() -> None:
    body = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}}
    out = strategic_merge(deployment(NGINX), body)
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    out = strategic_merge(deployment(NGINX), {"metadata": {"labels": {"$patch": "replace", "only": "me"}}})
    assert out["metadata"]["labels"] == {"only": "me"}
    out = strategic_merge(
        deployment(NGINX), {"spec": {"template": {"spec": {"containers": [{"$patch": "replace"}, SIDECAR]}}}}
    )
    assert containers(out) == [SIDECAR]


def test_finalizers_are_a_set_and_delete_from_primitive_list() -> None:
    out = strategic_merge(deployment(NGINX), {"metadata": {"finalizers": ["b", "a"]}})
    assert out["metadata"]["finalizers"] == ["a", "b"]
    out = strategic_merge(out, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})
    assert out["metadata"]["finalizers"] == ["b"]


def test_service_ports_merge_by_port_and_conditions_by_type() -> None:
    svc = {
        "spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}]},
        "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "X", "status": "True"}]},
    }
    out = strategic_merge(
        svc,
        {
            "spec": {"ports": [{"port": 80, "targetPort": 9090}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        },
    )
    assert out["spec"]["ports"] == [{"port": 80, "targetPort": 9090}, {"port": 443}]
    assert out["status"]["conditions"][0] == {"type": "Ready", "status": "True"}
    assert len(out["status"]["conditions"]) == 2


def test_missing_merge_key_is_a_bad_request() -> None:
    with pytest.raises(PatchError) as exc:
        strategic_merge(deployment(NGINX), {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert exc.value.code == 400


def test_json_merge_patch_rfc7386() -> None:
    out = merge_patch(
        deployment(NGINX, SIDECAR),
        {
            "spec": {"replicas": 5, "template": {"spec": {"containers": [{"name": "only"}]}}},
            "metadata": {"labels": {"tier": None}},
        },
    )
    assert out["spec"]["replicas"] == 5
    assert containers(out) == [{"name": "only"}]  # lists replace
    assert out["metadata"]["labels"] == {"app": "nginx"}
    assert merge_patch({"a": 1}, "x") == "x"


def test_json_patch_ops_and_escapes() -> None:
    doc = {"metadata": {"annotations": {"a/b": "1", "c~d": "2"}}, "list": [1, 2, 3]}
    out = json_patch(
        doc,
        [
            {"op": "replace", "path": "/metadata/annotations/a~1b", "value": "x"},
            {"op": "remove", "path": "/metadata/annotations/c~0d"},
            {"op": "add", "path": "/list/-", "value": 4},
            {"op": "add", "path": "/list/0", "value": 0},
            {"op": "move", "from": "/list/1", "path": "/moved"},
            {"op": "copy", "from": "/moved", "path": "/copied"},
            {"op": "test", "path": "/copied", "value": 1},
        ],
    )
    assert out == {"metadata": {"annotations": {"a/b": "x"}}, "list": [0, 2, 3, 4], "moved": 1, "copied": 1}
    assert doc["list"] == [1, 2, 3]


@pytest.mark.parametrize(
    "ops, code",
    [
        ([{"op": "test", "path": "/a", "value": 2}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "remove", "path": "/list/9"}], 422),
        ([{"op": "bogus", "path": "/a"}], 400),
        ({"op": "add"}, 400),
    ],
)
def test_json_patch_failures(ops: object, code: int) -> None:
    with pytest.raises(PatchError) as exc:
        json_patch({"a": 1, "list": [1]}, ops)
    assert exc.value.code == code
