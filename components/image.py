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
