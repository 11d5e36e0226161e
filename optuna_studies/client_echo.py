"""Progress lines from Tune's driver back to the user under Ray Client (``ray://`` addresses).

There, Tune runs its driver as an actor on the cluster's head, so the lines ``TrialLog`` prints
as trials start and end would land in the head's logs. ``run_fit`` hands ``TrialLog`` an echo that puts
each line on a small Ray queue and prints them here while ``fit`` runs in a thread. Without Ray
Client, the echo is used directly and ``fit`` runs as it is.
"""
from __future__ import annotations

import threading
from queue import Empty
from typing import Any, Callable

Echo = Callable[[str], None]


def client_connected() -> bool:
    """True when this process reaches the cluster through Ray Client."""
    import ray.util.client

    return ray.util.client.ray.is_connected()


class QueueEcho:
    """A picklable echo that puts lines on a Ray queue; a lost line never stops the search."""

    def __init__(self, queue: Any):
        self.queue = queue

    def __call__(self, line: str) -> None:
        try:
            self.queue.put_nowait(line)
        except Exception:  # noqa: BLE001 (progress is best effort: the trial record is what counts)
            pass


def run_fit(fit: Callable[[Echo], Any], echo: Echo, poll_s: float = 0.5) -> Any:
    """``fit(driver_echo)``, with ``driver_echo``'s lines reaching ``echo`` in this process."""
    if not client_connected():
        return fit(echo)
    from ray.util.queue import Queue

    queue = Queue(actor_options={"num_cpus": 0})
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fit(QueueEcho(queue))
        except BaseException as e:  # noqa: BLE001 (raised again in the calling thread)
            outcome["error"] = e

    worker = threading.Thread(target=target, name="ptv2-tune-fit", daemon=True)
    worker.start()
    try:
        while worker.is_alive() or not queue.empty():
            try:
                echo(queue.get(timeout=poll_s))
            except Empty:
                pass
    except Exception:  # noqa: BLE001 (the connection is gone: fit reports why)
        pass
    worker.join()
    try:
        queue.shutdown()
    except Exception:  # noqa: BLE001 (the cluster ends the actor with the connection anyway)
        pass
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
