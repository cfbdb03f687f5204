"""Training and evaluation reports: a crash-tolerant loss log (CSV), loss plots, image grids, an HTML index and
metric tables.

Everything here is plain NumPy / Pillow / Matplotlib and writes its output files atomically (a kill leaves the old
file or the new one, never half a file). The only exception is the loss CSV, which is appended to one row at a
time; a row torn by a kill is skipped when the file is read back (see :func:`read_loss_csv`).
"""

import html
import json
import math
import os
import urllib.parse

import numpy as np
from PIL import Image

from src.common.fileio import atomic_path, atomic_write_text
from src.errors import UserError

# ----------------------------------------------------------------------------------------------------------------------
# Loss log (CSV)
# ----------------------------------------------------------------------------------------------------------------------

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


def _moving_average(values, window):
    """Trailing moving average of the same length; the first points average over what is available."""
    values = np.asarray(values, dtype=np.float64)
    if window <= 1 or values.size == 0:
        return values.copy()
    # A convolution rather than a running cumsum: no drift, so a constant curve stays exactly constant.
    sums = np.convolve(values, np.ones(window))[: values.size]
    counts = np.minimum(np.arange(1, values.size + 1), window)
    return sums / counts


def plot_losses(csv_path, png_path, smooth_window=None):
    """Plot every loss of a :class:`LossLogger` CSV against ``global_step`` into a PNG, one subplot per loss.

    The raw curve is drawn faintly with a trailing moving average over it (window ``smooth_window``, default about
    2% of the points, at least 1 and at most 100). Uses Matplotlib's Agg canvas directly (no pyplot, so the global
    backend is untouched). An empty log gives a small figure saying so. Written atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not os.path.exists(csv_path):
        raise UserError(f"loss log {csv_path} does not exist; check the run's output folder")
    names, rows = read_loss_csv(csv_path)
    rows = sorted(rows, key=lambda r: r["global_step"])
    if smooth_window is None:
        smooth_window = int(min(100, max(1, round(len(rows) * 0.02))))

    n_axes = max(1, len(names))
    fig = Figure(figsize=(8, 2.4 * n_axes), dpi=100)
    FigureCanvasAgg(fig)
    if not rows or not names:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no loss rows logged yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
    else:
        steps = np.array([r["global_step"] for r in rows], dtype=np.float64)
        for i, name in enumerate(names):
            ax = fig.add_subplot(n_axes, 1, i + 1)
            values = np.array([r[name] for r in rows], dtype=np.float64)
            ok = np.isfinite(values)
            x, y = steps[ok], values[ok]
            if x.size:
                ax.plot(x, y, color="tab:blue", alpha=0.3, linewidth=0.8, label="raw")
                ax.plot(
                    x,
                    _moving_average(y, smooth_window),
                    color="tab:blue",
                    linewidth=1.5,
                    label=f"mean of {smooth_window}",
                )
                ax.legend(loc="upper right", fontsize="small")
            ax.ticklabel_format(axis="y", useOffset=False)
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            if i == n_axes - 1:
                ax.set_xlabel("global step")
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png")
    return png_path


# ----------------------------------------------------------------------------------------------------------------------
# Image grids
# ----------------------------------------------------------------------------------------------------------------------


def _to_rgb_uint8(image):
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"grid images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"grid images must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def make_grid(images, ncols, pad=2, pad_value=255):
    """Tile images into one ``uint8`` HxWx3 array, row-major, ``ncols`` per row.

    Images may be HxW / HxWx1 (grayscale, repeated to 3 channels), HxWx3 or HxWx4 (alpha dropped), all ``uint8``.
    ``None`` entries leave a blank cell. Every cell is as large as the largest image (height and width separately);
    smaller images sit in the top-left corner of their cell, the rest filled with ``pad_value``. ``pad`` pixels of
    ``pad_value`` separate the cells and surround the grid, so with ``n`` images, ``rows = ceil(n / ncols)``, the
    result has shape ``(rows * cell_h + (rows + 1) * pad, ncols * cell_w + (ncols + 1) * pad, 3)``.
    """
    ncols = int(ncols)
    pad = int(pad)
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    cells = [None if im is None else _to_rgb_uint8(im) for im in images]
    present = [c for c in cells if c is not None]
    if not present:
        raise ValueError("make_grid needs at least one image")
    cell_h = max(c.shape[0] for c in present)
    cell_w = max(c.shape[1] for c in present)
    nrows = -(-len(cells) // ncols)
    grid = np.full(
        (nrows * cell_h + (nrows + 1) * pad, ncols * cell_w + (ncols + 1) * pad, 3), pad_value, dtype=np.uint8
    )
    for i, cell in enumerate(cells):
        if cell is None:
            continue
        r, c = divmod(i, ncols)
        top = pad + r * (cell_h + pad)
        left = pad + c * (cell_w + pad)
        grid[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
    return grid


def save_sample_grid(rows, path, pad=2):
    """Save a grid with one line per sample, e.g. ``[[input, output, target], ...]``; returns the grid array.

    Lines may have different lengths (short ones end in blank cells); images follow :func:`make_grid`'s rules.
    The image format follows ``path``'s extension (PNG recommended). Written atomically.
    """
    rows = [list(r) for r in rows]
    if not rows or not any(rows):
        raise ValueError("save_sample_grid needs at least one image")
    ncols = max(len(r) for r in rows)
    flat = []
    for r in rows:
        flat.extend(r + [None] * (ncols - len(r)))
    grid = make_grid(flat, ncols, pad=pad)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp)
    return grid


# ----------------------------------------------------------------------------------------------------------------------
# Metric formatting, tables and files
# ----------------------------------------------------------------------------------------------------------------------


def format_value(value):
    """Format a metric for humans: floats with 4 decimals (or 4 significant digits when tiny/huge), inf as 'inf'."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0.0 or 1e-3 <= abs(value) < 1e7:
            return f"{value:.4f}"
        return f"{value:.4g}"
    return str(value)


def _json_safe(value):
    """Convert metrics into JSON-representable values: NumPy -> Python, non-finite floats -> 'inf'/'-inf'/'nan'."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    return value


def _from_json(value):
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


def _flatten(metrics, prefix=""):
    items = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, prefix=f"{name}."))
        else:
            items.append((name, value))
    return items


def metrics_table(metrics):
    """An aligned two-column text table (``metric  value``) of ``metrics``, keys sorted; nested dicts as ``a.b``."""
    items = sorted(_flatten(metrics), key=lambda kv: kv[0])
    cells = [(str(k), format_value(v)) for k, v in items]
    key_w = max([len("metric")] + [len(k) for k, _ in cells])
    val_w = max([len("value")] + [len(v) for _, v in cells])
    lines = [f"{'metric':<{key_w}}  {'value':>{val_w}}", f"{'-' * key_w}  {'-' * val_w}"]
    lines += [f"{k:<{key_w}}  {v:>{val_w}}" for k, v in cells]
    return "\n".join(lines) + "\n"


def write_metrics(out_dir, metrics, name="metrics"):
    """Write ``out_dir/<name>.json`` (sorted keys, indent 2, non-finite floats as "inf"/"-inf"/"nan" strings) and
    ``out_dir/<name>.txt`` (see :func:`metrics_table`), both atomically. Returns the table text."""
    os.makedirs(out_dir, exist_ok=True)
    text = json.dumps(_json_safe(metrics), sort_keys=True, indent=2, allow_nan=False) + "\n"
    atomic_write_text(os.path.join(out_dir, f"{name}.json"), text)
    table = metrics_table(metrics)
    atomic_write_text(os.path.join(out_dir, f"{name}.txt"), table)
    return table


def load_metrics(path):
    """Read a JSON file written by :func:`write_metrics`, turning "inf"/"-inf"/"nan" strings back into floats."""
    try:
        with open(path, encoding="utf-8") as f:
            return _from_json(json.load(f))
    except FileNotFoundError:
        raise UserError(f"metrics file {path} does not exist; run the evaluation first") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"metrics file {path} is not valid JSON ({exc.msg}); delete it and re-run") from None


# ----------------------------------------------------------------------------------------------------------------------
# HTML index
# ----------------------------------------------------------------------------------------------------------------------

_CSS = """
body { font-family: sans-serif; margin: 16px; color: #222; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; margin-bottom: 20px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; }
th { background: #f0f0f0; position: sticky; top: 0; }
td.num { text-align: right; font-family: monospace; }
td.name { font-family: monospace; word-break: break-all; max-width: 200px; }
img { max-width: 256px; max-height: 256px; display: block; }
"""


def _img_src(rel_path):
    """A relative file path as an escaped URL for ``src=``: forward slashes, percent-encoded, HTML-escaped."""
    rel = str(rel_path).replace(os.sep, "/")
    return html.escape(urllib.parse.quote(rel, safe="/"), quote=True)


def write_html_index(out_dir, title, columns, rows, metrics=None, per_image_metrics=None):
    """Write ``out_dir/index.html``: a self-contained page (inline CSS, no scripts) showing results side by side.

    Args:
        out_dir: the folder; image paths are relative to it.
        title: page title.
        columns: image column headers, e.g. ``["input", "output", "target"]``.
        rows: ``[{"name": str, "images": {column: relative_path}}, ...]``; a column missing from ``images`` is blank.
        metrics: optional summary metrics, shown in a table at the top.
        per_image_metrics: optional ``{name: {metric: value}}``, shown as extra columns after the images.

    Returns the path of the written file. Names, titles and paths are HTML-escaped; written atomically.
    """
    columns = [str(c) for c in columns]
    per_image_metrics = per_image_metrics or {}
    metric_names = []
    for values in per_image_metrics.values():
        for key in values:
            if key not in metric_names:
                metric_names.append(key)
    esc = html.escape

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(str(title))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(str(title))}</h1>",
    ]
    if metrics:
        parts.append('<table class="summary">')
        parts.append("<tr><th>metric</th><th>value</th></tr>")
        for key, value in sorted(_flatten(metrics), key=lambda kv: kv[0]):
            parts.append(f'<tr><td>{esc(str(key))}</td><td class="num">{esc(format_value(value))}</td></tr>')
        parts.append("</table>")

    parts.append(f"<p>{len(rows)} samples</p>")
    parts.append('<table class="samples">')
    header = ["name"] + columns + [str(m) for m in metric_names]
    parts.append("<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
    for row in rows:
        name = str(row["name"])
        images = row.get("images") or {}
        cells = [f'<td class="name">{esc(name)}</td>']
        for col in columns:
            rel = images.get(col)
            if rel is None:
                cells.append("<td></td>")
            else:
                src = _img_src(rel)
                cells.append(
                    f'<td><a href="{src}"><img src="{src}" alt="{esc(name)} {esc(col)}" loading="lazy"></a></td>'
                )
        values = per_image_metrics.get(name, {})
        for metric in metric_names:
            value = values.get(metric)
            cells.append(f'<td class="num">{"" if value is None else esc(format_value(value))}</td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    parts.append("</body>")
    parts.append("</html>")

    path = os.path.join(out_dir, "index.html")
    os.makedirs(out_dir, exist_ok=True)
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
