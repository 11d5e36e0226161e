"""The one place the component image reference is defined.

Every Kubeflow component, the Dockerfile's tag and the Kubernetes manifests use the same image:
``ghcr.io/ptv2/ptv2:<package version>``. The tag is the installed ``ptv2`` version, so a
release of the package and its image move together
(``tests/test_k8s.py::test_kustomize_image_tag_is_the_package_version`` checks that the
kustomization pins the same tag).

Standard library only: the pipeline compiler imports this module, and so do the components'
containers, before anything heavy is loaded.
"""
from __future__ import annotations

import os
import re
from importlib import metadata
from pathlib import Path

IMAGE_REPO = "ghcr.io/ptv2/ptv2"
"""Default image repository; ``PTV2_IMAGE`` overrides it (a mirror or private registry)."""

CUDA_SUFFIX = "-cuda"
"""The CUDA build of the same image lives in ``<repo>-cuda`` with the same tag."""

_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def package_version() -> str:
    """The ``ptv2`` version: installed metadata first, else the source tree's pyproject.toml."""
    try:
        return metadata.version("ptv2")
    except metadata.PackageNotFoundError:
        pass
    # Running from a source checkout that was never installed: read [project] version.
    text = _PYPROJECT.read_text(encoding="utf-8")
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1) if project else "", re.M)
    if not found:
        raise RuntimeError(f"no [project] version in {_PYPROJECT} and ptv2 is not installed")
    return found.group(1)


# The reference grammar container runtimes and the kubelet parse (distribution/reference),
# narrowed to sha256 digests: [host[:port]/]path[:tag][@sha256:<64 hex>]
_HOST = re.compile(r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
                   r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?")
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_SHAPE = "[registry[:port]/]lower-case/path[:tag][@sha256:<64 hex digits>], e.g. registry.example.com/ml/ptv2"


def reference_problem(ref: str) -> str | None:
    """What makes ``ref`` no image reference (one phrase), or None. Caught here, a wrong
    ``PTV2_IMAGE`` stops `ptv2 compile`; compiled in, every pod failed later with InvalidImageName."""
    if "://" in ref:
        return "no scheme (https://) belongs in it"
    name, at, digest = ref.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return f"the digest '{digest}' is not sha256:<64 lower-case hex digits>"
    head, slash, last = name.rpartition("/")  # a tag is a ':' after the last '/' (not a port)
    repo, colon, tag = last.partition(":")
    name = head + slash + repo
    if colon and not _TAG.fullmatch(tag):
        return f"the tag '{tag}' is not letters, digits, '_', '.', '-' (not starting with '.' or '-'), " \
            + ("and is longer than 128" if len(tag) > 128 else "at most 128")
    parts = name.split("/")
    # the first part is a registry when it looks like one (a dot, a port, localhost, capitals)
    if len(parts) > 1 and (any(c in parts[0] for c in ".:") or parts[0] == "localhost" or parts[0] != parts[0].lower()):
        host, parts = parts[0], parts[1:]
        if not _HOST.fullmatch(host):
            return f"the registry '{host}' is not a host name with an optional :port"
    for part in parts:
        if not part:
            return "it has an empty path component ('//' or a '/' at an end)"
        if part != part.lower() and _PATH_COMPONENT.fullmatch(part.lower()):
            return f"the repository path must be lower case: '{part}'"
        if not _PATH_COMPONENT.fullmatch(part):
            return f"the path component '{part}' is not lower-case letters and digits joined by '.', '_', '__' or '-'"
    if len(name) > 255:
        return "the repository name is longer than 255 characters"
    return None


def _has_tag_or_digest(ref: str) -> bool:
    # A tag is a ':' after the last '/', so a registry port (host:5000/ptv2) is not one.
    return "@" in ref or ":" in ref.rsplit("/", 1)[-1]


def component_image(cuda: bool = False) -> str:
    """Image reference for the pipeline's components, e.g. ``ghcr.io/ptv2/ptv2:0.1.0``.

    ``PTV2_IMAGE`` replaces the repository (``registry.example.com/ml/ptv2``); if it already
    carries a tag or digest it is returned unchanged, so a user can pin an exact build.
    ``cuda=True`` names the CUDA build (``<repo>-cuda:<version>``); with a pinned ``PTV2_IMAGE``
    it is a ``ValueError``: the pinned reference names one build, and tagging the CUDA build with
    it would push it over the CPU image.
    """
    override = os.environ.get("PTV2_IMAGE", "").strip()
    problem = reference_problem(override) if override else None
    if problem:
        from ptv2_core.errors import Ptv2Error  # a ValueError too (`python -m components.image`); the CLI's one line

        raise Ptv2Error(f"PTV2_IMAGE='{override}' is not an image reference: {problem}; expected {_SHAPE}")
    if override and _has_tag_or_digest(override):
        if cuda:
            raise ValueError(f"PTV2_IMAGE={override} pins one exact image, so it cannot also name the CUDA build: "
                             "set PTV2_IMAGE to the repository alone (registry.example.com/ml/ptv2) to get "
                             "<repository>-cuda:<version>")
        return override
    repo = override or IMAGE_REPO
    if cuda:
        repo += CUDA_SUFFIX
    return f"{repo}:{package_version()}"


if __name__ == "__main__":  # `python -m components.image [--cuda]`: the tag for `docker build -t`
    import sys

    try:
        print(component_image(cuda="--cuda" in sys.argv[1:]))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
