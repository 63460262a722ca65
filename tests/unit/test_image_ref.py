"""Image references as the kubelet parses them (kube/image_ref.py), and ``--image`` refusing the invalid ones.

The cases are distribution/reference's own tables (normalize_test.go, reference_test.go), read under
``ParseNormalizedNamed``, the parse the kubelet applies to a Pod's image."""

from __future__ import annotations

import pytest

from cli.inputs import parse_images, template_from_deployment_doc
from kube.image_ref import image_error, image_problem
from workflows.errors import InputError

DIGEST = "sha256:" + "f" * 64
HEX64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a"

VALID = [
    "nginx",
    "nginx:1.27",
    "nginx:1.27-alpine",
    f"nginx@{DIGEST}",
    f"nginx:1.27@{DIGEST}",
    "docker/docker",
    "library/debian",
    "localhost/library/debian",
    "localhost/debian",
    "LOCALDOMAIN/library/debian",
    "LOCALDOMAIN/debian",
    "docker.io/docker/docker",
    "docker.io/debian",
    "index.docker.io/library/debian",
    "127.0.0.1:5000/docker/docker",
    "127.0.0.1:5000/debian",
    "192.168.0.1",
    "192.168.0.1:80",
    "192.168.0.1:8/debian",
    "[fc00::1]:5000/docker",
    "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    f"docker.io/{HEX64}",
    "Docker/docker",
    "DOCKER/docker",
    "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    "docker-rules/docker",
    "docker---rules/docker",
    "d/docker",
    "jess/t",
    "dock__er/docker",
    "test_com",
    "test.com:tag",
    "test.com:5000",
    "test.com/repo:tag",
    "test:5000/repo",
    f"test:5000/repo:tag@{DIGEST}",
    "lowercase:Uppercase",
    "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
    "b.gcr.io/test.example.com/my-app:test.example.com",
    "xn--n3h.com/myimage:xn--n3h.com",
    "foo_bar.com:8080",
    "foo/foo_bar.com:8080",
    "[2001:db8::1]:5000/repo:tag",
    "[::1]:5000/repo",
    "registry.k8s.io/pause:3.10",
    "ghcr.io/org/app:v1.2.3_build-4",
]

INVALID = [
    ("nginx 1.27", "whitespace"),
    ("nginx\t", "whitespace"),
    ("NGINX:1.27", "repository name (library/NGINX) must be lowercase"),
    ("docker/Docker", "must be lowercase"),
    ("docker.io/docker/Docker", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("Uppercase:tag", "must be lowercase"),
    ("https://github.com/docker/docker", "invalid reference format"),
    ("-docker", "invalid reference format"),
    ("-docker/docker", "invalid reference format"),
    ("docker///docker", "invalid reference format"),
    ("[fc00::1]:5000", "invalid reference format"),
    ("fc00::1:5000/debian", "invalid reference format"),
    ("[fe80::1%eth0]:5000/debian", "invalid reference format"),
    (HEX64, "cannot specify 64-byte hexadecimal strings"),
    ("docker-/docker", "invalid reference format"),
    ("____/____", "invalid reference format"),
    ("dock..er/docker", "invalid reference format"),
    ("docker/", "invalid reference format"),
    (":justtag", "invalid reference format"),
    (f"@{DIGEST}", "invalid reference format"),
    ("repo@sha256:" + "f" * 34, "invalid checksum digest length"),
    (f"validname@invaliddigest:{'f' * 64}", "unsupported digest algorithm"),
    ("aa/asdf$$^/aa", "invalid reference format"),
    ("domain/" + "a" * 256 + ":tag", "must not be more than 255 characters"),
    ("nginx:" + "a" * 129, "invalid reference format"),
    ("nginx:-1", "invalid reference format"),
    ("", "empty"),
]


@pytest.mark.parametrize("image", VALID)
def test_valid_references(image: str) -> None:
    assert image_problem(image) is None


@pytest.mark.parametrize(("image", "problem"), INVALID)
def test_invalid_references_say_what_is_wrong(image: str, problem: str) -> None:
    found = image_problem(image)
    assert found is not None and problem in found


def test_the_error_names_the_container_the_reference_and_the_problem() -> None:
    assert image_error("nginx", "nginx:1.27") is None
    assert image_error("nginx", "NGINX:1.27") == (
        'container "nginx": image "NGINX:1.27" is not a valid image reference: invalid reference format: '
        "repository name (library/NGINX) must be lowercase"
    )


@pytest.mark.parametrize(
    ("flag", "text"),
    [
        (
            "nginx=nginx 1.27",
            'container "nginx": image "nginx 1.27" is not a valid image reference: it contains whitespace',
        ),
        ("nginx=NGINX:1.27", 'container "nginx": image "NGINX:1.27" is not a valid image reference'),
        ("sidecar=busybox@sha256:abc", 'container "sidecar": image "busybox@sha256:abc"'),
    ],
)
def test_image_flag_refuses_invalid_references(flag: str, text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_images(["app=nginx:1.27", flag])
    assert str(caught.value).startswith(text)
    assert "\n" not in str(caught.value)


def test_image_flag_keeps_valid_references() -> None:
    assert parse_images(["nginx = nginx:1.27 ", f"side=ghcr.io/o/s@{DIGEST}"]) == {
        "nginx": "nginx:1.27",
        "side": f"ghcr.io/o/s@{DIGEST}",
    }


def test_a_deployment_file_with_an_invalid_image_is_refused() -> None:
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [{"name": "web", "image": "Web:2"}],
                }
            }
        },
    }
    with pytest.raises(InputError) as caught:
        template_from_deployment_doc(doc, "web.yaml")
    assert str(caught.value) == (
        'web.yaml: container "web": image "Web:2" is not a valid image reference: '
        "invalid reference format: repository name (library/Web) must be lowercase"
    )
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    assert template_from_deployment_doc(doc, "web.yaml")[0] == "web"
