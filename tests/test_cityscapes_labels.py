import numpy as np
import pytest

from src.dataset import cityscapes_labels as cl
from src.errors import UserError

EXPECTED_TRAIN_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------ table


def test_table_has_35_rows_with_ids_0_to_33_and_license_plate():
    assert len(cl.LABELS) == 35
    assert sorted(lb.id for lb in cl.LABELS) == [-1] + list(range(34))
    plate = cl.NAME_TO_LABEL["license plate"]
    assert (plate.id, plate.train_id, plate.color) == (-1, -1, (0, 0, 142))


def test_train_classes_are_the_19_evaluated_classes_in_order():
    assert cl.NUM_TRAIN_CLASSES == 19
    assert cl.TRAIN_CLASS_NAMES == EXPECTED_TRAIN_NAMES
    for train_id, name in enumerate(EXPECTED_TRAIN_NAMES):
        assert cl.NAME_TO_LABEL[name].train_id == train_id


def test_selected_rows_match_cityscapes_scripts():
    car = cl.ID_TO_LABEL[26]
    assert (car.name, car.train_id, car.category, car.color, car.has_instances) == (
        "car", 13, "vehicle", (0, 0, 142), True,
    )  # fmt: skip
    assert cl.ID_TO_LABEL[7].color == (128, 64, 128)
    assert cl.ID_TO_LABEL[23].train_id == 10
    assert cl.ID_TO_LABEL[9].train_id == 255  # parking is not evaluated
    assert cl.INSTANCE_LABEL_IDS == (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)


# ------------------------------------------------------------------------------------------------------ conversions


def test_label_ids_to_train_ids_on_hand_made_map():
    ids = np.array([[0, 7, 8, 11], [23, 24, 26, 33], [1, 6, 9, 18], [12, 13, 17, 31]])
    expected = np.array([[255, 0, 1, 2], [10, 11, 13, 18], [255, 255, 255, 255], [3, 4, 5, 16]])
    for dtype in (np.uint8, np.int32, np.uint16, np.int64):
        out = cl.label_ids_to_train_ids(ids.astype(dtype))
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("bad", [34, 200, -1])
def test_label_ids_out_of_range_are_named(bad):
    ids = np.array([[7, bad], [bad, 26]], dtype=np.int32)
    with pytest.raises(UserError, match=rf"outside 0\.\.33: {bad}\b"):
        cl.label_ids_to_train_ids(ids)
    with pytest.raises(UserError, match=str(bad)):
        cl.colorize_label_ids(ids)


def test_float_label_map_is_rejected():
    with pytest.raises(UserError, match="integer"):
        cl.label_ids_to_train_ids(np.array([[7.0, 8.0]]))


def test_colorize_label_ids_uses_color_png_colours():
    ids = np.array([[7, 26], [0, 21]], dtype=np.uint8)
    rgb = cl.colorize_label_ids(ids)
    assert rgb.shape == (2, 2, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0, 0], (128, 64, 128))
    np.testing.assert_array_equal(rgb[0, 1], (0, 0, 142))
    np.testing.assert_array_equal(rgb[1, 0], (0, 0, 0))
    np.testing.assert_array_equal(rgb[1, 1], (107, 142, 35))


def test_palette_is_train_id_ordered_and_a_copy():
    pal = cl.train_id_palette()
    assert pal.shape == (19, 3) and pal.dtype == np.uint8
    np.testing.assert_array_equal(pal[0], (128, 64, 128))
    np.testing.assert_array_equal(pal[13], (0, 0, 142))
    np.testing.assert_array_equal(pal[18], (119, 11, 32))
    pal[0] = 0
    np.testing.assert_array_equal(cl.train_id_palette()[0], (128, 64, 128))


def test_colorize_train_ids_rejects_non_train_ids():
    with pytest.raises(UserError, match="19"):
        cl.colorize_train_ids(np.array([[0, 19]]))
    np.testing.assert_array_equal(cl.colorize_train_ids(np.array([[255]]))[0, 0], (0, 0, 0))


def test_colour_round_trip_exact_and_with_small_noise():
    ids = np.array(list(range(19)) + [255], dtype=np.uint8).reshape(4, 5)
    rgb = cl.colorize_train_ids(ids)
    np.testing.assert_array_equal(cl.color_to_train_ids(rgb), ids)
    # L1 noise up to 9 stays below half the smallest palette distance (bus/train: 20).
    rng = np.random.default_rng(0)
    noisy = np.clip(rgb.astype(int) + rng.integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(cl.color_to_train_ids(noisy), ids)
    # An alpha channel (Cityscapes colour PNGs are RGBA) is ignored.
    rgba = np.concatenate([rgb, np.full(ids.shape + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(cl.color_to_train_ids(rgba), ids)


def test_nearest_colour_void_handling():
    dark = np.array([[[10, 5, 0], [0, 0, 60]]], dtype=np.uint8)  # near black; near truck (0, 0, 70)
    np.testing.assert_array_equal(cl.color_to_train_ids(dark), [[255, 14]])
    # Without void, black goes to its nearest class colour: truck (L1 70).
    np.testing.assert_array_equal(cl.color_to_train_ids(dark, include_void=False), [[14, 14]])


def test_color_to_train_ids_validates_input():
    with pytest.raises(UserError, match="HxWx3"):
        cl.color_to_train_ids(np.zeros((4, 4), np.uint8))
    with pytest.raises(UserError, match="uint8"):
        cl.color_to_train_ids(np.zeros((4, 4, 3), np.float32))


# ------------------------------------------------------------------------------------------------------- boundaries


def test_boundary_on_hand_made_4x4_map():
    inst = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]], dtype=np.int32)
    expected = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]], dtype=np.float32)
    out = cl.instance_ids_to_boundary(inst)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)


def test_boundary_matches_a_loop_reference_and_is_zero_on_constant_maps():
    rng = np.random.default_rng(1)
    inst = rng.choice([26000, 26001, 24000, 7], size=(9, 11)).astype(np.int32)
    ref = np.zeros(inst.shape, np.float32)
    h, w = inst.shape
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                if 0 <= y + dy < h and 0 <= x + dx < w and inst[y + dy, x + dx] != inst[y, x]:
                    ref[y, x] = 1.0
    np.testing.assert_array_equal(cl.instance_ids_to_boundary(inst), ref)
    assert not cl.instance_ids_to_boundary(np.full((5, 6), 26001, np.int32)).any()


def test_boundary_rejects_non_2d_input():
    with pytest.raises(UserError, match="2-D"):
        cl.instance_ids_to_boundary(np.zeros((2, 3, 4), np.int32))
