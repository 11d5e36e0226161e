"""Errors a user can act on."""


class Ptv2Error(ValueError):
    """A user-facing error: the CLI prints ``error: <message>`` and exits 2, no traceback."""
