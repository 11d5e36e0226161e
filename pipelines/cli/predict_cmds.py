"""``ptv2 predict``: label texts, lines of a file or standard input, or a table, from an adapter
folder or a registered version."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from pipelines.cli.app import app
from pipelines.cli.common import check_batch_size, registered_version
from pipelines.cli.eval_cmds import BF16_HELP


@app.command()
def predict(
    texts: Optional[list[str]] = typer.Argument(None, help="Texts to label (NER: words split on whitespace); a lone "
                                                "'-' reads standard input, as --file - does."),
    file: Optional[str] = typer.Option(None, "--file", help="Label every line of this UTF-8 text file instead ('-': "
                                       "standard input, labelled as it comes); one output line per input line, in "
                                       "order. A table (.csv, .jsonl, .json, .parquet): its text column is labelled "
                                       "and the table written back with pred_label (pred_score) or pred_tags "
                                       "(pred_scores) columns added."),
    fmt: Optional[str] = typer.Option(None, "--format", help="How to read --file: text (one text per line), csv, "
                                      "jsonl, json or parquet (default: by its extension; text for '-' and any "
                                      "other). For standard input or a pipe (cat data.csv | ptv2 predict ... "
                                      "--file - --format csv); a table's extension must agree."),
    text_column: Optional[str] = typer.Option(None, help="A table's column to label (default: the adapter's task's "
                                              "text column, else 'text'; NER: a list of words or a text)."),
    out: Optional[Path] = typer.Option(None, help="Write the labelled table here, in the format of --file (default: "
                                       "standard output; a .parquet needs --out). Written whole or not at all."),
    overwrite: bool = typer.Option(False, help="Replace the file at --out."),
    adapter: Optional[Path] = typer.Option(None, help="Adapter folder."),
    model: Optional[str] = typer.Option(None, help="A registered version instead of a folder: models:/NAME@ALIAS or "
                                        "models:/NAME/VERSION (store: MLFLOW_TRACKING_URI or the local default)."),
    scores: bool = typer.Option(False, help="Print the score beside each label (NER: word/TAG/score)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per text."),
    device: str = typer.Option("auto", help="auto, cpu, cuda, cuda:1 ..."),
    batch_size: int = typer.Option(64, help="Texts labelled at a time."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help=BF16_HELP, show_default=False),
) -> None:
    """Print one label per text (tags per word for NER), from an adapter folder or a registered model."""
    from ptv2_core.adapter import load_adapter
    from ptv2_core.device import pick_device
    from ptv2_core.errors import Ptv2Error

    if (adapter is None) == (model is None):
        raise Ptv2Error("give exactly one of --adapter DIR and --model models:/NAME@ALIAS")
    if texts == ["-"] and file is None:  # the Unix convention: `-` is standard input (it labelled the text "-")
        texts, file = None, "-"
    if bool(texts) == (file is not None):
        raise Ptv2Error("give texts to label, or --file PATH (one text per line), not both" if texts else
                        "nothing to label: give texts, or --file PATH (one text per line; '-' reads standard input)")
    for i, text in enumerate(texts or (), 1):  # bytes that are not UTF-8 arrive as lone surrogates
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise Ptv2Error(f"text {i} on the command line is not valid UTF-8") from None
    pick_device(device)  # an unknown device fails before anything loads
    check_batch_size(batch_size)
    from pipelines.cli import predict_table_input as tables
    from pipelines.cli.predict_table import predict_table

    suffix = tables.table_format(file, fmt)  # a table's lines were labelled one by one, its header too
    tables.check_options(suffix, out, overwrite, as_json, text_column)
    if suffix:
        with tables.read_input(file, suffix, text_column) as table:  # a bad table fails before the model loads
            if model is None:  # so does one this adapter cannot label (a registered version's task is known once downloaded)
                from ptv2_core.adapter import read_adapter_config

                tables.check_early(table, file, text_column, read_adapter_config(adapter))
            loaded = load_adapter(adapter, device=pick_device(device)) if model is None else \
                registered_version(model, device).adapter
            predict_table(loaded, file, table, text_column=text_column, out=out, overwrite=overwrite,
                          scores=scores, batch_size=batch_size, bf16=bf16)
        return
    from pipelines.cli.lines import InputLines, open_lines, streamed
    from pipelines.cli.sigint import sigint_between_batches

    # a file is labelled PREDICT_CHUNK lines at a time, each chunk printed when done: the first
    # labels come in seconds, standard input streams, and a stopped run keeps what it printed.
    # A file is checked before the model loads; standard input (or a FIFO, read once as it is) is
    # waited for after it has loaded (a wrong --adapter is told at once, not once the first line comes)
    stream = file is not None and streamed(file)
    source = open_lines(file, PREDICT_CHUNK) if file is not None and not stream else None
    from tqdm.auto import tqdm

    from ptv2_core.errors import Ptv2Interrupted
    from ptv2_core.predict import predict as run_predict

    # a registered version: the adapter its pyfunc model loaded (digests and base checked), run as
    # the pyfunc's predict runs it
    loaded = load_adapter(adapter, device=pick_device(device)) if model is None else registered_version(model, device).adapter
    if source is None:
        source = open_lines(file, PREDICT_CHUNK) if stream else InputLines("", list(texts), iter(()), len(texts))
    done = 0
    # Ctrl-C: between batches while labelling (so the count of printed lines is exact), at once
    # while waiting for input (pipelines/cli/sigint.py)
    with tqdm(total=source.total, unit="text", desc="predict", disable=None if file is not None else True,
              file=sys.stderr) as bar, sigint_between_batches() as sigint:
        try:
            for chunk in source.chunks():
                with sigint.held():
                    rows = run_predict(loaded, chunk, batch_size, on_batch=lambda n: (bar.update(n), sigint.check()),
                                      bf16=bf16)
                    for text, p in zip(chunk, rows):  # --json lines carry their text: joinable to the input
                        if "label" in p and not text.strip():  # nothing to classify: no made-up label
                            p = {"label": None, "score": None}
                        typer.echo(_predict_line({"text": text} | p if as_json else p, scores, as_json))
                        done += 1
                    sys.stdout.flush()
        except KeyboardInterrupt:
            if not done:
                raise Ptv2Interrupted("interrupted before the first labels were printed") from None
            if stream:  # no count, and no `tail` of a pipe
                raise Ptv2Interrupted(f"interrupted; the first {done} lines of {source.name} are labelled on "
                                      "standard output") from None
            rest = f": `tail -n +{done + 1} {file}` holds the rest" if file is not None else ""
            raise Ptv2Interrupted(f"interrupted; the first {done} of {source.total} lines are labelled on standard "
                                  f"output{rest}") from None
        except Ptv2Error as e:  # e.g. standard input turned out not to be UTF-8 after some lines
            if done:
                raise Ptv2Error(f"{e}; the first {done} lines are labelled on standard output") from None
            raise


PREDICT_CHUNK = 4096


def _predict_line(p: dict, scores: bool, as_json: bool) -> str:
    """One output line: JSON, the label (and score), or word/TAG pairs (word/TAG/score)."""
    if as_json:
        return json.dumps(p)
    if "label" in p:
        if p["label"] is None:  # an empty input line: an empty output line, so lines still pair up
            return ""
        return f"{p['label']}\t{p['score']:.4f}" if scores else p["label"]
    if scores:
        return " ".join(f"{w}/{t}/{s:.4f}" for w, t, s in zip(p["tokens"], p["tags"], p["scores"]))
    return " ".join(f"{w}/{t}" for w, t in zip(p["tokens"], p["tags"]))
