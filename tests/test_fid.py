"""FID / KID: the InceptionV3 against pytorch-fid's features (tests/fixtures/fid), the distances against closed forms,
folder streaming with its cache, bad input."""

import os

import numpy as np
import pytest
from PIL import Image

from src.errors import UserError
from src.metrics import fid as F
from src.metrics.inception import FID_WEIGHTS_NAME, expected_shapes, load_pt_inception, resize_bilinear
from tests.torch_pth import inception_state, write_pth

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "fid", "features.npz")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """pytorch-fid-layout weights (deterministic, random) as a .pth in a temp folder."""
    shapes = {k: shape for k, (_, shape) in expected_shapes().items()}
    path = tmp_path_factory.mktemp("fid_weights") / FID_WEIGHTS_NAME
    return str(write_pth(str(path), inception_state(shapes, seed=0)))


@pytest.fixture(scope="module")
def extractor(weights):
    return F.FeatureExtractor(weights, batch_size=4, log=lambda *_: None)


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def our_features(extractor, fixture):
    images = [fixture[f"image{i}"].transpose(2, 0, 1).astype(np.float32) / 255.0 for i in range(4)]
    return extractor.features_of_arrays(images)


def _gaussian_fid(mu1, s1, mu2, s2):
    """Closed form for commuting (here diagonal) covariances: |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(np.diag(s1)) - np.sqrt(np.diag(s2))) ** 2))


def test_frechet_distance_of_hand_computed_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    # 1 + 4 (means) + (1-2)^2 + (2-1)^2 + (3-1)^2 = 5 + 6 = 11
    assert F.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(11.0, rel=1e-12)
    assert _gaussian_fid(mu1, s1, mu2, s2) == pytest.approx(11.0)
    # a rotation of both Gaussians changes nothing (non-diagonal covariances)
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))
    assert F.frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T) == pytest.approx(11.0, rel=1e-9)
    assert F.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    # 1-d: (m1-m2)^2 + (sd1-sd2)^2
    assert F.frechet_distance([3.0], [[4.0]], [1.0], [[1.0]]) == pytest.approx(4.0 + 1.0)


def test_frechet_distance_singular_covariances_take_the_eps_path():
    logs = []
    s = np.zeros((4, 4))
    value = F.frechet_distance(np.zeros(4), s, np.ones(4), s, log=logs.append)
    assert value == pytest.approx(4.0, abs=1e-5)
    assert np.isfinite(value)


def test_kid_polynomial_kernel():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 5)), rng.standard_normal((30, 5)) + 0.5
    d = 5
    m = len(x)
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    assert F.polynomial_mmd2(x, y) == pytest.approx(sxx + syy - 2 * sxy, rel=1e-10)
    # subset size capped to n: every subset is the whole set, so the mean is the full-set value and the std 0
    mean, std = F.kernel_inception_distance(x, y, subsets=5)
    assert mean == pytest.approx(F.polynomial_mmd2(x, y), rel=1e-10) and std == pytest.approx(0.0, abs=1e-9)
    # two samples of one distribution: near zero (unbiased, so it can be negative), far below a shifted one
    z = rng.standard_normal((400, 5))
    same = F.kernel_inception_distance(z[:200], z[200:], subsets=3)[0]
    shifted = F.kernel_inception_distance(z[:200], z[200:] + 1.0, subsets=3)[0]
    assert abs(same) < 0.1 * shifted


def test_resize_matches_torch_bilinear_definition():
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = resize_bilinear(img, 6)
    assert out.shape == (2, 6, 6)
    # upsampling 4 -> 6 along w, half-pixel: src x = (j + 0.5) * 4/6 - 0.5, clamped at 0
    xs = np.maximum((np.arange(6) + 0.5) * 4 / 6 - 0.5, 0)
    row = np.interp(xs, np.arange(4), img[0, 0])
    ys = np.maximum((np.arange(6) + 0.5) * 3 / 6 - 0.5, 0)
    col = np.interp(ys, np.arange(3), img[0, :, 0])
    assert np.allclose(out[0, 0], row, atol=1e-5) and np.allclose(out[0, :, 0], col, atol=1e-5)
    assert resize_bilinear(np.ones((3, 299, 299)), 299).shape == (3, 299, 299)


@pytest.mark.slow
def test_features_match_pytorch_fid(our_features, fixture):
    ref = fixture["features"].astype(np.float64)
    assert our_features.shape == (4, 2048)
    assert np.abs(our_features - ref).max() < 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.slow  # sqrtm of a singular 2048x2048 product, twice (eps path): ~25 s on 2 cores
def test_fid_kid_of_reference_features_match_reference(fixture):
    feats = fixture["features"].astype(np.float64)
    mu1, s1 = F.statistics(feats[:2])
    mu2, s2 = F.statistics(feats[2:])
    assert F.frechet_distance(mu1, s1, mu2, s2, log=lambda *_: None) == pytest.approx(float(fixture["fid"]), rel=1e-3)
    kid, _ = F.kernel_inception_distance(feats[:2], feats[2:], subsets=3)
    assert kid == pytest.approx(float(fixture["kid"]), rel=1e-9)


@pytest.mark.slow
def test_fid_of_our_features_matches_reference(our_features, fixture):
    logs = []
    result = F.fid_kid(our_features[:2], our_features[2:], log=logs.append)
    assert result["fid"] == pytest.approx(float(fixture["fid"]), rel=1e-3)
    assert result["kid"] == pytest.approx(float(fixture["kid"]), rel=1e-3)
    assert any("biased" in line for line in logs)


def _write_images(folder, images):
    os.makedirs(folder, exist_ok=True)
    for i, img in enumerate(images):
        Image.fromarray(img).save(os.path.join(folder, f"img{i}.png"))
    return F.list_folder(folder)


def test_folders_stream_with_cache(tmp_path, extractor, fixture, monkeypatch):
    images = [fixture[f"image{i}"] for i in range(4)]
    real = _write_images(str(tmp_path / "real"), images[:2])
    fake = _write_images(str(tmp_path / "fake"), images[2:])
    cache = str(tmp_path / "cache")
    calls = []
    original = extractor.features
    monkeypatch.setattr(extractor, "features", lambda paths, what="": calls.append(what) or original(paths, what))
    logs = []
    first = F.cached_features(extractor, real, cache, "real images", log=logs.append)
    assert calls == ["real images"] and len(os.listdir(cache)) == 1
    # streamed features equal the in-memory ones (PNG is lossless)
    assert np.abs(first - fixture["features"][:2]).max() < 1e-4 * np.abs(fixture["features"]).max()
    # rewriting identical files (as eval.py does with its targets) still hits the cache
    _write_images(str(tmp_path / "real"), images[:2])
    assert np.array_equal(F.cached_features(extractor, real, cache, "real images", log=logs.append), first)
    assert calls == ["real images"] and any("from the cache" in line for line in logs)
    # a changed image or another set misses it
    Image.fromarray(images[1][::-1].copy()).save(real[1])
    F.cached_features(extractor, real, cache, "real images", log=logs.append)
    F.cached_features(extractor, fake, cache, "generated images", log=logs.append)
    assert calls == ["real images", "real images", "generated images"] and len(os.listdir(cache)) == 3


def test_missing_or_wrong_weights_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=FID_WEIGHTS_NAME):
        load_pt_inception(str(tmp_path / "nothing.pth"))
    wrong = write_pth(str(tmp_path / "vgg.pth"), {"features.0.weight": np.zeros((4, 3, 3, 3), np.float32)})
    with pytest.raises(UserError, match="not pytorch-fid's InceptionV3"):
        load_pt_inception(wrong)
    shapes = {k: shape for k, (_, shape) in expected_shapes().items()}
    state = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    state["Mixed_7c.branch_pool.conv.weight"] = np.zeros((192, 2048, 3, 3), np.float32)
    with pytest.raises(UserError, match="Mixed_7c.branch_pool.conv.weight' has shape"):
        load_pt_inception(write_pth(str(tmp_path / "bad.pth"), state))


def test_too_few_images_and_empty_folder(tmp_path):
    with pytest.raises(UserError, match="at least 2"):
        F.evaluate_paths(["a.png"], ["b.png", "c.png"], None, extractor=object())
    os.makedirs(tmp_path / "empty")
    with pytest.raises(UserError, match="no images"):
        F.list_folder(str(tmp_path / "empty"))


@pytest.mark.slow
def test_eval_reports_fid_and_kid(tmp_path, weights, capsys, monkeypatch):
    import json

    import eval as eval_script
    import train as train_script
    from src.cli import main_wrapper
    from tests.conftest import TINY, write_ab_dataset

    data = write_ab_dataset(tmp_path / "data", n_train=2, n_test=2)
    values = dict(TINY, dataroot=data, outputs_dir=str(tmp_path / "runs"), name="r", n_epochs=1, n_epochs_decay=0)
    assert main_wrapper(train_script.run, [x for k, v in values.items() for x in (f"--{k}", str(v))]) == 0
    ckpt = str(tmp_path / "runs" / "r" / "G_latest.ckpt")
    # without the weights: one line naming the expected file, before anything is translated
    assert main_wrapper(eval_script.run, ["--ckpt", ckpt, "--fid", "True"]) == 2
    assert FID_WEIGHTS_NAME in capsys.readouterr().err
    cache = str(tmp_path / "cache")
    monkeypatch.setattr(F, "frechet_distance", lambda *a, **k: 1.5)  # the 2048-d sqrtm is tested above (25 s)
    argv = ["--ckpt", ckpt, "--fid", "True", "--fid_weights", weights, "--fid_cache_dir", cache]
    assert main_wrapper(eval_script.run, argv) == 0
    ev = tmp_path / "runs" / "r" / "eval_test"
    metrics = json.loads((ev / "metrics.json").read_text())
    for key in ("psnr", "ssim", "fid", "kid", "kid_std"):
        assert key in metrics, key
    assert metrics["fid_num_real"] == 2 and metrics["fid"] == 1.5 and np.isfinite(metrics["kid"])
    assert "fid" in (ev / "index.html").read_text() and "fid" in (ev / "metrics.txt").read_text()
    out = capsys.readouterr().out
    assert "biased" in out and len(os.listdir(cache)) == 2


def test_cycle_gan_sets_compare_with_the_other_directions_inputs():
    rows = [
        dict(name="AtoB_a", set="AtoB", images={"input": "images/a_in.png", "output": "images/a_out.png"}),
        dict(name="BtoA_b", set="BtoA", images={"input": "images/b_in.png", "output": "images/b_out.png"}),
    ]
    sets = F._eval_sets_of_rows(rows, "OUT")
    assert sets["AtoB"] == ([os.path.join("OUT", "images/b_in.png")], [os.path.join("OUT", "images/a_out.png")])
    assert sets["BtoA"] == ([os.path.join("OUT", "images/a_in.png")], [os.path.join("OUT", "images/b_out.png")])
    paired = [dict(name="x", set="", images={"input": "i", "output": "o", "target": "t"})]
    assert F._eval_sets_of_rows(paired, "D") == {"": ([os.path.join("D", "t")], [os.path.join("D", "o")])}


def test_cli(tmp_path, weights, fixture, monkeypatch, capsys):
    images = [fixture[f"image{i}"] for i in range(4)]
    _write_images(str(tmp_path / "real"), images[:2])
    _write_images(str(tmp_path / "fake"), images[2:])
    argv = [str(tmp_path / "real"), str(tmp_path / "fake"), "--cache_dir", str(tmp_path / "c")]
    assert F.main(argv + ["--weights", str(tmp_path / "none.pth")]) == 2
    assert FID_WEIGHTS_NAME in capsys.readouterr().err
    monkeypatch.setattr(F, "frechet_distance", lambda *a, **k: 1.5)  # the 2048-d sqrtm is tested above (25 s)
    out_json = tmp_path / "fid.json"
    assert F.main(argv + ["--weights", weights, "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "FID: 1.5000" in out and "WARNING" in out and "biased" in out and "2/2" in out
    import json

    assert json.loads(out_json.read_text())["fid_num_fake"] == 2


@pytest.mark.slow
def test_eval_cyclegan_reports_fid_per_direction(tmp_path, weights, monkeypatch):
    import json

    import eval as eval_script
    import train as train_script
    from src.cli import main_wrapper
    from tests.test_cyclegan import _argv, write_unpaired

    data = write_unpaired(tmp_path / "data", n_a=2, n_b=2, n_test=2)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="c", max_steps=1, num_samples=0)) == 0
    monkeypatch.setattr(F, "frechet_distance", lambda *a, **k: 2.5)
    ckpt = os.path.join(runs, "c", "G_A_latest.ckpt")
    argv = ["--ckpt", ckpt, "--fid", "True", "--fid_weights", weights, "--fid_cache_dir", str(tmp_path / "cache")]
    assert main_wrapper(eval_script.run, argv) == 0
    metrics = json.load(open(os.path.join(runs, "c", "eval_test", "metrics.json")))
    for tag in ("AtoB", "BtoA"):
        assert metrics[tag]["fid"] == 2.5 and metrics[tag]["fid_num_real"] == 2 and "kid" in metrics[tag]
    assert len(os.listdir(tmp_path / "cache")) == 4  # real B, fake B, real A, fake A
