"""Metric dicts as files: ``metrics.json`` (exact values) and ``metrics.txt`` (a human table), written atomically."""

import json
import math
import os

import numpy as np

from src.common.fileio import atomic_write_text
from src.errors import UserError


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


def flatten_metrics(metrics, prefix=""):
    items = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(flatten_metrics(value, prefix=f"{name}."))
        else:
            items.append((name, value))
    return items


def metrics_table(metrics):
    """An aligned two-column text table (``metric  value``) of ``metrics``, keys sorted; nested dicts as ``a.b``."""
    items = sorted(flatten_metrics(metrics), key=lambda kv: kv[0])
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
