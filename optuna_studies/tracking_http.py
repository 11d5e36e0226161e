"""MLflow's HTTP client against a tracking server that stops answering (killed, restarting, 503s).

MLflow's defaults (7 retries, backoff factor 2 up to 120 s, 120 s per request) make one call to a
dead server take about 4 minutes (measured: 246 s for a refused connection) before it raises. Each
ptv2 command that talks to a server uses tighter defaults instead, unless the environment sets its
own; a search's trial callbacks also stop calling a server that did not answer until its
``/health`` does again (``Outage``): each trial's start, epoch and end waited its 4 minutes.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator

# Used unless the environment sets them: 3 retries, backoff 0 s, 2 s, 4 s (+ up to 0.5 s jitter),
# 20 s per request. A refused connection therefore fails after about 7 s per call. MLflow also
# writes "🏃 View run … at: …" to stdout as a run ends against a server (one more request, and lines
# in a command's stdout, which holds its result alone).
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",  # no progress bars in command output
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


@contextlib.contextmanager
def bounded_http() -> Iterator[None]:
    """Apply ``HTTP_DEFAULTS`` for the duration (the environment's own values win)."""
    added = [k for k in HTTP_DEFAULTS if k not in os.environ]
    for k in added:
        os.environ[k] = HTTP_DEFAULTS[k]
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def apply_http_defaults() -> None:
    """``HTTP_DEFAULTS`` for the rest of this process (the environment's own values win): for Tune's
    driver, which under Ray Client is a process of its own on the cluster's head."""
    for k, v in HTTP_DEFAULTS.items():
        os.environ.setdefault(k, v)


def is_unreachable(e: BaseException) -> bool:
    """True when MLflow's HTTP layer already retried and the server still did not answer (or kept
    answering 429/5xx)."""
    text = str(e)
    return any(s in text for s in ("Max retries exceeded", "Connection refused", "Failed to establish a new connection",
                                   "Read timed out", "Connection aborted"))


def unreachable_text(e: BaseException) -> str:
    """``server unreachable (connection refused; gave up after 3 retries)``: an ``is_unreachable``
    error in words, without MLflow's wrapped URL and urllib3's pool text."""
    text = str(e)
    kind = ("timed out" if "timed out" in text else "connection refused" if "refused" in text or "Failed to establish"
            in text else "it kept answering HTTP errors" if "ResponseError" in text else "connection failed")
    return f"server unreachable ({kind}; gave up after {os.environ.get('MLFLOW_HTTP_REQUEST_MAX_RETRIES', '7')} retries)"


HEALTH_TIMEOUT_S = 2.0  # one /health probe: a server that answers does so well within it


class Outage:
    """A tracking server that did not answer: until its ``/health`` answers again (probed at most
    every ``every`` seconds, ``timeout`` s each), ``skip()`` is True and the caller leaves MLflow
    alone instead of waiting out MLflow's retries on every call. Only http(s) stores are probed; for
    a database store ``skip()`` is always False."""

    def __init__(self, every: float = 10.0, timeout: float = HEALTH_TIMEOUT_S):
        self.every, self.timeout = every, timeout
        self.down = False
        self._probed = 0.0

    def begin(self, uri: str) -> None:
        if uri.startswith(("http://", "https://")):
            self.down, self._uri, self._probed = True, uri, time.monotonic()

    def skip(self) -> bool:
        """Whether the server is still down; False (and the outage over) once it answers again."""
        if not self.down:
            return False
        if time.monotonic() - self._probed < self.every:
            return True
        self._probed = time.monotonic()
        self.down = not answers(self._uri, self.timeout)
        return self.down


def answers(uri: str, timeout: float) -> bool:
    """Whether the tracking server at ``uri`` gives any HTTP answer at ``/health`` within ``timeout`` s
    (its host alone: no credential is sent)."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    probe = parts._replace(netloc=parts.netloc.rpartition("@")[2], path=parts.path.rstrip("/") + "/health",
                           query="", fragment="").geturl()
    try:
        urllib.request.urlopen(probe, timeout=timeout).close()  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as e:
        return e.code < 500  # a 503 from a server (or proxy) still starting is not an answer yet
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return True
