"""The training loss log: one CSV row per logged step, appended as it happens.

Appending is the one write that is not atomic: a row torn by a kill is skipped when the file is read back (see
:func:`read_loss_csv`), so the log survives any interruption.
"""

import math
import os

import numpy as np

from src.common.fileio import atomic_write_text
from src.errors import UserError

STEP_COLUMNS = ("epoch", "step", "global_step")
TAIL_COLUMNS = ("ms_per_step", "lr")
_INT_COLUMNS = frozenset(STEP_COLUMNS)
_RESERVED = frozenset(STEP_COLUMNS + TAIL_COLUMNS)


def _check_loss_names(names):
    names = [str(n) for n in names]
    for name in names:
        if not name or any(ch in name for ch in ',"\r\n'):
            raise ValueError(f"loss name {name!r} must be non-empty and contain no comma, quote or newline")
        if name in _RESERVED:
            raise ValueError(f"loss name {name!r} clashes with a fixed column of the loss log {sorted(_RESERVED)}")
    if len(set(names)) != len(names):
        raise ValueError(f"loss names must be unique, got {names}")
    return names


def _parse_row(fields, header):
    """Parse one CSV row into a dict; return None if it is malformed (wrong field count, bad number)."""
    if len(fields) != len(header):
        return None
    row = {}
    try:
        for name, text in zip(header, fields):
            text = text.strip()
            if name in _INT_COLUMNS:
                row[name] = int(text)
            else:
                row[name] = float(text) if text else float("nan")
    except ValueError:
        return None
    return row


def read_loss_csv(path):
    """Read a loss log written by :class:`LossLogger`; return ``(loss_names, rows)``.

    ``rows`` is a list of dicts with int ``epoch``/``step``/``global_step`` and float values for the losses,
    ``ms_per_step`` and ``lr`` (``nan`` where a cell is empty). Malformed lines are skipped: a last line without a
    terminating newline (torn by a kill while it was written), lines with the wrong number of fields and lines whose
    numbers do not parse. A missing file, or one without a complete header line, gives ``([], [])``.
    """
    if not os.path.exists(path):
        return [], []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    lines = text.split("\n")
    # The piece after the last "\n" is either "" (clean file) or a torn line: drop it either way.
    lines = lines[:-1]
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if not lines:
        return [], []
    header = [h.strip() for h in lines[0].split(",")]
    if header[: len(STEP_COLUMNS)] != list(STEP_COLUMNS) or header[-len(TAIL_COLUMNS) :] != list(TAIL_COLUMNS):
        raise UserError(
            f"{path} is not a loss log (header {lines[0][:80]!r}); delete it or point the run at another output folder"
        )
    loss_names = header[len(STEP_COLUMNS) : -len(TAIL_COLUMNS)]
    rows = []
    for line in lines[1:]:
        if not line.strip():
            continue
        row = _parse_row(line.split(","), header)
        if row is not None:
            rows.append(row)
    return loss_names, rows


def _format_cell(value):
    if value is None:
        return ""
    value = float(value)
    if math.isnan(value):
        return ""
    return f"{value:.7g}"


class LossLogger:
    """Append one CSV row per logged step: ``epoch, step, global_step, <loss names...>, ms_per_step, lr``.

    Args:
        path_csv: the CSV file.
        columns: loss names, in column order. If None they are taken from the existing file when resuming, or else
            from the keys of the first :meth:`log` call.
        resume_global_step: None starts a new log, replacing any existing file. An int resumes: rows of the existing
            file with ``global_step <= resume_global_step`` are kept and later ones dropped (a killed run may have
            logged steps past its last checkpoint); torn and malformed lines are dropped too. If ``columns`` adds loss
            names the old file lacks, the kept rows get empty cells for them.

    Every row is written with a single append and the file closed (so flushed) straight after.
    """

    def __init__(self, path_csv, columns=None, resume_global_step=None):
        self.path = os.fspath(path_csv)
        self.columns = None if columns is None else _check_loss_names(columns)
        if resume_global_step is None:
            if self.columns is not None:
                self._rewrite([])
            elif os.path.exists(self.path):
                os.remove(self.path)
        else:
            self.truncate_after(resume_global_step)

    @property
    def header(self):
        """The full list of CSV column names (None until the loss names are known)."""
        if self.columns is None:
            return None
        return list(STEP_COLUMNS) + list(self.columns) + list(TAIL_COLUMNS)

    def _line(self, row):
        cells = []
        for name in self.header:
            value = row.get(name)
            if name in _INT_COLUMNS:
                cells.append(str(int(value)))
            else:
                cells.append(_format_cell(value))
        return ",".join(cells) + "\n"

    def _rewrite(self, rows):
        text = ",".join(self.header) + "\n" + "".join(self._line(r) for r in rows)
        atomic_write_text(self.path, text)

    def truncate_after(self, global_step):
        """Keep the rows with ``global_step <= global_step`` (and no torn or malformed lines); rewrite atomically.

        Returns the number of rows kept. With no existing file (or no rows and unknown columns) nothing is written.
        """
        old_names, rows = read_loss_csv(self.path)
        kept = [r for r in rows if r["global_step"] <= int(global_step)]
        if self.columns is None:
            self.columns = old_names or None
        else:
            self.columns = self.columns + [n for n in old_names if n not in self.columns]
        if self.columns is not None:
            self._rewrite(kept)
        elif os.path.exists(self.path):
            os.remove(self.path)
        return len(kept)

    def log(self, epoch, step, global_step, losses, ms_per_step=None, lr=None):
        """Append one row. ``losses`` maps loss name -> number (Python, NumPy or 0-d array); missing ones are empty.

        Raises ValueError for a loss name that is not a column (the header cannot change mid-file).
        """
        losses = {str(k): v for k, v in losses.items()}
        if self.columns is None:
            self.columns = _check_loss_names(losses)
            self._rewrite([])
        unknown = [k for k in losses if k not in self.columns]
        if unknown:
            raise ValueError(f"losses {unknown} are not columns of the loss log {self.columns}; pass columns=...")
        row = {"epoch": epoch, "step": step, "global_step": global_step, "ms_per_step": ms_per_step, "lr": lr}
        for name, value in losses.items():
            row[name] = float(np.asarray(value).reshape(()))
        if not os.path.exists(self.path):
            self._rewrite([])
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            f.write(self._line(row))
            f.flush()

    def read(self):
        """The rows logged so far, as :func:`read_loss_csv` returns them."""
        return read_loss_csv(self.path)[1]
