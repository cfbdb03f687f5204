import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from data.prepare_cityscapes import main as prepare_main
from src.dataset import demo
from src.dataset.cityscapes import list_frames, prepare_pix2pix
from src.dataset.cityscapes_labels import LABELS, colorize_label_ids
from src.errors import UserError

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VALID_IDS = {1, 7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 26}
H, W = 32, 64


@pytest.fixture(scope="module")
def scenes():
    return [demo.render_scene(seed, 48, 96) for seed in range(12)]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("cs") / "cityscapes"
    ids = demo.write_cityscapes_tree(root, num_train=3, num_val=2, height=H, width=W, seed=5)
    return root, ids


def _read(path):
    with Image.open(path) as img:
        return img.mode, np.asarray(img)


# ---------------------------------------------------------------------------------------------------- render_scene


def test_render_scene_is_deterministic_and_seed_dependent():
    a, b, c = demo.render_scene(3, H, W), demo.render_scene(3, H, W), demo.render_scene(4, H, W)
    for key in ("label_ids", "instance_ids", "photo"):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["label_ids"], c["label_ids"])
    assert not np.array_equal(a["photo"], c["photo"])


def test_render_scene_shapes_and_dtypes():
    s = demo.render_scene(0, 40, 72)
    assert s["label_ids"].shape == (40, 72) and s["label_ids"].dtype == np.uint8
    assert s["instance_ids"].shape == (40, 72) and s["instance_ids"].dtype == np.int32
    assert s["photo"].shape == (40, 72, 3) and s["photo"].dtype == np.uint8


def test_label_ids_come_from_the_documented_set(scenes):
    assert set(demo.SCENE_LABEL_IDS) == VALID_IDS
    seen = set()
    for s in scenes:
        ids = set(np.unique(s["label_ids"]).tolist())
        assert ids <= VALID_IDS
        seen |= ids
    # The core street classes appear across a handful of scenes.
    assert {7, 8, 11, 17, 21, 23, 24, 26} <= seen


def test_instance_ids_follow_cityscapes_convention(scenes):
    with_instances = 0
    for s in scenes:
        label, inst = s["label_ids"].astype(np.int32), s["instance_ids"]
        things = np.isin(label, (24, 26))
        assert (inst[things] // 1000 == label[things]).all()
        np.testing.assert_array_equal(inst[~things], label[~things])
        with_instances += bool(things.any())
    assert with_instances >= 0.8 * len(scenes)


def test_scene_layout_is_street_like(scenes):
    for s in scenes:
        label = s["label_ids"]
        h = label.shape[0]
        assert not np.isin(label[: h // 4], (7, 8)).any(), "road or sidewalk in the top quarter"
        assert not (label[-h // 4 :] == 23).any(), "sky in the bottom quarter"
    bottom = np.stack([s["label_ids"][-s["label_ids"].shape[0] // 3 :] for s in scenes])
    assert (bottom == 7).mean() > 0.3  # road dominates the lower third, as in Cityscapes


def test_photo_colours_follow_classes(scenes):
    def mean_color(label_id):
        pix = np.concatenate([s["photo"][s["label_ids"] == label_id] for s in scenes]).astype(np.float64)
        return pix.mean(axis=0)

    veg, sky, road = mean_color(21), mean_color(23), mean_color(7)
    assert veg[1] > veg[0] and veg[1] > veg[2]  # vegetation is green
    assert sky.mean() > road.mean() + 30  # sky is brighter than asphalt
    assert sky[2] > sky[0]  # and blue-ish


def test_car_colours_vary_for_the_same_layout_class(scenes):
    # Label -> photo is one-to-many: car pixels of different scenes have very different mean colours.
    means = [s["photo"][s["label_ids"] == 26].mean(axis=0) for s in scenes if (s["label_ids"] == 26).sum() > 50]
    assert len(means) >= 3
    assert np.ptp(np.array(means), axis=0).max() > 40


def test_small_scene_still_has_road_and_objects():
    s = demo.render_scene(7, 64, 128)
    assert (s["label_ids"] == 7).mean() > 0.1
    assert (s["instance_ids"] >= 1000).any()


@pytest.mark.parametrize("args", [(0, 8, 64), (0, 64, 10), (-1, 32, 64)])
def test_render_scene_rejects_bad_arguments(args):
    with pytest.raises(UserError):
        demo.render_scene(*args)


def test_scene_seed_depends_on_split_and_index():
    seeds = {demo.scene_seed(0, split, i) for split in ("train", "val") for i in range(5)}
    assert len(seeds) == 10
    assert demo.scene_seed(0, "train", 1) == demo.scene_seed(0, "train", 1)
    assert demo.scene_seed(0, "train", 1) != demo.scene_seed(1, "train", 1)


# ---------------------------------------------------------------------------------------------------- tree writer


def test_tree_file_names(tree):
    root, ids = tree
    assert ids == [
        "synthbergen_000000_000019",
        "synthdorf_000000_000019",
        "synthbergen_000001_000019",
        "synthstadt_000000_000019",
        "synthstadt_000001_000019",
    ]
    for split, frame in [("train", ids[0]), ("train", ids[2]), ("val", ids[4])]:
        city = frame.split("_")[0]
        assert (root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png").is_file()
        for kind in ("labelIds", "instanceIds", "color"):
            assert (root / "gtFine" / split / city / f"{frame}_gtFine_{kind}.png").is_file()
    assert len(list(root.rglob("*.png"))) == 5 * 4
    assert not [p for p in root.rglob("*") if p.name.startswith(".")], "temporary files left behind"


def test_tree_files_read_back_exactly(tree):
    root, ids = tree
    for split, index, frame in [("train", 1, ids[1]), ("val", 0, ids[3])]:
        scene = demo.render_scene(demo.scene_seed(5, split, index), H, W)
        city = frame.split("_")[0]
        gt = root / "gtFine" / split / city
        mode, label = _read(gt / f"{frame}_gtFine_labelIds.png")
        assert mode == "L"
        np.testing.assert_array_equal(label, scene["label_ids"])
        mode, inst = _read(gt / f"{frame}_gtFine_instanceIds.png")
        assert mode.startswith("I")  # 16-bit PNG
        np.testing.assert_array_equal(inst.astype(np.int32), scene["instance_ids"])
        mode, color = _read(gt / f"{frame}_gtFine_color.png")
        assert mode == "RGB"
        np.testing.assert_array_equal(color, colorize_label_ids(scene["label_ids"]))
        _, photo = _read(root / "leftImg8bit" / split / city / f"{frame}_leftImg8bit.png")
        np.testing.assert_array_equal(photo, scene["photo"])


def test_tree_splits_differ(tree):
    root, ids = tree
    _, train0 = _read(root / "leftImg8bit" / "train" / "synthbergen" / f"{ids[0]}_leftImg8bit.png")
    _, val0 = _read(root / "leftImg8bit" / "val" / "synthstadt" / f"{ids[3]}_leftImg8bit.png")
    assert not np.array_equal(train0, val0)


def test_tree_writer_rejects_empty_request(tmp_path):
    with pytest.raises(UserError, match="both 0"):
        demo.write_cityscapes_tree(tmp_path, 0, 0)


# ------------------------------------------------------------------------------------------------ pix2pix layout


def test_prepare_pix2pix_side_by_side(tree, tmp_path):
    root, ids = tree
    size = 24
    counts = prepare_pix2pix(root, tmp_path / "p2p", size=size)
    assert counts == {"train": 3, "test": 2}
    assert sorted(os.listdir(tmp_path / "p2p" / "train")) == sorted(f"{i}.png" for i in ids[:3])
    assert sorted(os.listdir(tmp_path / "p2p" / "test")) == sorted(f"{i}.png" for i in ids[3:])
    palette = {lb.color for lb in LABELS}
    for frame in ids[:3]:
        mode, pair = _read(tmp_path / "p2p" / "train" / f"{frame}.png")
        assert mode == "RGB" and pair.shape == (size, 2 * size, 3)
        city = frame.split("_")[0]
        with Image.open(root / "leftImg8bit" / "train" / city / f"{frame}_leftImg8bit.png") as im:
            photo = np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC))
        with Image.open(root / "gtFine" / "train" / city / f"{frame}_gtFine_color.png") as im:
            color = np.asarray(im.convert("RGB").resize((size, size), Image.NEAREST))
        np.testing.assert_array_equal(pair[:, :size], photo)  # photo left (A)
        np.testing.assert_array_equal(pair[:, size:], color)  # colour labels right (B)
        assert {tuple(c) for c in pair[:, size:].reshape(-1, 3).tolist()} <= palette


def test_prepare_pix2pix_jpeg_and_val_name(tree, tmp_path):
    root, ids = tree
    counts = prepare_pix2pix(root, tmp_path / "p2p", size=16, splits=(("val", "val"),), jpeg=True)
    assert counts == {"val": 2}
    assert sorted(os.listdir(tmp_path / "p2p" / "val")) == sorted(f"{i}.jpg" for i in ids[3:])
    with Image.open(tmp_path / "p2p" / "val" / f"{ids[3]}.jpg") as im:
        assert im.format == "JPEG" and im.size == (32, 16)


def test_missing_tree_gives_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        prepare_pix2pix(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "cs" / "leftImg8bit" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match=r"gtFine[/\\]train"):
        prepare_pix2pix(tmp_path / "cs", tmp_path / "out")
    (tmp_path / "cs" / "gtFine" / "train").mkdir(parents=True)
    with pytest.raises(UserError, match="no \\*_leftImg8bit.png files"):
        list_frames(tmp_path / "cs", "train")
    assert not (tmp_path / "out").exists()


def test_unpaired_frame_is_named(tree, tmp_path):
    root, ids = tree
    city = ids[0].split("_")[0]
    stray = tmp_path / "cs" / "leftImg8bit" / "train" / city / f"{city}_000099_000019_leftImg8bit.png"
    (tmp_path / "cs" / "gtFine" / "train" / city).mkdir(parents=True)
    stray.parent.mkdir(parents=True)
    Image.new("RGB", (4, 2)).save(stray)
    good = f"{city}_000001_000019"
    Image.new("RGB", (4, 2)).save(stray.parent / f"{good}_leftImg8bit.png")
    Image.new("RGB", (4, 2)).save(tmp_path / "cs" / "gtFine" / "train" / city / f"{good}_gtFine_color.png")
    with pytest.raises(UserError, match="000099_000019_leftImg8bit.png has no matching"):
        list_frames(tmp_path / "cs", "train")


# ------------------------------------------------------------------------------------------------------------ CLIs


def test_demo_cli_writes_both_layouts(tmp_path, capsys):
    rc = demo.main(["--out", str(tmp_path), "--num_train", "2", "--num_val", "1", "--height", "32", "--width", "64"])
    assert rc == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "3 scenes" in out
    assert len(list((tmp_path / "cityscapes" / "gtFine").rglob("*_labelIds.png"))) == 3
    _, pair = _read(tmp_path / "pix2pix" / "test" / "synthstadt_000000_000019.png")
    assert pair.shape == (32, 64, 3)  # default pix2pix size = scene height


def test_demo_cli_reports_user_errors(tmp_path, capsys):
    assert demo.main(["--out", str(tmp_path), "--height", "4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "too small" in err


def test_prepare_cli_missing_dir(tmp_path, capsys):
    assert prepare_main(["--cityscapes_dir", str(tmp_path / "x"), "--output_dir", str(tmp_path / "o")]) == 2
    assert "error: " in capsys.readouterr().err


def test_prepare_script_runs_from_repo_root(tree, tmp_path):
    root, _ = tree
    out = tmp_path / "o"
    cmd = [sys.executable, "data/prepare_cityscapes.py", "--cityscapes_dir", str(root), "--output_dir", str(out)]
    cmd += ["--layout", "pix2pix", "--size", "16", "--val_name", "val"]
    res = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stderr
    assert len(os.listdir(out / "train")) == 3 and len(os.listdir(out / "val")) == 2
