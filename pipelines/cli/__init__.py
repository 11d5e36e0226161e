"""``ptv2`` command line. Each command module registers its commands on the shared app.

Bad input anywhere ends as one line on stderr, ``error: <what>``, and exit status 2.
"""
from __future__ import annotations

import sys

import click

from pipelines.cli.app import app
from pipelines.cli import core_cmds  # noqa: F401  (registers train, eval, predict)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    from ptv2_core.errors import Ptv2Error

    try:
        rc = app(args=argv, prog_name="ptv2", standalone_mode=False)
    except click.exceptions.NoArgsIsHelp as e:  # a bare `ptv2` or group: show its help
        print(e.ctx.get_help() if e.ctx else e.format_message())
        rc = 0
    except click.exceptions.UsageError as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        rc = 2
    except click.exceptions.Exit as e:
        rc = e.exit_code
    except click.exceptions.Abort:
        print("error: aborted", file=sys.stderr)
        rc = 130
    except Ptv2Error as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 2
    sys.exit(rc if isinstance(rc, int) else 0)
