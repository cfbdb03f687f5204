"""CycleGAN and pix2pixHD layouts and combine_A_and_B on a tiny synthetic Cityscapes tree."""

import os

import numpy as np
import pytest
from PIL import Image

from data import combine_A_and_B as cab
from data import prepare_cityscapes as prep
from src.dataset.cityscapes import prepare_pix2pixhd
from src.dataset.combine import combine
from src.dataset.demo import write_cityscapes_tree
from src.errors import UserError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs") / "cityscapes"
    ids = write_cityscapes_tree(root, num_train=2, num_val=1, height=32, width=64, seed=1)
    return str(root), ids


def test_cyclegan_layout(tree, tmp_path):
    root, ids = tree
    assert (
        prep.main(["--cityscapes_dir", root, "--output_dir", str(tmp_path), "--layout", "cyclegan", "--size", "16"])
        == 0
    )
    assert sorted(os.listdir(tmp_path)) == ["testA", "testB", "trainA", "trainB"]
    assert sorted(os.listdir(tmp_path / "trainA")) == sorted(f"{i}.png" for i in ids[:2])
    assert os.listdir(tmp_path / "testB") == [f"{ids[2]}.png"]
    b = np.asarray(Image.open(tmp_path / "testB" / f"{ids[2]}.png"))
    assert b.shape == (16, 16, 3)
    color = np.asarray(
        Image.open(os.path.join(root, "gtFine", "val", ids[2].split("_")[0], f"{ids[2]}_gtFine_color.png"))
    )
    assert {tuple(c) for c in b.reshape(-1, 3)} <= {tuple(c) for c in color.reshape(-1, 3)}  # NEAREST: exact colours


def test_pix2pixhd_layout_label_and_instance_not_swapped(tree, tmp_path):
    root, ids = tree
    counts = prepare_pix2pixhd(root, tmp_path)
    assert counts == {"train": 2, "test": 1}
    assert sorted(os.listdir(tmp_path)) == [
        "test_img",
        "test_inst",
        "test_label",
        "train_img",
        "train_inst",
        "train_label",
    ]
    fid = ids[0]
    gt = os.path.join(root, "gtFine", "train", fid.split("_")[0], fid)
    label = np.asarray(Image.open(tmp_path / "train_label" / f"{fid}.png"))
    inst = np.asarray(Image.open(tmp_path / "train_inst" / f"{fid}.png"))
    np.testing.assert_array_equal(label, np.asarray(Image.open(gt + "_gtFine_labelIds.png")))
    np.testing.assert_array_equal(inst, np.asarray(Image.open(gt + "_gtFine_instanceIds.png")))
    assert label.max() < 34 and inst.dtype == np.uint16
    assert np.asarray(Image.open(tmp_path / "train_img" / f"{fid}.png")).shape == (32, 64, 3)
    # resized: width 32, aspect kept, ids stay ids
    out2 = tmp_path / "small"
    prep.main(["--cityscapes_dir", root, "--output_dir", str(out2), "--layout", "pix2pixhd", "--size", "32"])
    small = np.asarray(Image.open(out2 / "train_label" / f"{fid}.png"))
    assert small.shape == (16, 32) and set(np.unique(small)) <= set(np.unique(label))


def test_pix2pixhd_missing_instance_file(tree, tmp_path):
    root, ids = tree
    import shutil

    copy = tmp_path / "cs"
    shutil.copytree(root, copy)
    fid = ids[2]
    os.remove(copy / "gtFine" / "val" / fid.split("_")[0] / f"{fid}_gtFine_instanceIds.png")
    with pytest.raises(UserError, match=f"{fid}_gtFine_instanceIds.png is missing"):
        prepare_pix2pixhd(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before writing


def test_combine_a_and_b(tmp_path):
    rng = np.random.default_rng(0)
    for side in "AB":
        for split in ("train", "test"):
            os.makedirs(tmp_path / side / split)
            for name in ("x", "y"):
                arr = rng.integers(0, 256, (8, 10, 3), dtype=np.uint8)
                Image.fromarray(arr).save(tmp_path / side / split / f"{name}.{'jpg' if side == 'A' else 'png'}")
    counts = combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB")
    assert counts == {"train": 2, "test": 2}
    ab = np.asarray(Image.open(tmp_path / "AB" / "train" / "y.png"))
    assert ab.shape == (8, 20, 3)
    np.testing.assert_array_equal(ab[:, 10:], np.asarray(Image.open(tmp_path / "B" / "train" / "y.png")))
    Image.new("RGB", (9, 8)).save(tmp_path / "B" / "test" / "x.png")
    with pytest.raises(UserError, match=r"x.jpg is 10x8 but .*x.png is 9x8"):
        combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB2")
    argv = ["--fold_A", str(tmp_path / "A"), "--fold_B", str(tmp_path / "B"), "--fold_AB", str(tmp_path / "AB3")]
    assert cab.main(argv + ["--resize", "6"]) == 0
    os.remove(tmp_path / "B" / "train" / "x.png")
    with pytest.raises(UserError, match=r"x.jpg has no partner"):
        combine(tmp_path / "A", tmp_path / "B", tmp_path / "AB4")
