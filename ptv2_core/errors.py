"""Errors a user can act on, and the one-line wording of a parser's error."""


class Ptv2Error(ValueError):
    """A user-facing error: the CLI prints ``error: <message>`` and exits 2, no traceback."""


class Ptv2RunError(RuntimeError):
    """A run that failed for a reason other than its input (a pipeline task, a lost service):
    the CLI prints ``error: <message>`` and exits 1, no traceback."""


class Ptv2Interrupted(Exception):
    """A run the user stopped (Ctrl-C): the CLI prints ``error: <message>`` (what is kept, how to go
    on) and exits 130, as an interrupted command does."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: this configuration cannot train (a learning rate too high,
    as a rule). The CLI prints ``error: training diverged: <message>`` with a hint and exits 2."""


def yaml_problem(e: Exception) -> str:
    """A YAML (or decoding) error in one line: its first line, and the line and column it names
    (PyYAML's own message runs to four or five lines with its marker lines)."""
    mark = getattr(e, "problem_mark", None)
    text = str(getattr(e, "problem", None) or e).strip()
    first = text.splitlines()[0] if text else type(e).__name__
    return f"{first} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else first
