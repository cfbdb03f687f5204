"""FCN-score metrics against hand-computed cases and a loop-based re-statement of the reference formulas."""

import numpy as np

from src.metrics.segmentation_metrics import fast_hist, frame_histogram, get_scores, per_class_table, strict_hist

N = 19


def _loop_scores(hist):
    """The reference formulas written out element by element (eps = 1e-12)."""
    n = hist.shape[0]
    total = sum(hist[i, j] for i in range(n) for j in range(hist.shape[1]))
    diag = [hist[i, i] for i in range(n)]
    acc = sum(diag) / (total + 1e-12)
    cl_acc = [diag[i] / (sum(hist[i, :]) + 1e-12) for i in range(n)]
    iou = [diag[i] / (sum(hist[i, :]) + sum(hist[:n, i]) - diag[i] + 1e-12) for i in range(n)]
    return acc, np.mean(cl_acc), np.mean(iou), cl_acc, iou


def test_scores_match_reference_formulas_on_random_confusions():
    rng = np.random.default_rng(0)
    for trial in range(20):
        hist = rng.integers(0, 10_000, (N, N)).astype(np.int64)
        hist[rng.random((N, N)) < 0.3] = 0
        if trial % 4 == 0:
            hist[3, :] = 0
            hist[:, 3] = 0  # an absent class scores 0 and is averaged in
        got, want = get_scores(hist), _loop_scores(hist)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


def test_hand_computed_case():
    gt = np.array([[0, 0, 1], [1, 255, 2]], dtype=np.uint8)
    pred = np.array([[0, 1, 1], [1, 0, 0]], dtype=np.uint8)
    hist = fast_hist(gt.ravel(), pred.ravel(), 3)
    np.testing.assert_array_equal(hist, [[1, 1, 0], [0, 2, 0], [1, 0, 0]])
    acc, mean_acc, mean_iou, cl_acc, iou = get_scores(hist)
    assert abs(acc - 3 / 5) < 1e-12
    np.testing.assert_allclose(cl_acc, [1 / 2, 1, 0], atol=1e-12)
    np.testing.assert_allclose(iou, [1 / 3, 2 / 3, 0], atol=1e-12)
    assert abs(mean_iou - 1 / 3) < 1e-12 and abs(mean_acc - 0.5) < 1e-12


def test_channel_19_shifts_to_next_row_as_road():
    gt = np.array([4, 4, 7], dtype=np.uint8)
    pred = np.array([19, 4, 7], dtype=np.uint8)
    hist, info = frame_histogram(gt, pred, N)
    expected = np.zeros((N, N), np.int64)
    expected[5, 0] = 1  # GT 4 predicted 19 -> counted as GT 5 predicted road
    expected[4, 4] = 1
    expected[7, 7] = 1
    np.testing.assert_array_equal(hist, expected)
    assert info == dict(valid_pixels=3, out_of_range_pixels=1, dropped=False, dropped_pixels=0)
    s_hist, s_info = frame_histogram(gt, pred, N, strict=True)
    assert s_hist.shape == (N, N + 1) and s_hist[4, N] == 1 and s_hist[5].sum() == 0
    assert not s_info["dropped"]
    # strict: the pixel counts as wrong for class 4 and as nobody's false positive
    _, _, _, cl_acc, iou = get_scores(s_hist)
    assert abs(cl_acc[4] - 0.5) < 1e-12 and abs(iou[4] - 0.5) < 1e-12


def test_frame_dropped_when_channel_19_on_bicycle():
    gt = np.array([18, 0, 0, 255], dtype=np.uint8)
    pred = np.array([19, 0, 1, 19], dtype=np.uint8)
    hist, info = frame_histogram(gt, pred, N)
    assert hist.sum() == 0 and hist.shape == (N, N)
    assert info == dict(valid_pixels=3, out_of_range_pixels=1, dropped=True, dropped_pixels=3)
    s_hist, s_info = frame_histogram(gt, pred, N, strict=True)
    assert s_hist.sum() == 3 and s_hist[18, N] == 1 and not s_info["dropped"]


def test_strict_hist_matches_fast_hist_for_in_range_predictions():
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 19, 500)
    gt[::7] = 255
    pred = rng.integers(0, 19, 500)
    np.testing.assert_array_equal(strict_hist(gt, pred, N)[:, :N], fast_hist(gt, pred, N))
    assert [round(float(np.asarray(a).sum()), 9) for a in get_scores(strict_hist(gt, pred, N))[:3]] == [
        round(float(np.asarray(a).sum()), 9) for a in get_scores(fast_hist(gt, pred, N))[:3]
    ]


def test_per_class_table_layout():
    hist = np.eye(N, dtype=np.int64) * 5
    text = per_class_table(hist)
    assert "|Class name" in text and "|Accuracy |Iou     |" in text
    assert "|road" in text and "| 1.000000|1.000000|" in text
