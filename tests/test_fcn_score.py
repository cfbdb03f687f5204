"""The streaming FCN-score runner: matching, protocol, quirks, resume, bad input, eval.py hook, segmenter."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from src.dataset.cityscapes import list_label_frames
from src.dataset.cityscapes_labels import colorize_train_ids, label_ids_to_train_ids
from src.dataset.demo import write_cityscapes_tree
from src.errors import UserError
from src.metrics import fcn_protocol, fcn_score
from src.metrics.segmentation_metrics import fast_hist, get_scores, strict_hist
from tests.conftest import TINY
from tests.test_caffemodel import encode_net, fcn8s_layers, reduced_widths

H, W = 32, 64


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("fcn") / "cityscapes"
    ids = write_cityscapes_tree(root, num_train=4, num_val=3, height=H, width=W, seed=2)
    return str(root), ids[4:]


def _gt(root, fid):
    with Image.open(os.path.join(root, "gtFine", "val", fid.split("_")[0], f"{fid}_gtFine_labelIds.png")) as img:
        return label_ids_to_train_ids(np.asarray(img))


def _photo(root, fid):
    with Image.open(os.path.join(root, "leftImg8bit", "val", fid.split("_")[0], f"{fid}_leftImg8bit.png")) as img:
        return img.convert("RGB")


def _write_results(folder, root, ids, size=16, suffix="_leftImg8bit.png"):
    os.makedirs(folder, exist_ok=True)
    for fid in ids:
        _photo(root, fid).resize((size, size), Image.BICUBIC).save(os.path.join(folder, fid + suffix))
    return str(folder)


class Scripted:
    """A predictor returning fixed maps per call (to hit the channel-19 quirks exactly)."""

    name = "scripted"

    def __init__(self, maps, fail_at=None):
        self.maps, self.calls, self.fail_at, self.inputs = list(maps), 0, fail_at, []

    def predict(self, rgb):
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        self.inputs.append(rgb.shape)
        self.calls += 1
        return self.maps[self.calls - 1]


def _frames(root, ids, results):
    labels = dict(list_label_frames(root, "val"))
    return [(fid, ("result", os.path.join(results, fid + "_leftImg8bit.png")), labels[fid]) for fid in ids]


def test_quirks_counted_and_resume_gives_the_same_matrix(tree, tmp_path):
    root, ids = tree
    results = _write_results(tmp_path / "res", root, ids)
    gts = [_gt(root, fid) for fid in ids]
    rng = np.random.default_rng(0)
    maps = [rng.integers(0, 19, (H, W)).astype(np.uint8) for _ in ids]
    maps[0][gts[0] == 4] = 19  # channel 19 on GT 4: shifted into row 5 as "road"
    g2 = gts[1].copy()
    g2[0, 0] = 18  # ensure a bicycle pixel exists (we patch the label file below)
    lbl_path = dict(list_label_frames(root, "val"))[ids[1]]
    copy = tmp_path / "cs"
    import shutil

    shutil.copytree(root, copy)
    lbl_copy = str(lbl_path).replace(root, str(copy))
    ids_img = np.asarray(Image.open(lbl_copy)).copy()
    ids_img[0, 0] = 33  # label id 33 = bicycle = train id 18
    Image.fromarray(ids_img).save(lbl_copy)
    maps[1][0, 0] = 19  # -> whole frame dropped by the reference
    frames = _frames(str(copy), ids, results)

    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        fcn_score.score_frames(frames, Scripted(maps, fail_at=2), str(out))
    assert os.path.isfile(out / fcn_score.PARTIAL_NAME)
    logs = []
    pred = Scripted(maps[2:])
    metrics = fcn_score.score_frames(frames, pred, str(out), log=logs.append)
    assert pred.calls == 1 and any("resuming" in line and "2 of 3" in line for line in logs)
    assert pred.inputs == [(H, W, 3)]  # results upsampled to the label size
    assert not os.path.isfile(out / fcn_score.PARTIAL_NAME)
    gts[1] = g2
    want = sum(fast_hist(g.ravel(), m.ravel(), 19) for g, m in zip(gts, maps))
    np.testing.assert_array_equal(np.load(out / "fcn_confusion.npy"), want)
    assert metrics["dropped_frames"] == 1 and metrics["dropped_frame_ids"] == [ids[1]]
    assert metrics["dropped_pixels"] == int((g2 != 255).sum())
    assert metrics["out_of_range_pixels"] == int((gts[0] == 4).sum()) + 1
    assert abs(metrics["mean_class_iou"] - get_scores(want)[2]) < 1e-12
    saved = json.loads((out / "fcn_scores.json").read_text())
    assert saved["num_frames"] == 3 and "road" in saved["per_class"]
    assert (out / "evaluation_results.txt").read_text().startswith("Mean pixel accuracy: ")

    # strict: nothing dropped, channel 19 counted as wrong
    m2 = fcn_score.score_frames(frames, Scripted(maps), str(tmp_path / "strict"), strict=True)
    want2 = sum(strict_hist(g.ravel(), m.ravel(), 19) for g, m in zip(gts, maps))
    np.testing.assert_array_equal(np.load(tmp_path / "strict" / "fcn_confusion.npy"), want2)
    assert m2["dropped_frames"] == 0 and m2["mode"] == "strict"


def test_resume_refuses_other_settings(tree, tmp_path):
    root, ids = tree
    frames = _frames(root, ids, _write_results(tmp_path / "res", root, ids))
    maps = [np.zeros((H, W), np.uint8)] * 3
    with pytest.raises(KeyboardInterrupt):
        fcn_score.score_frames(frames, Scripted(maps, fail_at=1), str(tmp_path / "o"))
    with pytest.raises(UserError, match="other settings"):
        fcn_score.score_frames(frames, Scripted(maps), str(tmp_path / "o"), strict=True)
    fcn_score.score_frames(frames, Scripted(maps), str(tmp_path / "o"), strict=True, resume=False)


def test_bad_input(tree, tmp_path):
    root, ids = tree
    with pytest.raises(UserError, match="Cityscapes folder not found"):
        list_label_frames(tmp_path / "nope")
    with pytest.raises(UserError, match=r"gtFine/val.*not a prepared pix2pix dataset"):
        list_label_frames(tmp_path)
    results = _write_results(tmp_path / "res", root, ids[:1])
    Image.new("RGB", (8, 8)).save(os.path.join(results, "frankfurt_000000_000294_leftImg8bit.png"))
    with pytest.raises(UserError, match=r"frankfurt_000000_000294_leftImg8bit.png matches no label frame"):
        fcn_score.evaluate(root, "x.ckpt", result_dir=results)
    os.remove(os.path.join(results, "frankfurt_000000_000294_leftImg8bit.png"))
    gray = os.path.join(results, ids[0] + "_leftImg8bit.png")
    Image.new("L", (8, 8)).save(gray)
    with pytest.raises(UserError, match=r"is single-channel \(mode L\)"):
        fcn_protocol.load_result_rgb(gray)
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 255)).save(rgba)
    assert fcn_protocol.load_result_rgb(rgba).shape == (4, 4, 3)
    with pytest.raises(UserError, match="segmenter checkpoint not found"):
        fcn_protocol.load_segmenter(tmp_path / "missing.ckpt")


def test_fcn8s_end_to_end_and_cli(tree, tmp_path, capsys):
    from src.metrics.caffemodel import convert_caffemodel

    root, ids = tree
    cm_path = tmp_path / "tiny.caffemodel"
    cm_path.write_bytes(encode_net(fcn8s_layers(reduced_widths(16))))
    ckpt = convert_caffemodel(str(cm_path), str(tmp_path / "tiny.ckpt"), allow_reduced_width=True, log=lambda *_: None)
    results = _write_results(tmp_path / "res", root, ids, suffix="_fake_B.png")
    argv = ["--cityscapes_dir", root, "--result_dir", results, "--fcn_ckpt", ckpt, "--max_frames", "2"]
    assert fcn_score.main(argv) == 0
    out = capsys.readouterr().out
    assert "ms/frame" in out and "ETA" in out and "mean class IoU" in out
    metrics = json.loads(open(os.path.join(results, "fcn_score", "fcn_scores.json")).read())
    assert metrics["num_frames"] == 2 and metrics["num_label_frames"] == 3 and metrics["ms_per_frame"] > 0
    assert fcn_score.main(["--cityscapes_dir", root, "--fcn_ckpt", ckpt, "--benchmark", "1"]) == 0
    assert "benchmark:" in capsys.readouterr().out


def test_photo_to_labels_nearest_colour(tree, tmp_path):
    root, ids = tree
    folder = tmp_path / "labels"
    os.makedirs(folder)
    for fid in ids:
        colour = colorize_train_ids(_gt(root, fid))
        Image.fromarray(colour).resize((16, 16), Image.NEAREST).save(folder / f"{fid}.png")
    metrics = fcn_score.evaluate(
        root, None, result_dir=str(folder), task="photo_to_labels", out_dir=str(tmp_path / "o")
    )
    assert metrics["mode"] == "strict" and metrics["mean_pixel_acc"] > 0.5
    assert metrics["segmenter"] == "nearest_palette_colour"


def test_tiny_segmenter_real_mode(tree, tmp_path):
    from src.metrics.segmenter import train_segmenter

    root, ids = tree
    ckpt = str(tmp_path / "seg.ckpt")
    meta = train_segmenter(root, ckpt, height=H, width=W, width_mult=4, max_steps=3, batch_size=2, log=lambda *_: None)
    assert meta["steps"] == 3
    metrics = fcn_score.evaluate(root, ckpt, real=True, real_size=16, out_dir=str(tmp_path / "real"))
    assert metrics["num_frames"] == 3 and metrics["segmenter"].startswith("tiny_unet")
    assert "real photos at 16x16" in metrics["description"]


def test_eval_hook_on_pix2pix_outputs(tree, tmp_path):
    """eval.py --fcn_score on a tiny pix2pix trained for two steps on the demo tree's pix2pix layout."""
    import eval as eval_script
    import train as train_script
    from src.cli import main_wrapper
    from src.dataset.cityscapes import prepare_pix2pix
    from src.metrics.caffemodel import convert_caffemodel

    root, ids = tree
    data = str(tmp_path / "p2p")
    prepare_pix2pix(root, data, size=32)
    values = dict(TINY, dataroot=data, outputs_dir=str(tmp_path / "runs"), name="r", max_steps=2, direction="BtoA")
    argv = [x for k, v in values.items() for x in (f"--{k}", str(v))]
    assert main_wrapper(train_script.run, argv) == 0
    cm_path = tmp_path / "tiny.caffemodel"
    cm_path.write_bytes(encode_net(fcn8s_layers(reduced_widths(16))))
    ckpt = convert_caffemodel(str(cm_path), str(tmp_path / "tiny.ckpt"), allow_reduced_width=True, log=lambda *_: None)
    g = os.path.join(str(tmp_path / "runs"), "r", "G_latest.ckpt")
    assert main_wrapper(eval_script.run, ["--ckpt", g, "--fcn_score", "True", "--cityscapes_dir", root]) == 2
    assert main_wrapper(eval_script.run, ["--ckpt", g, "--fcn_score", "True", "--cityscapes_dir", root,
                                          "--fcn_ckpt", ckpt]) == 0  # fmt: skip
    scores = os.path.join(str(tmp_path / "runs"), "r", "eval_test", "fcn_score", "fcn_scores.json")
    assert json.loads(open(scores).read())["num_frames"] == 3
