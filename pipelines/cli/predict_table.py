"""``ptv2 predict --file`` on a table (.csv, .jsonl, .json, .parquet): its text column labelled, the
table written back in its own format with the prediction columns added.

The table is read before the model loads (``predict_table_input``, with the task data readers, so
a table is read here as training reads it; the lines of such a file were labelled one by one
before, its header and JSON syntax included): its syntax, columns and text column checked. A CSV or
JSON Lines table is then read again, its text column checked, labelled and written ``CHUNK`` rows at
a time, never held whole (``predict_table_source``: memory stays flat however long the file); a
cell that is no text, late in the table, is an error then, and nothing is published (the output is
a temporary file until the last row). A JSON or Parquet table is held whole
(``predict_table_output``: a JSON number goes back as its text in the file, ``1.50``, ``1e400``).

Columns added: ``pred_label`` (``pred_score`` with --scores) for a sequence task; ``pred_tags``
(``pred_scores``) for a token task, one tag per word: a list in JSON and Parquet, the tags joined by
spaces in CSV. A row with an empty or missing text gets empty predictions. The output goes to
``--out PATH`` (same format, written whole or not at all: a temporary file beside it, published
once complete; without --overwrite a file that appeared at --out meanwhile is kept) or, for the text
formats, to standard output once every row is labelled.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipelines.cli.predict_table_input import CHUNK, PREDICTED, input_name, pick_column, texts_of
from pipelines.cli.predict_table_output import chunk_text, csv_line, output_file, table_lines
from pipelines.cli.predict_table_source import Table


def prediction_columns(rows: list[dict | None], kind: str, scores: bool, joined: bool) -> dict[str, list]:
    """The columns to add, from ``predict``'s rows (None: a row with no text). ``joined``: tags and
    scores as space-joined text (CSV), else lists."""
    name, score_name = PREDICTED[kind]
    if kind == "sequence":
        cols = {name: [r and r["label"] for r in rows]}
        if scores:
            cols[score_name] = [r and r["score"] for r in rows]
        return cols

    def cell(values: list | None, fmt) -> Any:
        if values is None:
            return None
        return " ".join(fmt(v) for v in values) if joined else list(values)

    cols = {name: [cell(r and r["tags"], str) for r in rows]}
    if scores:
        cols[score_name] = [cell(r and r["scores"], repr) for r in rows]
    return cols


def label(loaded, texts: list[str | None], batch_size: int, bar, bf16: bool | None = None) -> list[dict | None]:
    """``predict``'s rows for ``texts`` (None for no text); ``bf16`` None: as the adapter was trained.
    ``bar`` counts rows: the texts as they are labelled, the rows without one at the end."""
    from ptv2_core.predict import predict

    todo = [t for t in texts if t is not None]
    done = iter(predict(loaded, todo, batch_size, on_batch=bar.update, bf16=bf16) if todo else ())
    rows = [None if t is None else next(done) for t in texts]
    bar.update(len(texts) - len(todo))
    return rows


def predict_table(loaded, file: str, table: Table, *, text_column: str | None, out: Path | None, overwrite: bool,
                  scores: bool, batch_size: int, bf16: bool | None = None) -> None:
    """Label ``table`` (read from ``file``) and write it with its prediction columns, ``CHUNK``
    rows at a time (a Parquet table at once), each chunk's text column checked as it is labelled
    (a cell that is no text is an error, and nothing is published); a progress bar on a terminal,
    and a Ctrl-C stops it before anything is written."""
    from tqdm.auto import tqdm

    from ptv2_core.errors import Ptv2Interrupted

    spec = loaded.spec
    column = pick_column(table.columns, text_column, spec.type, spec.text_column, file, table.suffix)
    suffix, names = table.suffix, table.columns
    try:
        with output_file(out, overwrite) as f, \
                tqdm(total=table.rows, unit="row", desc="predict", disable=None, file=sys.stderr) as bar:
            if suffix == ".parquet":
                df = table.whole
                added = prediction_columns(label(loaded, texts_of(df[column].tolist(), spec.type, column, file),
                                                 batch_size, bar, bf16), spec.type, scores, joined=False)
                df.assign(**added).to_parquet(f, index=False)
            else:
                added_names = list(PREDICTED[spec.type][:2 if scores else 1])
                f.write({".csv": csv_line(table.attrs.get("header", names) + added_names), ".jsonl": b"",
                         ".json": b"[\n"}[suffix])
                for start, part in table.chunks(CHUNK):
                    rows = label(loaded, texts_of(part[column].tolist(), spec.type, column, file, start + 1),
                                 batch_size, bar, bf16)
                    added = prediction_columns(rows, spec.type, scores, joined=suffix == ".csv")
                    f.write(chunk_text(table_lines(part, names, added, suffix, start + 1, input_name(file)), suffix,
                                       start == 0).encode("utf-8"))
                if suffix == ".json":
                    f.write(b"\n]\n")
    except KeyboardInterrupt:
        raise Ptv2Interrupted("interrupted before every row was labelled; nothing was written: run the same "
                              "command again (it starts over)") from None
    if out is not None:
        print(f"{table.rows} rows labelled ('{column}'); written to {out}", file=sys.stderr)
