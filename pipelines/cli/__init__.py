"""``ptv2`` command line. Each command module registers its commands on the shared app.

Bad input anywhere ends as one line on stderr, ``error: <what>``, and exit status 2.
"""
from __future__ import annotations

import errno
import sys
import threading

import typer
# typer >= 0.20 vendors its own click; its exception types live here, not in `click`
from typer._click import exceptions as cx

from pipelines.cli.app import app
from pipelines.cli import broken_pipe, sigterm, unraisable
from pipelines.cli.exit_status import forget_handled_interrupt
from pipelines.cli import train_cmds  # noqa: F401  (registers train)
from pipelines.cli import eval_cmds  # noqa: F401  (registers eval)
from pipelines.cli import predict_cmds  # noqa: F401  (registers predict)
from pipelines.cli import search_cmds  # noqa: F401  (registers search)
from pipelines.cli import registry_cmds  # noqa: F401  (registers register, promote, ui, and versions through versions_cmd)
from pipelines.cli import pretrain_cmds  # noqa: F401  (registers pretrain)
from pipelines.cli import pipeline_cmds  # noqa: F401  (registers run, compile, submit)


# options whose empty value is documented to mean something (in their help): not refused
EMPTY_IS_A_VALUE = {"submit": {"--service-account"}}  # empty: no account named, the namespace's default


def empty_option(argv: list[str]) -> str | None:
    """What to say about the first option given an empty value (``--name ""``, ``--study-name=``),
    or None. An empty value meant "the default" for some options and an error deep inside for
    others; in a script it is mostly a variable that was never set, so it is refused, by name
    (except the few in ``EMPTY_IS_A_VALUE``, whose help says what empty means)."""
    command = typer.main.get_command(app)
    sub = getattr(command, "commands", {}).get(argv[0]) if argv else None
    if sub is None:
        return None
    takes_value = {name: p.required for p in sub.params if getattr(p, "param_type_name", "") == "option"
                   and not (p.is_flag or p.count) for name in p.opts
                   if name not in EMPTY_IS_A_VALUE.get(argv[0], ())}
    for i, arg in enumerate(argv[1:], 1):
        if arg == "--":
            break
        name, eq, value = arg.partition("=")
        if name in takes_value and ((eq and value == "") or (not eq and i + 1 < len(argv) and argv[i + 1] == "")):
            return f"{name} is empty: give it a value" + ("" if takes_value[name] else ", or leave it out for its default")
    return None


def stopped(message: str = "interrupted") -> int:
    """Print the line of a command stopped by Ctrl-C, or by SIGTERM (handled alike: ``sigterm``),
    and return its exit status: 130 (128 + SIGINT) or 143 (128 + SIGTERM)."""
    if not sigterm.received():
        print(f"error: {message}", file=sys.stderr)
        return 130
    rest = message[len("interrupted"):] if message.startswith("interrupted") else f"; {message}"
    print(f"error: terminated (SIGTERM){rest}", file=sys.stderr)
    sigterm.wait_for_children()
    return 143


def no_room(e: BaseException) -> OSError | None:
    """The write that found no room (no space left, over a quota or the file size limit) behind
    ``e``: ``e`` itself, or what an OSError or Ray Tune's TuneError (which wraps a failure of its
    callbacks, raised while handling it) was raised from or while handling; None when there is
    none. Any other error, and a context its raiser suppressed (``from None``), is not looked
    through: a bug raised while handling a full disk keeps its traceback."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return e
        if not (isinstance(e, OSError) or _is_tune_error(e)):
            return None
        seen.add(id(e))
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    return None


def _is_tune_error(e: BaseException) -> bool:
    """Ray Tune's TuneError or one of its kinds, told without importing Ray (seconds of imports)."""
    return any(c.__name__ == "TuneError" and c.__module__.startswith("ray.") for c in type(e).__mro__)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app, turning user errors into one ``error:`` line; a reader
    that closes the pipe early (``| head``) ends it quietly, exit status 141 (``broken_pipe``)."""
    with broken_pipe.quiet_exit():
        _run(argv)


def _run(argv: list[str] | None) -> None:
    from ptv2_core.errors import Ptv2Error, Ptv2Interrupted, Ptv2RunError, TrainingDiverged

    # (tests call main in their own process, from other threads too: the previous handler is put back)
    previous = sigterm.install() if threading.current_thread() is threading.main_thread() else None
    # a Ctrl-C raised inside a gc callback: neither printed nor lost (signals reach the main thread only)
    previous_hook = unraisable.install() if previous is not None else None
    try:
        empty = empty_option(list(sys.argv[1:] if argv is None else argv))
        if empty:
            raise Ptv2Error(empty)
        rc = app(args=argv, prog_name="ptv2", standalone_mode=False)
        if unraisable.stop():  # a Ctrl-C raised in a gc callback, the command done before it was taken again
            print(f"note: {'terminated (SIGTERM)' if sigterm.received() else 'interrupted'} as the command "
                  "ended; its work is done and kept", file=sys.stderr)
        if rc == 130:  # typer turns a KeyboardInterrupt into a silent exit code 130
            rc = stopped()
    except cx.NoArgsIsHelpError as e:  # a bare `ptv2`: show the help
        print(e.ctx.get_help() if e.ctx else e.format_message())
        rc = 0
    except cx.UsageError as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        rc = 2
    except cx.ClickException as e:
        print(f"error: {e.format_message()}", file=sys.stderr)
        rc = 2
    except typer.Exit as e:
        rc = getattr(e, "exit_code", 0)
    except typer.Abort:
        rc = stopped("aborted")
    except KeyboardInterrupt:
        rc = stopped()
    except Ptv2Interrupted as e:
        rc = stopped(str(e))
    except Ptv2Error as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 2
    except TrainingDiverged as e:  # a learning rate too high for the task: bad input, not a crash (train, pretrain)
        print(f"error: training diverged: {e}; try a lower --lr", file=sys.stderr)
        rc = 2
    except PermissionError as e:  # a file or folder the user may not read or write: named, not a traceback
        what = f"'{e.filename}'" + (f" -> '{e.filename2}'" if e.filename2 else "") if e.filename else str(e)
        print(f"error: permission denied: {what}", file=sys.stderr)
        rc = 2
    except Ptv2RunError as e:
        print(f"error: {e}", file=sys.stderr)
        rc = 1
    except Exception as e:  # a write that found no room where no step names its output: one line, not a traceback
        room = no_room(e)
        if room is None:
            raise
        what = f": '{room.filename}'" if room.filename else ""
        print(f"error: {room.strerror or room}{what}", file=sys.stderr)
        rc = 2
    # every KeyboardInterrupt that reaches this line was handled above (one not handled propagates)
    forget_handled_interrupt()
    if previous is not None:
        unraisable.restore(previous_hook)
        sigterm.restore(previous)
    sys.exit(rc if isinstance(rc, int) else 0)
