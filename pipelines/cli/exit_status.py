"""The exit status of ``python -m pipelines.cli`` after a Ctrl-C it has handled.

CPython 3.11 notes a KeyboardInterrupt that ends code run from a string (``exec``/``eval`` of
source text: ``PyRun_String``, which dataclasses and namedtuple use to build their methods, so
any lazy import runs such code) as one nobody handled, even when a caller catches it later. For
``python -m``, the interpreter then ends by killing itself with SIGINT after its own exit: a
command that printed ``error: interrupted`` and called ``sys.exit(130)`` was seen dying of SIGINT
(status -2 to a parent process, not 130) when Ctrl-C came during such an import. The installed
``ptv2`` script exits another way and is not affected. (Python 3.14 keeps the note only for an
exception that reaches the top level: python/cpython#128130.)
"""
from __future__ import annotations


def forget_handled_interrupt() -> None:
    """Clear the interpreter's note of an unhandled KeyboardInterrupt: the command has handled it.

    Running any source text clears it (CPython resets the note before running a string and sets it
    again only if that string ends with a KeyboardInterrupt); an empty one runs nothing."""
    exec("")  # noqa: S102 (empty: runs nothing; see the module docstring)
