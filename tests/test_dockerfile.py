"""The component image's Dockerfile, checked statically (no container engine here): pinned,
non-root, CPU torch by default and CUDA by build argument, the same versions as the project,
a context that holds only what the build needs, and no failed checkov check."""
from __future__ import annotations

import re
import tomllib

import pytest

import k8s_render as kr

DOCKERFILE = kr.ROOT / "Dockerfile"
DOCKERIGNORE = kr.ROOT / ".dockerignore"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def _stages(steps) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(step)
    return stages


def _pyproject() -> dict:
    return tomllib.loads((kr.ROOT / "pyproject.toml").read_text())


def _pin(name: str) -> str:
    for dep in _pyproject()["project"]["dependencies"]:
        m = re.fullmatch(rf"{re.escape(name)}(\[[^\]]*\])?==(\S+)", dep)
        if m:
            return m.group(2)
    raise KeyError(name)


def test_instruction_parser_joins_continuations():
    parsed = instructions("# c\nFROM a:1 AS b\nRUN x \\\n && y\n\nUSER 1\n")
    assert parsed == [("FROM", "a:1 AS b"), ("RUN", "x   && y"), ("USER", "1")]


def test_base_image_is_pinned_and_matches_the_python_pin(steps):
    froms = [args for word, args in steps if word == "FROM"]
    aliases = {f.split()[-1] for f in froms if " AS " in f.upper()}
    external = [f.split()[0] for f in froms if f.split()[0] not in aliases]
    assert external, "no base image"
    for ref in external:
        assert re.fullmatch(r"[\w./-]+:[\w.-]+(@sha256:[0-9a-f]{64})?", ref), f"unpinned base {ref}"
        assert not ref.endswith(":latest")
    # the project is pinned to Python 3.11 (requires-python), so is the image
    assert _pyproject()["project"]["requires-python"].startswith(">=3.11")
    assert all(ref.startswith("python:3.11.") for ref in external)


def test_torch_is_pinned_cpu_by_default_and_cuda_by_build_arg(steps):
    text = " ".join(args for word, args in steps if word in {"ARG", "RUN"})
    assert ("ARG", "TORCH_VARIANT=cpu") in steps
    torch = re.search(r"pip install --index-url \"?https://download\.pytorch\.org/whl/\$\{TORCH_VARIANT\}\"? "
                      r"torch==(\S+)", text)
    assert torch and torch.group(1) == _pin("torch")
    # torch goes in before the project, so `pip install .` finds it satisfied
    runs = [args for word, args in steps if word == "RUN"]
    first_torch = next(i for i, r in enumerate(runs) if "torch==" in r)
    first_project = next(i for i, r in enumerate(runs) if "/src" in r and "pip install" in r)
    assert first_torch < first_project


def test_project_then_assets_without_dependencies(steps):
    run = " ".join(args for word, args in steps if word == "RUN")
    assert "pip install -c /src/constraints.txt /src" in run  # every dependency at its tested version
    assert "pip install --no-deps -r /src/requirements-assets.txt" in run
    assert 'pip install -c /src/constraints.txt "ray[default]==' in run
    # the extras for the cluster roles share the project's Ray pin and are exact
    ray = re.search(r'"ray\[default\]==(\S+?)"', run)
    assert ray and ray.group(1) == _pin("ray")
    for spec in re.findall(r'"([A-Za-z0-9_.\[\],-]+[=<>~!]=?[^"]*)"', run):
        assert "==" in spec, f"unpinned {spec}"


def test_final_stage_runs_as_the_uid_of_the_manifests(steps):
    final = _stages(steps)[-1]
    users = [args for word, args in final if word == "USER"]
    assert users, "final stage has no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000
    # the Kubernetes pods that run this image use the same uid
    uids = set()
    for target in ("base", "rayjob"):
        for doc in kr.render(kr.TARGETS[target]):
            for _, c, pod in kr.containers(doc):
                if c["image"].startswith("ghcr.io/ptv2/ptv2"):
                    uids.add(c.get("securityContext", {}).get("runAsUser", pod.get("securityContext", {}).get("runAsUser")))
    assert uids == {int(uid)}
    # nothing after USER switches back to root
    assert not [a for w, a in final[final.index(("USER", users[-1])):] if w == "USER" and a.split(":")[0] in {"0", "root"}]


def test_build_context_is_an_allow_list_covering_the_packages():
    lines = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "*", "the context starts empty"
    allowed = {ln[1:].rstrip("/") for ln in lines if ln.startswith("!")}
    packages = {p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]}
    files = {"pyproject.toml", "requirements-assets.txt", "constraints.txt"}
    assert packages | files <= allowed, f"not in the build context: {(packages | files) - allowed}"
    assert not allowed & {".venv", ".venv-tools", ".git", "tests", "k8s", "runs", "mlruns"}
    assert {"**/__pycache__", "**/*.db"} <= set(lines)


@pytest.fixture(scope="module")
def checkov_dockerfiles() -> list[dict]:
    """checkov's results for the real Dockerfile (/real/) and kr.PLANTED_DOCKERFILE (/planted/),
    from the session's one checkov run (kr.checkov_scan)."""
    return [dict(r, file=r["file"][len("/docker"):]) for r in kr.checkov_scan() if r["file"].startswith("/docker/")]


def test_checkov_passes_the_dockerfile(checkov_dockerfiles):
    real = [r for r in checkov_dockerfiles if r["file"] == "/real/Dockerfile"]
    assert [r for r in real if r["status"] != "passed"] == []
    assert {"CKV_DOCKER_3", "CKV_DOCKER_7", "CKV_DOCKER_2"} <= {r["check"] for r in real}


def test_checkov_catches_the_planted_dockerfile(checkov_dockerfiles):
    failed = {r["check"] for r in checkov_dockerfiles if r["file"] == "/planted/Dockerfile" and r["status"] == "failed"}
    # no USER (runs as root), :latest base, no HEALTHCHECK
    assert {"CKV_DOCKER_3", "CKV_DOCKER_7", "CKV_DOCKER_2"} <= failed


def test_constraints_agree_with_the_pins_and_the_installed_environment():
    """constraints.txt (dev.py freeze) holds every package at one version: the project's own pins
    among them unchanged, torch without a +cpu label (PyPI has none), and, in the environment the
    tests run in, what is installed (a pin changed in pyproject without a freeze shows here)."""
    import importlib.metadata as md

    lines = [ln for ln in (kr.ROOT / "constraints.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    pins = dict(ln.split("==", 1) for ln in lines)
    assert len(pins) == len(lines) and all("==" in ln for ln in lines)
    canon = {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}
    deps = _pyproject()["project"]["dependencies"] + _pyproject()["project"]["optional-dependencies"]["test"]
    for dep in deps:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", dep)
        assert m, f"pyproject dependency not pinned exactly: {dep}"
        assert canon.get(re.sub(r"[-_.]+", "-", m.group(1)).lower()) == m.group(3), dep
    assert "+" not in pins["torch"] and "ptv2" not in canon
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in md.distributions()}
    differ = {k: (v, installed.get(k)) for k, v in canon.items() if installed.get(k, "").split("+")[0] != v}
    assert not differ, f"constraints.txt and this environment differ (run python3 dev.py freeze?): {differ}"
