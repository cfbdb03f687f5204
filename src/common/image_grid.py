"""Sample grids (input | output | target rows) of the training samples, written atomically as PNG."""

import numpy as np
from PIL import Image

from src.common.fileio import atomic_path


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
