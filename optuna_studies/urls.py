"""Store URLs (Optuna storage, MLflow tracking): the password masked wherever one is shown or
pickled (in the authority, ``user:password@``, or in the query, ``?password=``: libpq and
psycopg2 take it there, PyMySQL ``?passwd=``), the installed driver for a bare ``postgresql://``.

Light on purpose (sqlalchemy only, imported when called): every command's error path masks a URL,
and ``optuna_studies.study`` pulls in optuna and torch.
"""
from __future__ import annotations

import os
import re

from ptv2_core.errors import Ptv2Error

# URLs with a password, by their masked form: in this process's memory only (``keep_secret``)
_KNOWN: dict[str, str] = {}
# query parameters that hold a password (any case): libpq's password and sslpassword, PyMySQL's passwd,
# ODBC's pwd
_QUERY_SECRETS = ("password", "passwd", "pwd", "sslpassword")
# The value runs to '&', '#', whitespace or the end; a quote in it is part of it unless only
# punctuation and then one of those follows (the quote closing a quoted URL: 'url': or "url".), so a
# password holding a quote is masked whole, and one ending in a quote shows that last quote only.
_CLOSING_QUOTE = r"""(?:['"][:,.;)\]]*)?(?:[&#\s]|$)"""
_QUERY_SECRET = re.compile(r"([?&](?:%s)=)[^&#\s]*?(?=%s)" % ("|".join(_QUERY_SECRETS), _CLOSING_QUOTE),
                           re.IGNORECASE)
# ``scheme://user:password@host``: the password runs to the '@' after which the host (up to / ? #) holds no
# '@', so one holding '@' not written %40 is masked whole (sqlalchemy ends it at its first '@', and took
# the rest for the host: ``u:***@rest-of-password@host``); one holding a quote is masked whole too (the
# '@' ends it, not the quote)
_AUTH_PASSWORD = re.compile(r"(://[^:/@\s'\"]*:)(\S*?)@(?=[^@/?#\s'\"]*(?:[/?#\s'\"]|$))")
# ``http(s)://token@host``: an http userinfo without a password is a token (GitHub's ``https://ghp_…@``,
# a server's basic-auth key), masked whole; a database URL's bare user is a role name, shown
_HTTP_TOKEN = re.compile(r"(\bhttps?://)[^:/?#@\s'\"]+@(?=[^@/?#\s'\"]*(?:[/?#\s'\"]|$))", re.IGNORECASE)
# the authority (RFC 3986: up to the first / ? #), and a host with an optional port (IPv6 in brackets)
_AUTHORITY = re.compile(r"[A-Za-z][\w+.-]*://([^/?#\s'\"]*)")
_HOST_PORT = re.compile(r"(?:\[[^\]]*\]|[^:\[\]@]*)(?::\d*)?")


def mask_url(url: str) -> str:
    """The URL with any secret replaced by ``***`` (safe to log and print): the password of
    ``user:password@`` and of ``?password=`` (any scheme), and for http(s) URLs (MLflow tracking
    servers, KFP hosts) a user name that stands alone, ``https://TOKEN@host`` -> ``https://***@host``
    (a token: GitHub's, a server's key). A database URL's user name alone is a role, and is shown:
    ``postgresql://postgres@127.0.0.1/db`` as it is; ``http://user:password@`` keeps its user name."""
    from sqlalchemy.engine import make_url

    if password_holds_at(str(url)):  # sqlalchemy would show the password's part after its first '@'
        return mask_in_text(str(url))
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy can parse: mask anything between "user:" and the last "@"
        shown = re.sub(r"(://[^:/@]*:).*@(?=[^@]*$)", r"\1***@", str(url), flags=re.DOTALL)
    return _HTTP_TOKEN.sub(r"\1***@", _QUERY_SECRET.sub(r"\1***", shown))


def password_holds_at(url: str) -> bool:
    """Whether the password of ``url`` holds an '@' not written ``%40`` (its driver would take the
    part after it for the host name, and say so in its errors)."""
    m = _AUTH_PASSWORD.search(url)
    return bool(m and "@" in m.group(2))


def at_after_host(url: str) -> bool:
    """Whether ``url`` has a host with a port, or an IPv6 host, and after it an '@' in its query
    that SQLAlchemy takes for the end of a ``user:password`` (running from the host over the
    port, the path and the query), and the part after it for the host:
    ``postgresql://db:5432/x?application_name=a@b`` is read as user ``db``, host ``b``."""
    from sqlalchemy.engine import make_url

    m = _AUTHORITY.match(url)
    if not m or "@" not in url[m.end():] or not _HOST_PORT.fullmatch(m.group(1).rsplit("@", 1)[-1]):
        return False
    try:
        password = make_url(url).password
    except Exception:  # not a URL sqlalchemy parses: refused as such elsewhere
        return False
    return password is not None and "?" in password  # it ran into the query ('/' alone: a password may hold one)


def check_password_has_no_at(url: str, what: str) -> None:
    """Ptv2Error for a database URL with an '@' not written ``%40`` where SQLAlchemy takes the part
    after it for the host (which the driver's error then quotes): in its password, or in its query
    after a host with a port (``at_after_host``)."""
    if at_after_host(url):  # shown masked all the same: what SQLAlchemy takes for a password may be one
        raise Ptv2Error(f"the {what} '{mask_in_text(url)}' holds an '@' in its query: write it as %40 (as it is, "
                        "SQLAlchemy would take the part before that '@' for a user name and password, and the part "
                        "after it for the host name)")
    if password_holds_at(url):
        raise Ptv2Error(f"the {what} '{mask_url(url)}' holds '@' in its user name or password: write it as %40 "
                        "(as it is, the part after that '@' would be taken for the host name)")


def mask_in_text(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` and every ``?password=`` in
    it, and every ``http(s)://TOKEN@``'s token, as ``***`` (an error message that quotes the URL it
    failed on); a password holding a quote is masked whole (a quote closes a URL only where
    punctuation alone and then whitespace, '&', '#' or the end follows it)."""
    return _HTTP_TOKEN.sub(r"\1***@", _QUERY_SECRET.sub(r"\1***", _AUTH_PASSWORD.sub(r"\1***@", text)))


def with_driver(url: str) -> str:
    """A bare ``postgresql://`` URL with a driver that is installed: SQLAlchemy 2.1 picks psycopg
    (3) for it, while the pinned environment ships psycopg2."""
    import importlib.util

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername == "postgresql" and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)
    return url


def has_password(url: str) -> bool:
    """Whether ``url`` holds a password, as ``user:password@`` or as a query parameter, or (http(s))
    a token as its user name alone."""
    from sqlalchemy.engine import make_url

    if _HTTP_TOKEN.match(str(url)):
        return True
    try:
        parsed = make_url(url)
        return parsed.password is not None or any(k.lower() in _QUERY_SECRETS for k in parsed.query)
    except Exception:  # unparsable: whatever sits between "user:" and "@" counts
        return mask_url(url) != url


def keep_secret(url: str) -> tuple[str, bool]:
    """What a pickle may hold of ``url``: its masked form and True when it has a password (the URL
    itself is remembered in this process, for ``recall_secret``), else the URL and False."""
    if not has_password(url):
        return url, False
    masked = mask_url(url)
    _KNOWN[masked] = url
    return masked, True


def recall_secret(kept: str, secret: bool, env: str, what: str) -> str:
    """The URL ``keep_secret`` kept as ``kept``: from this process's memory, else from the
    environment variable ``env`` when it holds the same URL (another process: under Ray Client,
    Tune's driver on the Ray head)."""
    if not secret:
        return kept
    if kept in _KNOWN:
        return _KNOWN[kept]
    value = os.environ.get(env)
    if value and mask_url(with_driver(value)) == kept:
        return with_driver(value)
    raise Ptv2Error(f"the {what} {kept} needs its password in this process (under Ray Client, the Ray head, where "
                    f"Tune's driver runs): set {env} there to its URL")
