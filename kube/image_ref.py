"""Container image references as the kubelet and container runtimes read them.

The kubelet parses a Pod's image with distribution's ``ParseNormalizedNamed`` (``nginx`` is
``docker.io/library/nginx``); a reference it cannot parse never runs (``InvalidImageName``), although the
apiserver stores it. ``docker-image-py`` implements that grammar; this module only words its verdict.
"""

from __future__ import annotations

from docker_image import digest as _digest  # type: ignore[import-untyped]
from docker_image import reference as _reference

_ERRORS = (_reference.InvalidReference, _digest.InvalidDigest)


def image_problem(image: str) -> str | None:
    """What is wrong with ``image`` as an image reference, in the grammar's words; None when it is valid."""
    if not image:
        return "it is empty"
    if any(ch.isspace() for ch in image):
        return "it contains whitespace (invalid reference format)"
    try:
        _reference.Reference.parse_normalized_named(image)
    except _ERRORS as exc:
        return str(exc.args[0] if exc.args else exc) or type(exc).__name__
    return None


def image_error(container: str, image: str) -> str | None:
    """One line naming the container, the reference and what is wrong; None when ``image`` is valid."""
    problem = image_problem(image)
    if problem is None:
        return None
    return f'container "{container}": image "{image}" is not a valid image reference: {problem}'
