"""The evaluation's ``index.html``: a self-contained page (inline CSS, no scripts) showing results side by side."""

import html
import os
import urllib.parse

from src.common.fileio import atomic_write_text
from src.common.metrics_files import flatten_metrics, format_value

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
        for key, value in sorted(flatten_metrics(metrics), key=lambda kv: kv[0]):
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
