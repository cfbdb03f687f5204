"""Paired dataset, transforms and image I/O on tiny images written into tmp_path."""

import os

import numpy as np
import pytest
from PIL import Image

from src.dataset import transforms
from src.dataset.aligned import AlignedDataset
from src.dataset.image_io import list_images, load_image, save_image, tensor_to_uint8, to_tensor_array
from src.errors import UserError

STEP = 16  # pixel value step per coordinate; 16x16 halves keep values <= 240


def pattern_a(w=16, h=16):
    """R encodes x, G encodes y: every pixel position is recoverable from its colour."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * STEP, y * STEP, np.full_like(x, 7)], axis=-1).astype(np.uint8)


def pattern_b(w=16, h=16):
    """A different encoding of the same positions."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([255 - x * STEP, 255 - y * STEP, np.full_like(x, 200)], axis=-1).astype(np.uint8)


def sample(ds, index, rng):
    """``ds.get`` by name: ``(input, target, index)``, and no other keys."""
    got = ds.get(index, rng)
    assert list(got) == list(ds.columns) == ["input", "target", "index"]
    return got["input"], got["target"], got["index"]


def write_ab(folder, name, a, b):
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    Image.fromarray(np.concatenate([a, b], axis=1)).save(path)
    return path


def write(path, arr, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = Image.fromarray(arr) if mode is None else Image.fromarray(arr).convert(mode)
    img.save(path)
    return path


def decode_a(chw):
    hwc = tensor_to_uint8(chw).astype(int)
    return hwc[..., 0] // STEP, hwc[..., 1] // STEP


def decode_b(chw):
    hwc = tensor_to_uint8(chw).astype(int)
    return (255 - hwc[..., 0]) // STEP, (255 - hwc[..., 1]) // STEP


@pytest.fixture
def combined_root(tmp_path):
    root = tmp_path / "data"
    write_ab(root / "train", "0001.png", pattern_a(), pattern_b())
    return root


# ---------------------------------------------------------------- alignment of random crop + flip


def test_crop_and_flip_are_the_same_for_a_and_b(combined_root):
    ds = AlignedDataset(combined_root, preprocess="crop", crop_size=8)
    assert len(ds) == 1 and ds.layout == "combined"
    positions, flips = set(), set()
    for seed in range(40):
        a, b, index = sample(ds, 0, np.random.default_rng(seed))
        assert a.shape == b.shape == (3, 8, 8) and a.dtype == b.dtype == np.float32 and index == 0
        xa, ya = decode_a(a)
        xb, yb = decode_b(b)
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
        flipped = xa[0, 0] > xa[0, -1]
        # a crop is a contiguous 8x8 window (reversed in x if flipped)
        x0, y0 = xa.min(), ya.min()
        expected_x = np.arange(x0, x0 + 8)[::-1] if flipped else np.arange(x0, x0 + 8)
        np.testing.assert_array_equal(xa, np.tile(expected_x, (8, 1)))
        np.testing.assert_array_equal(ya, np.tile(np.arange(y0, y0 + 8)[:, None], (1, 8)))
        positions.add((x0, y0))
        flips.add(bool(flipped))
    assert len(positions) > 5 and flips == {True, False}


def test_same_rng_gives_same_sample_and_no_flip_is_respected(combined_root):
    ds = AlignedDataset(combined_root, preprocess="crop", crop_size=8, no_flip=True)
    for seed in range(20):
        a1, b1, _ = sample(ds, 0, np.random.default_rng([seed, 3]))
        a2, b2, _ = sample(ds, 0, np.random.default_rng([seed, 3]))
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
        xa, _ = decode_a(a1)
        assert xa[0, 0] < xa[0, -1]


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "scale_width_and_crop", "none"])
def test_identical_halves_stay_identical_after_resize(tmp_path, preprocess):
    rng = np.random.default_rng(0)
    half = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    write_ab(tmp_path / "train", "x.png", half, half)
    ds = AlignedDataset(tmp_path, preprocess=preprocess, load_size=20, crop_size=12, size_multiple=4)
    for seed in range(10):
        a, b, _ = sample(ds, 0, np.random.default_rng(seed))
        np.testing.assert_array_equal(a, b)
    # resize really happened for the resize modes (a 12x12 crop of a 20x20 resize is not a crop of the original)
    assert a.shape == ((3, 16, 16) if preprocess == "none" else (3, 12, 12))


def test_direction_btoa_swaps(combined_root):
    a2b = AlignedDataset(combined_root, direction="AtoB", preprocess="none")
    b2a = AlignedDataset(combined_root, direction="BtoA", preprocess="none", no_flip=True)
    inp, tgt = b2a.load_pair(0)
    np.testing.assert_array_equal(np.asarray(inp), pattern_b())
    np.testing.assert_array_equal(np.asarray(tgt), pattern_a())
    inp, tgt = a2b.load_pair(0)
    np.testing.assert_array_equal(np.asarray(inp), pattern_a())
    a, b, _ = sample(b2a, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(tensor_to_uint8(a), pattern_b())
    np.testing.assert_array_equal(tensor_to_uint8(b), pattern_a())


# ---------------------------------------------------------------- preprocess modes


@pytest.mark.parametrize(
    ("preprocess", "kwargs", "chw"),
    [
        ("resize_and_crop", dict(load_size=16, crop_size=8), (3, 8, 8)),
        ("crop", dict(crop_size=8), (3, 8, 8)),
        # width -> 16, height int(16*13/22)=9 -> rounded to a multiple of 4 -> 8
        ("scale_width", dict(load_size=16, crop_size=8, size_multiple=4), (3, 8, 16)),
        ("scale_width_and_crop", dict(load_size=16, crop_size=8), (3, 8, 8)),
        # 22x13 rounded to multiples of 8 -> 24x16
        ("none", dict(size_multiple=8), (3, 16, 24)),
        ("none", dict(), (3, 13, 22)),
    ],
)
def test_preprocess_output_sizes(tmp_path, preprocess, kwargs, chw):
    rng = np.random.default_rng(1)
    write_ab(tmp_path / "train", "x.png", *rng.integers(0, 256, size=(2, 13, 22, 3), dtype=np.uint8))
    ds = AlignedDataset(tmp_path, preprocess=preprocess, **kwargs)
    a, b, _ = sample(ds, 0, rng)
    assert a.shape == b.shape == chw
    size = transforms.output_size(
        (22, 13), preprocess, kwargs.get("load_size", 286), kwargs.get("crop_size", 8), kwargs.get("size_multiple", 1)
    )
    assert (1, *size[::-1]) == (1, chw[1], chw[2])


def test_scale_width_keeps_height_at_least_crop_size():
    assert transforms.resized_size((40, 10), "scale_width_and_crop", 20, 8) == (20, 8)
    assert transforms.resized_size((40, 30), "scale_width_and_crop", 20, 8) == (20, 15)


def test_unknown_preprocess_lists_valid_names(combined_root):
    with pytest.raises(UserError, match="resize_and_crop, crop, scale_width, scale_width_and_crop, none"):
        AlignedDataset(combined_root, preprocess="resize")


def test_load_size_smaller_than_crop_size(combined_root):
    with pytest.raises(UserError, match="load_size 8 is smaller than crop_size 16"):
        AlignedDataset(combined_root, load_size=8, crop_size=16)


def test_image_smaller_than_crop_names_image_and_sizes(combined_root):
    # caught when the dataset is built (headers only), before training writes anything
    with pytest.raises(UserError) as info:
        AlignedDataset(combined_root, preprocess="crop", crop_size=32)
    msg = str(info.value)
    assert "0001.png" in msg and "16x16" in msg and "crop_size 32" in msg
    # and again when a sample is loaded, for sets built with verify=False
    ds = AlignedDataset(combined_root, preprocess="crop", crop_size=32, verify=False)
    with pytest.raises(UserError) as info:
        ds.get(0, np.random.default_rng(0))
    msg = str(info.value)
    assert "0001.png" in msg and "16x16" in msg and "crop_size 32" in msg


# ---------------------------------------------------------------- layouts and folder errors


def test_separate_layout_pairs_by_name(tmp_path):
    # B files are listed in a different order and use another extension; pairing must follow the names
    write(str(tmp_path / "A" / "val" / "cat.png"), pattern_a())
    write(str(tmp_path / "A" / "val" / "sub" / "dog.png"), pattern_a()[::-1].copy())
    write(str(tmp_path / "B" / "val" / "cat.bmp"), pattern_b())
    write(str(tmp_path / "B" / "val" / "sub" / "dog.png"), pattern_b()[::-1].copy())
    ds = AlignedDataset(tmp_path, phase="val", preprocess="none")
    assert ds.layout == "separate" and len(ds) == 2
    assert ds.names == ["cat", os.path.join("sub", "dog")]
    for i, flip_y in ((0, False), (1, True)):
        a, b = ds.load_pair(i)
        exp_a, exp_b = pattern_a(), pattern_b()
        if flip_y:
            exp_a, exp_b = exp_a[::-1], exp_b[::-1]
        np.testing.assert_array_equal(np.asarray(a), exp_a)
        np.testing.assert_array_equal(np.asarray(b), exp_b)
    a, b, idx = sample(ds, 1, np.random.default_rng(5))
    assert idx == 1
    np.testing.assert_array_equal(decode_a(a)[0], decode_b(b)[0])


def test_separate_layout_missing_partner(tmp_path):
    write(str(tmp_path / "A" / "train" / "x.png"), pattern_a())
    write(str(tmp_path / "A" / "train" / "y.png"), pattern_a())
    write(str(tmp_path / "B" / "train" / "x.png"), pattern_b())
    with pytest.raises(UserError, match=r"y\.png has no partner named y\.\* in .*B.train"):
        AlignedDataset(tmp_path)


def test_separate_layout_size_mismatch(tmp_path):
    write(str(tmp_path / "A" / "train" / "x.png"), pattern_a())
    write(str(tmp_path / "B" / "train" / "x.png"), pattern_b(h=12))
    with pytest.raises(UserError, match=r"x\.png is 16x16, .*x\.png is 16x12"):
        AlignedDataset(tmp_path)


def test_separate_layout_missing_b_folder(tmp_path):
    write(str(tmp_path / "A" / "train" / "x.png"), pattern_a())
    with pytest.raises(UserError, match=r"B.train not found"):
        AlignedDataset(tmp_path)


def test_missing_phase_folder_says_what_was_looked_for(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(UserError) as info:
        AlignedDataset(tmp_path, phase="train")
    msg = str(info.value)
    assert os.path.join(str(tmp_path), "train") in msg and os.path.join(str(tmp_path), "A", "train") in msg


def test_missing_dataroot(tmp_path):
    with pytest.raises(UserError, match="dataset folder not found"):
        AlignedDataset(tmp_path / "nope")


def test_empty_folder(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match=r"no train AB images found in .*train"):
        AlignedDataset(tmp_path)


def test_odd_width_combined_image(tmp_path):
    write(str(tmp_path / "train" / "odd.png"), np.zeros((8, 17, 3), np.uint8))
    with pytest.raises(UserError, match=r"odd\.png is 17x8.*even width"):
        AlignedDataset(tmp_path)


def test_max_dataset_size(tmp_path):
    for i in range(5):
        write_ab(tmp_path / "train", f"{i}.png", pattern_a(), pattern_b())
    ds = AlignedDataset(tmp_path, max_dataset_size=3)
    assert len(ds) == 3 and [os.path.basename(p) for p in ds.paths] == ["0.png", "1.png", "2.png"]


# ---------------------------------------------------------------- corrupt files and image modes


def test_garbage_file_names_the_file(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "bad.png").write_bytes(b"this is not a png")
    with pytest.raises(UserError, match=r"cannot read image .*bad\.png"):
        AlignedDataset(tmp_path)


def test_truncated_file_names_the_file_when_loaded(combined_root):
    path = combined_root / "train" / "0001.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # header intact: passes the size check, fails on decode
    ds = AlignedDataset(combined_root)
    with pytest.raises(UserError, match=r"cannot read image .*0001\.png"):
        ds.get(0, np.random.default_rng(0))


def test_grayscale_input_nc_1(combined_root):
    ds = AlignedDataset(combined_root, preprocess="none", input_nc=1, output_nc=3, no_flip=True)
    a, b, _ = sample(ds, 0, np.random.default_rng(0))
    assert a.shape == (1, 16, 16) and b.shape == (3, 16, 16)
    pa = pattern_a().astype(np.float64)
    luma = np.rint(pa[..., 0] * 0.299 + pa[..., 1] * 0.587 + pa[..., 2] * 0.114)
    assert np.abs(tensor_to_uint8(a).astype(float) - luma).max() <= 1
    assert tensor_to_uint8(a).shape == (16, 16)


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((4, 8, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # fully transparent: hidden colour (10, 20, 30) must become white
    rgba[1, 1, 3] = 128
    write(str(tmp_path / "train" / "x.png"), rgba)
    ds = AlignedDataset(tmp_path, preprocess="none", no_flip=True)
    a, b = ds.load_pair(0)
    a = np.asarray(a)
    assert a.shape == (4, 4, 3)
    assert tuple(a[0, 0]) == (255, 255, 255) and tuple(a[0, 1]) == (10, 20, 30)
    assert 120 < a[1, 1, 0] < 140
    assert np.asarray(b).shape == (4, 4, 3)


def test_image_modes_loaded(tmp_path):
    gray16 = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    write(str(tmp_path / "g16.png"), gray16)
    img = load_image(tmp_path / "g16.png", channels=1)
    assert img.mode == "L" and np.asarray(img)[7, 7] == round(63000 / 257)
    assert load_image(tmp_path / "g16.png", channels=3).mode == "RGB"

    pal = Image.fromarray(pattern_a(8, 8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.save(tmp_path / "p.png")
    rgb = load_image(tmp_path / "p.png", channels=3)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)

    la = np.zeros((4, 4, 2), np.uint8)
    la[..., 1] = 255
    la[0, 0, 1] = 0
    Image.fromarray(la).save(tmp_path / "la.png")
    gray = np.asarray(load_image(tmp_path / "la.png", channels=1))
    assert gray[0, 0] == 255 and gray[1, 1] == 0  # transparent -> white, opaque black stays black

    with pytest.raises(ValueError):
        load_image(tmp_path / "p.png", channels=2)
    with pytest.raises(UserError, match=r"not found: .*missing\.png"):
        load_image(tmp_path / "missing.png", channels=3)


def test_list_images_recursive_sorted_skips_hidden(tmp_path):
    for rel in ("b.png", "a.JPG", "sub/c.png", ".hidden.png", ".cache/d.png", "notes.txt"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    got = [os.path.relpath(p, tmp_path) for p in list_images(tmp_path)]
    assert got == ["a.JPG", "b.png", os.path.join("sub", "c.png")]
    with pytest.raises(UserError, match=r"A images folder not found: .*nope"):
        list_images(tmp_path / "nope", what="A images")


def test_tensor_roundtrip_and_atomic_save(tmp_path):
    arr = pattern_a(8, 4)
    t = to_tensor_array(Image.fromarray(arr))
    assert t.shape == (3, 4, 8) and t.dtype == np.float32 and t.min() >= -1 and t.max() <= 1
    np.testing.assert_array_equal(tensor_to_uint8(t), arr)
    np.testing.assert_array_equal(tensor_to_uint8(np.stack([t, t])), np.stack([arr, arr]))
    assert tensor_to_uint8(np.full((1, 1, 2, 2), 3.0, np.float32)).shape == (1, 2, 2)  # clipped, NHW
    assert tensor_to_uint8(np.full((1, 2, 2), 3.0, np.float32)).max() == 255
    out = tmp_path / "out" / "img.png"
    save_image(tensor_to_uint8(t), out)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), arr)
    assert os.listdir(out.parent) == ["img.png"]  # no temp file left
    with pytest.raises(ValueError):
        save_image(t, tmp_path / "float.png")
