"""Ray for a search: join the cluster at ``RAY_ADDRESS`` (or an explicit address), reuse a Ray
this process already started, or start a small local one and stop it afterwards."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator

from ptv2_core.errors import Ptv2Error
from optuna_studies import settings
from optuna_studies.ray_stop import stop_fast
from optuna_studies.ray_token import keep_token_private
from optuna_studies.start_sigint import SigintHeld

# A local Ray takes a 7 GiB object store from /dev/shm unless told otherwise; trials exchange
# only metrics and small adapters.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024**2
# Environment the trial workers need (a cluster's workers do not inherit the driver's).
WORKER_ENV = ("HF_HUB_OFFLINE", "HF_HOME", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "PTV2_SEARCH_TRACE_DIR")


def quiet_auth_notice() -> None:
    """A local Ray starts with token authentication on (Ray's secure default) and says so on
    stderr with every start, adding "Set RAY_AUTH_MODE=disabled to opt out": not something a
    search's user should act on, and a second line after a refusal's one error line."""
    import logging

    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def worker_env() -> dict[str, str]:
    """The driver's settings that trial workers must share."""
    env = {k: os.environ[k] for k in WORKER_ENV if k in os.environ}
    return env | {"TOKENIZERS_PARALLELISM": "false"}


# Ray Client's head starts one server process per connection; now and then that process dies as
# it is forked (a gRPC fork race in Ray's proxier, ray-project/ray#63202, about 1 start in 4 on a
# busy 2-core machine here). The proxier reports it one of two ways: it saw the process exit, or
# the process died between that check and its reading the command line (psutil.ZombieProcess).
# A new connection gets a new process, so the join is tried again.
CLIENT_SERVER_DIED = ("Starting Ray client server failed", "psutil.ZombieProcess")
CLIENT_JOIN_ATTEMPTS = 3


def client_server_died(e: BaseException) -> bool:
    """Whether a Ray Client join failed because the head's server process for it died starting."""
    return isinstance(e, ConnectionAbortedError) and any(sign in str(e) for sign in CLIENT_SERVER_DIED)


def check_answers(target: str, timeout: float = 5.0, given_by: str = "--ray-address") -> None:
    """Ptv2Error when nothing listens at a cluster address ``host:port`` or ``ray://host:port``:
    ``ray.init`` would wait on it for minutes (seen: over 2 minutes for 127.0.0.1:1). Other forms
    ("auto", a bad address) are left to Ray. ``given_by``: what the command takes the address from
    besides ``RAY_ADDRESS``, as its message names it (a pipeline's: "the ray_address parameter")."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(target if "://" in target else f"gcs://{target}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number: Ray's own message names the problem
        return
    if not host or port is None:
        return
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise Ptv2Error(f"nothing answers at the Ray cluster address '{target}' ({e.strerror or e}): start the "
                        f"cluster, or point {given_by} / RAY_ADDRESS at one that runs (neither set: a local Ray)") from None


def _join(ray, target: str, common: dict) -> None:
    for attempt in range(1, CLIENT_JOIN_ATTEMPTS + 1):
        try:
            ray.init(address=target, **common)
            return
        except ConnectionAbortedError as e:  # Ray Client's "Initialization failure from server"
            if not client_server_died(e) or attempt == CLIENT_JOIN_ATTEMPTS:
                raise
            ray.shutdown()
            print(f"note: the Ray Client server at '{target}' died as it started (ray-project/ray#63202); "
                  f"connecting again ({attempt + 1} of {CLIENT_JOIN_ATTEMPTS})", file=sys.stderr, flush=True)
            time.sleep(1.0)


def one_line(e: BaseException) -> str:
    """An error's message on one line. Ray Client's "Initialization failure from server:" is
    followed by the server's traceback, whose last line is the reason: it is kept."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    if not lines:
        return type(e).__name__
    return f"{lines[0]} {lines[-1]}" if len(lines) > 1 and lines[0].endswith(":") else lines[0]


@contextmanager
def sigterm_kept() -> Iterator[None]:
    """Put SIGTERM's handler back after the block when it was a Python function (the ``ptv2`` CLI's:
    ``pipelines/cli/sigterm.py``). ``ray.init`` sets its own: Python's, which exits at once, then,
    as its core worker starts, absl's failure handler, which aborts with a stack dump (exit 134).
    The process's own clean-up then stops Ray (``ray.shutdown`` below, and Ray's atexit hook)."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if callable(previous):
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def sigterm_blocked_for_children() -> Iterator[bool]:
    """Start a local Ray's processes (GCS, raylet, and the workers the raylet forks) with SIGTERM
    blocked, as Ray itself blocks SIGINT in them. A SIGTERM to the command's process group (``timeout``,
    ``kill -- -PGID``, a supervisor stopping the group) killed them at once, beside the driver that
    was to stop the trials and record the stop: it waited 60 s for the dead GCS, then Ray aborted it
    (exit 1, no ``error:`` line), its raylet and workers left running meanwhile. The driver stops them
    itself (``ray_stop.kill_at_once``: SIGKILL, the SIGTERM Ray sends would wait). A SIGTERM that
    arrives while blocked here is taken once the block ends, by the handler in place then. Yields
    whether SIGTERM is blocked (not from a thread other than the main one)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield False
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield True
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                given_by: str = "--ray-address") -> Iterator[None]:
    """Keep Ray connected for the block (what the cluster can hold: ``capacity.check_capacity``).

    ``address`` (else ``RAY_ADDRESS``) joins a running cluster; otherwise a local Ray starts
    with ``num_cpus``/``num_gpus`` (default: all) and stops on exit. A Ray this process
    already runs is used as it is and left running. ``given_by``: the knob ``address`` came from,
    as an unreachable cluster's message names it (``check_answers``).
    """
    import ray

    if ray.is_initialized():
        yield
        return
    target = settings.ray_address(address)
    common = dict(include_dashboard=False, log_to_driver=False, configure_logging=False,
                  runtime_env={"env_vars": worker_env()})
    if target:
        check_answers(target, given_by=given_by)
    # any exception once ray.init has returned reaches ray.shutdown: also a SIGTERM that came as Ray
    # started, whose handler raises as the block below unblocks it (a failed start is left as before)
    started = False
    try:
        try:
            # unblocked after sigterm_kept put ptv2's handler back: a SIGTERM meanwhile goes to it, not Ray's
            # and a Ctrl-C held until ray.init has returned (start_sigint)
            with sigterm_blocked_for_children() as blocked, sigterm_kept(), SigintHeld() as held:
                if target:
                    _join(ray, target, common)
                    started = True
                else:
                    quiet_auth_notice()
                    keep_token_private()  # ~/.ray/auth_token owner-only (Ray writes it with the umask's mode)
                    ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                             object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
                    started = True
                    if blocked:  # Ray's stop would wait a second on each process, for a SIGTERM they do not take
                        stop_fast()
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"the Ray cluster at '{target}'" if target else "a local Ray"
            raise Ptv2Error(f"cannot start or join {where}: {one_line(e)}") from None
        held.release()  # a Ctrl-C that came as Ray started: taken now, Ray stopped below
        yield
    finally:
        if started:
            ray.shutdown()
