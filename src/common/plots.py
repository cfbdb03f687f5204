"""Loss curves of a run (``loss_plot.png``) with Matplotlib's Agg backend, written atomically."""

import os

import numpy as np

from src.common.fileio import atomic_path
from src.common.loss_log import read_loss_csv
from src.errors import UserError


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
