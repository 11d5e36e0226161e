"""The ``ptv2`` typer application object, shared by the command modules."""
import typer

app = typer.Typer(
    name="ptv2",
    help="P-Tuning v2 with automated prompt-length search: train, search, register, promote, run.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
