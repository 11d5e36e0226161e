"""The CA certificates and the proxy ``ptv2 submit`` uses, read as requests reads them (the health
probe) and handed to kfp's client, which reads neither variable itself."""
from __future__ import annotations

import contextlib
import os
import re

from ptv2_core.errors import Ptv2Error

# the CA certificates to trust, as requests reads them (the health probe): kfp's client reads
# neither, so ``submit`` hands it the same file
CA_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")  # OpenSSL's look-up name of a CA certificate in a folder


def ca_bundle() -> str | None:
    """The CA file or folder named by ``REQUESTS_CA_BUNDLE`` (or ``CURL_CA_BUNDLE``), None when
    unset. A folder, which requests takes too, must hold certificates under OpenSSL's hashed names
    (``openssl rehash``, c_rehash): OpenSSL finds no other file there."""
    for name in CA_ENV:
        path = os.environ.get(name)
        if path:
            if os.path.isdir(path):
                if not hashed_certificates(path):
                    raise Ptv2Error(f"{name} names the folder '{path}', which holds no CA certificate under a hashed "
                                    "name (HHHHHHHH.0): run `openssl rehash` on it, or name one PEM file")
                return path
            if not os.path.isfile(path):
                raise Ptv2Error(f"{name} names '{path}', which is neither a file nor a folder")
            return path
    return None


def hashed_certificates(folder: str) -> list[str]:
    """The CA certificates in ``folder`` OpenSSL would look up: files named HHHHHHHH.N."""
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if HASHED_NAME.fullmatch(n) and os.path.isfile(os.path.join(folder, n)))


@contextlib.contextmanager
def ca_file(ca: str | None):
    """``ca`` as kfp's client takes it: one file. Its urllib3 pool gets ``ssl_ca_cert`` as
    ``ca_certs``, a file (no folder, unlike requests); a folder's certificates are handed over
    joined in a temporary PEM file that lasts as long as the block."""
    if ca is None or not os.path.isdir(ca):
        yield ca
        return
    import tempfile

    with tempfile.NamedTemporaryFile("wb", prefix="ptv2-ca-", suffix=".pem") as out:
        for path in hashed_certificates(ca):
            try:
                with open(path, "rb") as f:
                    out.write(f.read().rstrip(b"\n") + b"\n")
            except OSError as e:
                raise Ptv2Error(f"CA certificate '{path}' cannot be read: {e.strerror or e}") from None
        out.flush()
        yield out.name


def env_proxy(host: str) -> str | None:
    """The proxy the environment names for ``host`` (``HTTPS_PROXY``/``HTTP_PROXY``, ``NO_PROXY``
    honoured), as requests picks it for the health probe: kfp's client reads no such variable."""
    import requests

    return requests.utils.select_proxy(host, requests.utils.get_environ_proxies(host))
