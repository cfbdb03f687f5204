"""pix2pixHD: networks, losses, data, features (fast, no training)."""

import mindspore as ms
import numpy as np
import pytest

from src.common.init import count_params
from src.errors import UserError


def test_global_generator_reference_parameter_count():
    from src.pix2pixhd.networks import GlobalGenerator

    # ngf 64, 4 downsamplings, 9 blocks, 35 labels + boundary map: the reference's 182,546,755
    assert count_params(GlobalGenerator(36, 3, 64, 4, 9)) == 182_546_755


def test_tiny_network_shapes():
    from src.pix2pixhd.networks import Encoder, GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator

    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (2, 5, 32, 64)).astype(np.float32))
    assert GlobalGenerator(5, 3, 4, 2, 1)(x).shape == (2, 3, 32, 64)
    local = LocalEnhancer(5, 3, 4, 2, 1, 1, 1)
    assert local(x).shape == (2, 3, 32, 64)
    assert local.size_multiple == 8
    # the global part of the local enhancer has the parameter names (and shapes) of a global generator of 2x ngf
    g2 = GlobalGenerator(5, 3, 8, 2, 1)
    g_shapes = {p.name: p.shape for p in g2.get_parameters() if p.name.startswith("model.")}
    l_shapes = {p.name: p.shape for p in local.get_parameters() if p.name.startswith("model.")}
    assert g_shapes == l_shapes
    ids = ms.Tensor(np.zeros((2, 32, 64), np.int32))
    assert Encoder(3, 3, 4, 2)(x[:, :3], ids, 2).shape == (2, 3, 32, 64)
    out = MultiscaleDiscriminator(8, 4, 2, num_D=3)(ms.Tensor(np.zeros((1, 8, 32, 64), np.float32)))
    assert len(out) == 3 and all(len(scale) == 4 for scale in out)  # n_layers 2: 4 blocks per scale
    assert out[0][-1].shape[1] == 1 and out[1][0].shape[2] < out[0][0].shape[2]


def test_instance_pool_averages_per_instance():
    from src.pix2pixhd.features import segment_ids
    from src.pix2pixhd.networks import instance_pool

    feats = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    seg = np.array([[[5, 5, 7], [7, 7, 9]], [[1, 1, 1], [1, 2, 2]]], np.int32)[:, None]
    ids, n = segment_ids(seg)
    out = instance_pool(ms.Tensor(feats), ms.Tensor(ids), n).asnumpy()
    for b in range(2):
        for c in range(2):
            for v in np.unique(seg[b, 0]):
                m = seg[b, 0] == v
                np.testing.assert_allclose(out[b, c][m], feats[b, c][m].mean(), rtol=1e-6)


def test_boundary_map_hand_made():
    from src.dataset.label_instance import encode_label_input

    inst = np.array([[1, 1, 1, 1], [1, 1, 2, 2], [1, 1, 2, 2]])
    label = np.array([[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    x = encode_label_input(label, inst, 3, no_instance=False)
    assert x.shape == (4, 3, 4)
    expected = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 0]], np.float32)
    np.testing.assert_array_equal(x[3], expected)
    np.testing.assert_array_equal(x[1], label == 1)
    assert encode_label_input(label, inst, 3, no_instance=True).shape == (3, 3, 4)


def test_feature_matching_and_vgg_weights(tmp_path):
    from src.pix2pixhd import losses as L

    def t(v, shape=(1, 1, 2, 2)):
        return ms.Tensor(np.full(shape, v, np.float32))

    # two scales, n_layers 3: 4 feature blocks + the patch map; every |fake - real| = 1
    fake = [[t(1.0) for _ in range(5)] for _ in range(2)]
    real = [[t(0.0) for _ in range(5)] for _ in range(2)]
    loss = float(L.feature_matching_loss(fake, real, 2, 3, 10.0).asnumpy())
    assert loss == pytest.approx(2 * 4 * (1 / 2) * (4 / 4) * 10.0)  # 40: patch maps excluded
    vgg = L.VGG19Features()
    assert len(vgg.conv_layers()) == 13
    x = ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    feats = vgg(x)
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    assert [f.shape[2] for f in feats] == [32, 16, 8, 4, 2]
    y = ms.Tensor(np.random.default_rng(1).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    f_y = vgg(y)
    expected = sum(w * np.abs(a.asnumpy() - b.asnumpy()).mean() for w, a, b in zip(L.VGG_WEIGHTS, feats, f_y))
    assert float(L.vgg_loss(vgg, x, y, 10.0).asnumpy()) == pytest.approx(10.0 * expected, rel=1e-4)
    assert L.VGG_WEIGHTS == (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
    # a VGG19-shaped checkpoint (random weights, model-zoo-like names with a classifier) loads; missing = UserError
    convs = vgg.conv_layers()
    rng = np.random.default_rng(2)
    entries = []
    widths = [(3, 64), (64, 64), (64, 128), (128, 128)] + [(128, 256)] + [(256, 256)] * 3 + [(256, 512)]
    widths += [(512, 512)] * 7
    for i, (cin, cout) in enumerate(widths):
        entries.append(
            {
                "name": f"layers.{i * 3}.weight",
                "data": ms.Tensor(rng.normal(0, 0.01, (cout, cin, 3, 3)).astype(np.float32)),
            }
        )
        entries.append({"name": f"layers.{i * 3}.bias", "data": ms.Tensor(np.full(cout, 0.5, np.float32))})
    entries.append({"name": "classifier.0.weight", "data": ms.Tensor(np.zeros((10, 25088), np.float32))})
    path = str(tmp_path / "vgg19.ckpt")
    ms.save_checkpoint(entries, path)
    L.load_vgg19(vgg, path)
    np.testing.assert_allclose(convs[0].weight.asnumpy(), entries[0]["data"].asnumpy())
    np.testing.assert_allclose(convs[12].bias.asnumpy(), 0.5)
    # VGG19-BN layout: the batch norm after each conv is folded in
    for i, (_, cout) in enumerate(widths):
        for k, v in (("gamma", 2.0), ("beta", 0.1), ("moving_mean", 0.0), ("moving_variance", 1.0 - 1e-5)):
            entries.append({"name": f"layers.{i * 3 + 1}.{k}", "data": ms.Tensor(np.full(cout, v, np.float32))})
    ms.save_checkpoint(entries, path)
    L.load_vgg19(vgg, path)
    np.testing.assert_allclose(convs[0].weight.asnumpy(), 2 * entries[0]["data"].asnumpy(), rtol=1e-5)
    np.testing.assert_allclose(convs[12].bias.asnumpy(), 1.1, rtol=1e-5)
    with pytest.raises(UserError, match="no_vgg_loss"):
        L.load_vgg19(vgg, str(tmp_path / "missing.ckpt"))


def test_kmeans_clusters_and_sampling(tmp_path):
    from src.pix2pixhd import features as F

    rng = np.random.default_rng(0)
    per_label = {26: [rng.normal(c, 0.01, 3) for c in (0.0, 1.0) for _ in range(10)], 24: [np.ones(3)]}
    centers = F.cluster_features(per_label, 35, 3, 2, seed=0)
    assert centers.shape == (35, 2, 3)
    assert sorted(np.round(centers[26, :, 0]).tolist()) == [0.0, 1.0]
    assert np.isnan(centers[24, 1]).all() and np.isnan(centers[7]).all()
    path = tmp_path / F.cluster_file_name(10)
    np.save(path, centers)
    assert path.name == "features_clustered_010.npy"
    with pytest.raises(UserError, match="feat_num"):
        F.load_clusters(str(path), 35, 4)
    with pytest.raises(UserError, match="precompute_feature_maps"):
        F.load_clusters(str(tmp_path / "none.npy"), 35, 3)
    seg = np.array([[26001, 26001, 7], [24000, 7, 7]])
    fmap = F.sample_feature_map(F.load_clusters(str(path), 35, 3), seg, rng)
    assert fmap.shape == (3, 2, 3)
    assert np.allclose(fmap[:, 1, 1], 0) and np.allclose(fmap[:, 1, 0], 1.0)
    assert fmap[0, 0, 0] == fmap[0, 0, 1]
    feats = F.instance_features(np.stack([seg.astype(np.float32)] * 3), seg, min_area=0.3)
    assert sorted(feats) == [7, 26]  # the 1-pixel person (1/6 of the image) is below min_area


def test_bad_label_and_missing_instances(tmp_path):
    from PIL import Image

    from src.dataset.label_instance import LabelInstanceDataset

    root = tmp_path / "d"
    for k in ("train_label", "train_img", "train_inst"):
        (root / k).mkdir(parents=True)
    Image.fromarray(np.full((32, 64), 40, np.uint8)).save(root / "train_label" / "a.png")
    Image.fromarray(np.zeros((32, 64, 3), np.uint8)).save(root / "train_img" / "a.png")
    Image.fromarray(np.full((32, 64), 40000, np.uint16)).save(root / "train_inst" / "a.png")
    with pytest.raises(UserError, match="label_nc is 35"):
        LabelInstanceDataset(root, "train", label_nc=35, preprocess="none")
    assert (
        LabelInstanceDataset(root, "train", label_nc=41, preprocess="none", no_flip=True)
        .get(0, np.random.default_rng(0))[2]
        .max()
        == 40000
    )
    (root / "train_inst" / "a.png").unlink()
    (root / "train_inst").rmdir()
    with pytest.raises(UserError, match="no_instance"):
        LabelInstanceDataset(root, "train", label_nc=41, preprocess="none")
    ds = LabelInstanceDataset(root, "train", label_nc=41, no_instance=True, segments="label", preprocess="none")
    inp, img, seg, idx = ds.get(0, np.random.default_rng(0))
    assert inp.shape == (41, 32, 64) and inp[40].all() and img.shape == (3, 32, 64) and seg.shape == (1, 32, 64)
