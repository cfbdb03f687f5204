import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from src.common.html_report import write_html_index
from src.common.image_grid import make_grid, save_sample_grid
from src.common.loss_log import LossLogger, read_loss_csv
from src.common.metrics_files import load_metrics, write_metrics
from src.common.plots import plot_losses
from src.errors import UserError

# ----------------------------------------------------------------------------------------------------------- LossLogger


def _fill(logger, steps, epoch=0):
    for gs in steps:
        logger.log(epoch, gs % 10, gs, {"G_GAN": 1.0 + gs, "D_real": 0.5 * gs}, ms_per_step=12.5, lr=2e-4)


def test_loss_logger_writes_header_and_rows(tmp_path):
    path = tmp_path / "loss_log.csv"
    logger = LossLogger(path, columns=["G_GAN", "D_real"])
    _fill(logger, [1, 2, 3])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,step,global_step,G_GAN,D_real,ms_per_step,lr"
    assert lines[1] == "0,1,1,2,0.5,12.5,0.0002"
    names, rows = read_loss_csv(path)
    assert names == ["G_GAN", "D_real"]
    assert [r["global_step"] for r in rows] == [1, 2, 3]
    assert rows[2]["G_GAN"] == pytest.approx(4.0)
    assert rows[2]["lr"] == pytest.approx(2e-4)


def test_loss_logger_infers_columns_and_rejects_new_ones(tmp_path):
    path = tmp_path / "loss.csv"
    logger = LossLogger(path)
    logger.log(1, 1, 1, {"a": np.float32(0.25), "b": np.array(3.0)})
    assert read_loss_csv(path)[0] == ["a", "b"]
    with pytest.raises(ValueError, match="not columns"):
        logger.log(1, 2, 2, {"c": 1.0})
    logger.log(1, 3, 3, {"a": 1.0})  # a missing loss is an empty cell
    rows = read_loss_csv(path)[1]
    assert math.isnan(rows[-1]["b"]) and math.isnan(rows[-1]["lr"])


def test_loss_logger_resume_truncates_after_checkpoint(tmp_path):
    path = tmp_path / "loss.csv"
    _fill(LossLogger(path, columns=["G_GAN", "D_real"]), range(1, 11))
    # The run was killed after logging step 10, but its last checkpoint is at step 6.
    logger = LossLogger(path, resume_global_step=6)
    assert logger.columns == ["G_GAN", "D_real"]
    assert [r["global_step"] for r in logger.read()] == [1, 2, 3, 4, 5, 6]
    _fill(logger, [7, 8])
    assert [r["global_step"] for r in logger.read()] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert logger.truncate_after(2) == 2
    assert [r["global_step"] for r in logger.read()] == [1, 2]


def test_loss_logger_fresh_run_replaces_old_file(tmp_path):
    path = tmp_path / "loss.csv"
    _fill(LossLogger(path, columns=["G_GAN", "D_real"]), [1, 2, 3])
    logger = LossLogger(path, columns=["G_GAN", "D_real"])
    assert logger.read() == []
    logger2 = LossLogger(path)  # no columns known: old file removed until the first row
    assert not path.exists()
    _fill(logger2, [1])
    assert len(logger2.read()) == 1


def test_loss_logger_tolerates_torn_and_malformed_lines(tmp_path):
    path = tmp_path / "loss.csv"
    _fill(LossLogger(path, columns=["G_GAN", "D_real"]), [1, 2, 3])
    with open(path, "a") as f:
        f.write("0,4,4,oops,1,1,1\n")  # unparsable number
        f.write("0,5,5,1.0\n")  # wrong field count
        f.write("0,6,6,7.0,3.0,12.5,0.000")  # torn by a kill: no newline, would otherwise parse
    assert [r["global_step"] for r in read_loss_csv(path)[1]] == [1, 2, 3]
    # Resuming rewrites the file cleanly, so the next append does not glue onto the torn line.
    logger = LossLogger(path, resume_global_step=100)
    _fill(logger, [4])
    assert [r["global_step"] for r in logger.read()] == [1, 2, 3, 4]
    assert path.read_text().endswith("\n")
    assert "oops" not in path.read_text()


def test_loss_logger_resume_adds_new_columns(tmp_path):
    path = tmp_path / "loss.csv"
    _fill(LossLogger(path, columns=["G_GAN", "D_real"]), [1, 2])
    logger = LossLogger(path, columns=["G_GAN", "D_real", "G_L1"], resume_global_step=2)
    logger.log(0, 3, 3, {"G_GAN": 1.0, "D_real": 1.0, "G_L1": 9.0})
    names, rows = read_loss_csv(path)
    assert names == ["G_GAN", "D_real", "G_L1"]
    assert math.isnan(rows[0]["G_L1"]) and rows[2]["G_L1"] == 9.0


def test_read_loss_csv_missing_torn_header_and_foreign_file(tmp_path):
    assert read_loss_csv(tmp_path / "none.csv") == ([], [])
    torn = tmp_path / "torn.csv"
    torn.write_text("epoch,step,glo")
    assert read_loss_csv(torn) == ([], [])
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="not a loss log"):
        read_loss_csv(other)


def test_loss_logger_rejects_bad_names(tmp_path):
    with pytest.raises(ValueError):
        LossLogger(tmp_path / "x.csv", columns=["a,b"])
    with pytest.raises(ValueError):
        LossLogger(tmp_path / "x.csv", columns=["lr"])


# ---------------------------------------------------------------------------------------------------------------- plot


def test_plot_losses_writes_png(tmp_path):
    csv = tmp_path / "loss.csv"
    logger = LossLogger(csv, columns=["G_GAN", "D_real"])
    _fill(logger, range(1, 60))
    png = tmp_path / "plots" / "loss.png"
    plot_losses(csv, png)
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert w > 0 and h > 0
    assert not [p for p in os.listdir(png.parent) if p != "loss.png"]  # no temp files left behind


def test_plot_losses_empty_log_and_missing_file(tmp_path):
    csv = tmp_path / "loss.csv"
    LossLogger(csv, columns=["G_GAN"])
    plot_losses(csv, tmp_path / "empty.png")
    with Image.open(tmp_path / "empty.png") as im:
        assert im.size[0] > 0
    with pytest.raises(UserError, match="does not exist"):
        plot_losses(tmp_path / "nope.csv", tmp_path / "x.png")


def test_plot_does_not_import_pyplot(tmp_path):
    # Run in a fresh interpreter so other tests' imports cannot hide a pyplot import (which would pick a backend).
    code = (
        "import sys\n"
        "from src.common.loss_log import LossLogger\nfrom src.common.plots import plot_losses\n"
        f"LossLogger({str(tmp_path / 'l.csv')!r}, columns=['a']).log(0, 1, 1, {{'a': 1.0}})\n"
        f"plot_losses({str(tmp_path / 'l.csv')!r}, {str(tmp_path / 'l.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "l.png").stat().st_size > 0


# ---------------------------------------------------------------------------------------------------------------- grid


def test_make_grid_shape_arithmetic_and_placement():
    a = np.full((4, 5, 3), 10, dtype=np.uint8)
    b = np.full((6, 3), 20, dtype=np.uint8)  # grayscale and a different size
    c = np.full((2, 2, 1), 30, dtype=np.uint8)
    grid = make_grid([a, b, c], ncols=2, pad=1, pad_value=255)
    # cells are 6x5; 2 rows x 2 cols; pad 1 between and around
    assert grid.shape == (2 * 6 + 3 * 1, 2 * 5 + 3 * 1, 3)
    assert grid.dtype == np.uint8
    assert (grid[1:5, 1:6] == 10).all()
    assert (grid[5, 1:6] == 255).all()  # a is shorter than its cell: filled below
    assert (grid[1:7, 7:10] == 20).all()  # b at row 0, col 1 (left = 1 + 5 + 1)
    assert (grid[8:10, 1:3] == 30).all()  # c at row 1, col 0 (top = 1 + 6 + 1)
    assert (grid[8:14, 7:12] == 255).all()  # empty fourth cell
    assert (grid[0] == 255).all() and (grid[:, 0] == 255).all()


def test_make_grid_no_pad_and_errors():
    ims = [np.zeros((3, 4, 3), np.uint8)] * 5
    assert make_grid(ims, ncols=5, pad=0).shape == (3, 20, 3)
    assert make_grid(ims, ncols=2, pad=2).shape == (3 * 3 + 4 * 2, 2 * 4 + 3 * 2, 3)
    with pytest.raises(ValueError):
        make_grid([], ncols=2)
    with pytest.raises(ValueError):
        make_grid(ims, ncols=0)
    with pytest.raises(ValueError, match="uint8"):
        make_grid([np.zeros((3, 3, 3), np.float32)], ncols=1)


def test_save_sample_grid(tmp_path):
    inp = np.full((8, 8), 50, np.uint8)
    out = np.full((8, 8, 3), 100, np.uint8)
    tgt = np.full((10, 8, 3), 150, np.uint8)
    path = tmp_path / "samples" / "epoch_001.png"
    grid = save_sample_grid([[inp, out, tgt], [inp, out]], path)
    assert grid.shape == (2 * 10 + 3 * 2, 3 * 8 + 4 * 2, 3)
    with Image.open(path) as im:
        assert im.size == (grid.shape[1], grid.shape[0])
        np.testing.assert_array_equal(np.asarray(im), grid)


# ---------------------------------------------------------------------------------------------------------------- HTML


def test_write_html_index(tmp_path):
    rows = [
        {"name": "img<1>&", "images": {"input": "images/a in.png", "output": "images/a_out.png"}},
        {"name": "plain_2", "images": {"input": "images/b.png", "output": "images/b_out.png", "target": "t/b.png"}},
    ]
    per_image = {"img<1>&": {"psnr": 21.5, "ssim": 0.75}, "plain_2": {"psnr": math.inf, "ssim": 1.0}}
    path = write_html_index(tmp_path, "Results <test>", ["input", "output", "target"], rows, {"psnr": 22.25}, per_image)
    assert path == os.path.join(tmp_path, "index.html")
    text = open(path, encoding="utf-8").read()
    assert "img&lt;1&gt;&amp;" in text and "img<1>&" not in text
    assert "plain_2" in text
    assert "Results &lt;test&gt;" in text
    assert 'src="images/a%20in.png"' in text
    for rel in ["images/a_out.png", "images/b.png", "images/b_out.png", "t/b.png"]:
        assert f'src="{rel}"' in text
    assert "22.2500" in text and "21.5000" in text and "inf" in text
    assert text.index("22.2500") < text.index("plain_2")  # summary before the samples
    assert "<script" not in text


def test_write_html_index_without_metrics(tmp_path):
    path = write_html_index(tmp_path / "new", "t", ["a"], [{"name": "x", "images": {"a": "x.png"}}], None, None)
    text = open(path, encoding="utf-8").read()
    assert 'src="x.png"' in text and "summary" not in text


# ------------------------------------------------------------------------------------------------------------- metrics


def test_write_metrics_round_trip(tmp_path):
    metrics = {
        "psnr": 23.5,
        "ssim": np.float32(0.8125),
        "n_images": np.int64(106),
        "best": math.inf,
        "fcn": {"per_pixel_acc": 0.5, "class_iou": 0.25},
    }
    table = write_metrics(tmp_path, metrics, name="eval")
    raw = json.loads((tmp_path / "eval.json").read_text())
    assert raw["best"] == "inf"
    assert list(raw) == sorted(raw)
    assert isinstance(raw["psnr"], float) and isinstance(raw["n_images"], int)
    back = load_metrics(tmp_path / "eval.json")
    assert back["best"] == math.inf
    assert back["psnr"] == 23.5 and back["ssim"] == pytest.approx(0.8125) and back["n_images"] == 106
    assert back["fcn"] == {"class_iou": 0.25, "per_pixel_acc": 0.5}
    assert (tmp_path / "eval.txt").read_text() == table
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "value"]
    body = lines[2:]
    assert [line.split()[0] for line in body] == [
        "best",
        "fcn.class_iou",
        "fcn.per_pixel_acc",
        "n_images",
        "psnr",
        "ssim",
    ]
    assert len({len(line) for line in lines}) == 1  # aligned: every line has the same width
    assert "23.5000" in table and "inf" in table


def test_load_metrics_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_metrics(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_metrics(bad)


def test_moving_average_is_trailing_and_exact_on_constants():
    from src.common.plots import _moving_average

    np.testing.assert_allclose(_moving_average([1, 2, 3, 4, 5], 2), [1.0, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(_moving_average([1, 2, 3], 1), [1, 2, 3])
    assert np.ptp(_moving_average([0.7] * 300, 8)) < 1e-12
