"""A pipeline step's shell hands its process over to Python (``exec``), so that signals reach it.

kfp runs a lightweight component as ``sh -ec '...; _KFP_RUNTIME=true python3 -m
kfp.dsl.executor_main ...'`` (``kfp.dsl.component_factory``; no option changes that line). dash, the
images' ``sh``, runs that last command as a child and waits: a SIGTERM to the step's process (a
deleted pod: the container's launcher signals its child; ``ptv2 run``'s SIGINT to its running step)
ended the shell with 143 and left Python running on, orphaned, never told, so the step's own
handling (``components/step_sigterm.py``: one ``error:`` line, exit 143, Ray and the MLflow runs
cleaned up) never ran. ``exec_python`` rewrites that line so that Python takes the shell's place
(the same process, the same PID, the same signals), in the component's spec, which both the
compiled pipeline (``ptv2 compile``) and kfp.local (``ptv2 run``) take the command from.
"""
from __future__ import annotations

import kfp

# kfp's last line of the lightweight component's shell script (kfp.dsl.component_factory)
KFP_LAST_LINE = "_KFP_RUNTIME=true python3 -m kfp.dsl.executor_main"
# the same, exec'd: the variable exported first (kfp reads it at import), then Python replaces the shell
EXEC_LAST_LINE = "export _KFP_RUNTIME=true\nexec python3 -m kfp.dsl.executor_main"


def exec_python(component):
    """``component`` (a ``@dsl.component``), its command's last line made ``exec python3 ...``;
    raises when the command is not kfp's form known here (another kfp version: check it then)."""
    container = component.component_spec.implementation.container
    command = list(container.command or [])
    if len(command) < 3 or command[:2] != ["sh", "-ec"] or command[2].count(KFP_LAST_LINE) != 1:
        raise RuntimeError(f"component {component.name!r}: kfp {kfp.__version__}'s command is not the form "
                           f"components/step_exec.py rewrites (a line '{KFP_LAST_LINE} ...' in 'sh -ec'): "
                           "check how this kfp runs a step, and whether it passes signals on")
    command[2] = command[2].replace(KFP_LAST_LINE, EXEC_LAST_LINE)
    container.command = command
    return component
