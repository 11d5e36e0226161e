"""components/image.py: the image reference is defined once and follows the package version."""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from components import image

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_default_reference_is_repo_and_package_version(monkeypatch):
    monkeypatch.delenv("PTV2_IMAGE", raising=False)
    version = _pyproject_version()
    assert image.component_image() == f"ghcr.io/ptv2/ptv2:{version}"
    assert image.component_image(cuda=True) == f"ghcr.io/ptv2/ptv2-cuda:{version}"


def test_installed_metadata_matches_pyproject():
    # If these drift, the image tag and the package a user installs name different builds.
    assert image.package_version() == _pyproject_version()


def test_env_overrides_repository(monkeypatch):
    monkeypatch.setenv("PTV2_IMAGE", "registry.example.com:5000/ml/ptv2")
    version = _pyproject_version()
    # the registry's port is not mistaken for a tag
    assert image.component_image() == f"registry.example.com:5000/ml/ptv2:{version}"
    assert image.component_image(cuda=True) == f"registry.example.com:5000/ml/ptv2-cuda:{version}"


@pytest.mark.parametrize("ref", ["registry.example.com/ml/ptv2:dev-42",
                                 "ghcr.io/ptv2/ptv2@sha256:" + "a" * 64])
def test_env_with_tag_or_digest_is_used_as_is(monkeypatch, ref):
    monkeypatch.setenv("PTV2_IMAGE", ref)
    assert image.component_image() == ref


def test_a_pinned_env_cannot_name_the_cuda_build(monkeypatch):
    """It returned the pinned CPU reference for --cuda too, so `docker build -t "$CUDA_IMAGE"` (docs/deploy.md)
    tagged the CUDA build over the CPU image."""
    ref = "registry.example.com/ml/ptv2:dev-42"
    monkeypatch.setenv("PTV2_IMAGE", ref)
    with pytest.raises(ValueError, match="cannot also name the CUDA build"):
        image.component_image(cuda=True)
    res = subprocess.run([sys.executable, "-m", "components.image", "--cuda"], capture_output=True, text=True,
                         cwd=ROOT, env=dict(os.environ, PTV2_IMAGE=ref))
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("error: PTV2_IMAGE=registry.example.com/ml/ptv2:dev-42 pins one exact image")
    assert len(res.stderr.strip().splitlines()) == 1


def test_falls_back_to_pyproject_when_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(image.metadata, "version", not_installed)
    monkeypatch.setattr(image, "_PYPROJECT", ROOT / "pyproject.toml")
    assert image.package_version() == _pyproject_version()


def test_fallback_fails_loudly_without_a_version(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    bogus = tmp_path / "pyproject.toml"
    bogus.write_text('[tool.x]\nversion = "9.9.9"\n[project]\nname = "ptv2"\n')
    monkeypatch.setattr(image.metadata, "version", not_installed)
    monkeypatch.setattr(image, "_PYPROJECT", bogus)
    # a version in another table must not be taken for the project's
    with pytest.raises(RuntimeError, match="no \\[project\\] version"):
        image.package_version()


def test_module_imports_nothing_heavy():
    # Loaded by file path so the check covers this module alone, not the package's __init__.
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('img', {str(ROOT / 'components' / 'image.py')!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "print(mod.component_image())\n"
        "heavy = {'torch', 'transformers', 'mlflow', 'optuna', 'ray', 'kfp', 'yaml'}\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PTV2_IMAGE"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    ref, heavy = out.stdout.splitlines()
    assert ref.startswith("ghcr.io/ptv2/ptv2:")
    assert heavy == ""


def test_module_prints_the_reference_for_docker_build():
    env = {k: v for k, v in os.environ.items() if k != "PTV2_IMAGE"}
    for args, want in (([], image.IMAGE_REPO), (["--cuda"], image.IMAGE_REPO + "-cuda")):
        out = subprocess.run([sys.executable, "-m", "components.image", *args], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == f"{want}:{_pyproject_version()}"


@pytest.mark.parametrize("ref", ["ptv2", "localhost:5000/ptv2", "registry.example.com:5000/ml/ptv2",
                                 "ghcr.io/ptv2/ptv2:0.1.0-rc_1", "my-registry/ml__team/p.t-v2",
                                 "ghcr.io/ptv2/ptv2:dev@sha256:" + "0123456789abcdef" * 4,
                                 "Registry.Example.com/ml/ptv2"])  # a host name may carry capitals
def test_valid_references_are_accepted(monkeypatch, ref):
    monkeypatch.setenv("PTV2_IMAGE", ref)
    assert image.component_image().startswith(ref)


@pytest.mark.parametrize("ref, why", [
    ("Registry.Example.com/ML/ptv2", "the repository path must be lower case: 'ML'"),
    ("ghcr.io/ptv2/PTV2", "the repository path must be lower case: 'PTV2'"),
    ("ghcr.io//ptv2", "an empty path component"),
    ("ghcr.io/ptv2/-ptv2", "'-ptv2'"),
    ("ghcr.io/ptv2/ptv2:", "the tag ''"),
    ("ghcr.io/ptv2/ptv2:.dev", "the tag '.dev'"),
    ("ghcr.io/ptv2/ptv2:" + "a" * 129, "longer than 128"),
    ("ghcr.io/ptv2/ptv2@sha256:abc", "the digest 'sha256:abc'"),
    ("ghcr.io/ptv2/ptv2@md5:" + "a" * 32, "the digest 'md5:"),
    ("ghcr.io/ptv2/ptv2@sha256:" + "A" * 64, "the digest 'sha256:AAAA"),
    ("registry.example.com:port/ptv2", "the registry 'registry.example.com:port'"),
    ("https://ghcr.io/ptv2/ptv2", "no scheme"),
    ("ghcr.io/ptv2/my image", "'my image'"),
])
def test_an_invalid_reference_is_refused_by_name(monkeypatch, ref, why):
    """PTV2_IMAGE='Registry.Example.com/ML/ptv2 ' compiled into the pipeline as it was, and every
    pod failed later in the cluster with InvalidImageName."""
    monkeypatch.setenv("PTV2_IMAGE", ref)
    with pytest.raises(ValueError) as e:
        image.component_image()
    assert str(e.value).startswith(f"PTV2_IMAGE='{ref}' is not an image reference: ") and why in str(e.value), e.value
    assert "\n" not in str(e.value)


def test_compile_refuses_an_invalid_image_and_writes_nothing(tmp_path):
    out = tmp_path / "p.yaml"
    # a process of its own: components/kfp_components.py reads PTV2_IMAGE once, as it is imported
    # (IMAGE = component_image()); in pytest's process another test may have imported it already
    res = subprocess.run([sys.executable, "-m", "pipelines.cli", "compile", "--out", str(out)], capture_output=True,
                         text=True, cwd=ROOT, env=dict(os.environ, PTV2_IMAGE="Registry.Example.com/ML/ptv2 "),
                         timeout=120)
    assert res.returncode == 2 and res.stdout == "", (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: PTV2_IMAGE='Registry.Example.com/ML/ptv2' is not an image reference: "), res.stderr
    assert list(tmp_path.iterdir()) == []
