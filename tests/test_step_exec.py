"""A pipeline step's shell execs Python (components/step_exec.py): a SIGTERM to the step's process
reaches the component's Python, which kfp's stock ``sh -ec`` command left running, orphaned."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from components import kfp_components
from components.step_exec import exec_python
from pipelines.cli.sigterm import descendants

REPO = Path(__file__).resolve().parents[1]

# A tiny component, its command made as the pipeline's components' are, run by kfp.local's
# subprocess runner as `ptv2 run` runs a step. (kfp reads a component's source from its file.)
COMPONENT = """
from kfp import dsl
from components.step_exec import exec_python

@exec_python
@dsl.component(base_image="python:3.11", install_kfp_package=False)
def wait_op(flag: str):
    import pathlib, time
    pathlib.Path(flag).write_text("running")
    time.sleep(120)
"""
HARNESS = COMPONENT + """
import sys
from kfp import local

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2], raise_on_error=False)
wait_op(flag=sys.argv[1])
print("harness done", flush=True)
"""


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_every_component_execs_the_same_command_as_the_tested_one(tmp_path):
    """All the pipeline's components carry the exec'd script that the SIGTERM test below runs."""
    import importlib.util

    (tmp_path / "tiny_component.py").write_text(COMPONENT)
    spec = importlib.util.spec_from_file_location("tiny_component", tmp_path / "tiny_component.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tested = module.wait_op.component_spec.implementation.container.command[2]
    assert tested.rstrip().splitlines()[-1].startswith("exec python3 -m kfp.dsl.executor_main "), tested
    components = [v for v in vars(kfp_components).values() if hasattr(v, "component_spec")]
    assert len(components) == 7, [c.name for c in components]
    scripts = {c.name: c.component_spec.implementation.container.command[2] for c in components}
    assert set(scripts.values()) == {tested}, scripts


def test_exec_python_refuses_a_command_of_another_form():
    """A component whose command is not kfp's `sh -ec` form known here (a container component; a kfp
    that builds it otherwise) fails loudly, not with the signal lost again."""
    import pytest
    from kfp import dsl

    @dsl.container_component
    def sleeper():
        return dsl.ContainerSpec(image="python:3.11", command=["sleep", "1"])

    with pytest.raises(RuntimeError, match="is not the form components/step_exec.py rewrites"):
        exec_python(sleeper)
    assert sleeper.component_spec.implementation.container.command == ["sleep", "1"]


def test_sigterm_to_the_steps_process_reaches_python(tmp_path):
    """SIGTERM to the process kfp.local started for the step (the shell, under kfp's stock command)
    ends the component's Python: none is left running. kfp's `sh -ec` ran Python as a child: the
    shell ended with 143 and Python slept on, orphaned."""
    (tmp_path / "harness.py").write_text(HARNESS)
    flag = tmp_path / "running"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(tmp_path / "harness.py"), str(flag), str(tmp_path / "root")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), proc.communicate(timeout=30)[0][-3000:] if proc.poll() is not None else "no step"
        below = descendants(proc.pid)
        step = next(pid for pid in below if _cmdline(pid))  # kfp.local's child: the step's process
        component = [pid for pid in below if "kfp.dsl.executor_main" in _cmdline(pid)]
        assert component, [(pid, _cmdline(pid)) for pid in below]
        os.kill(step, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while any("kfp.dsl.executor_main" in _cmdline(pid) for pid in component) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in component if "kfp.dsl.executor_main" in _cmdline(pid)]
        assert not left, f"the component's Python runs on after SIGTERM to the step's process {step}: {left}"
        out, _ = proc.communicate(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):  # whatever is left (an orphaned step)
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert component == [step], (step, component)  # Python is the step's process itself, not a child of it
    assert "harness done" in out, out[-3000:]  # kfp.local saw the step end (failed) and went on
