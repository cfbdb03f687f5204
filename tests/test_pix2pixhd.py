"""pix2pixHD: networks, losses, data, features (fast, no training)."""

import mindspore as ms
import numpy as np
import pytest

from src.common.init import count_params
from src.errors import UserError
from tests.conftest import TINY_HD, batch_of, make_cfg, write_hd_dataset
from tests.grad_capture import CaptureGrads


def test_global_generator_reference_parameter_count():
    from src.pix2pixhd.networks import GlobalGenerator

    # ngf 64, 4 downsamplings, 9 blocks, 35 labels + boundary map: the reference's 182,546,755
    assert count_params(GlobalGenerator(36, 3, 64, 4, 9)) == 182_546_755


@pytest.mark.parametrize("n_blocks", [0, 1, 4])
def test_generator_keeps_the_transforms_of_its_last_two_residual_blocks(n_blocks):
    """The last KEPT_TRANSFORM_BLOCKS residual blocks' convs (of the global part, also inside the local enhancer)
    keep their Winograd transforms; every other conv recomputes them where they are large."""
    from src.common.fast_conv import FastConv2d
    from src.pix2pixhd.networks import KEPT_TRANSFORM_BLOCKS, GlobalGenerator, LocalEnhancer, ResnetBlock

    assert KEPT_TRANSFORM_BLOCKS == 2
    for net in (GlobalGenerator(5, 3, 4, 2, n_blocks), LocalEnhancer(5, 3, 4, 2, n_blocks, 1, 1)):
        blocks = [cell for cell in net.model.cells() if isinstance(cell, ResnetBlock)]
        assert len(blocks) == n_blocks
        kept = [all(c.keep_transforms for _, c in b.cells_and_names() if isinstance(c, FastConv2d)) for b in blocks]
        assert kept == [i >= n_blocks - 2 for i in range(n_blocks)]
        kept_convs = [c for _, c in net.cells_and_names() if isinstance(c, FastConv2d) and c.keep_transforms]
        assert len(kept_convs) == 2 * min(n_blocks, 2)


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


def _avg_pool_exclude_pad_numpy(x, k=3, s=2, p=1):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, oh, ow), np.float64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = max(i * s - p, 0), max(j * s - p, 0)
            r1, c1 = min(i * s - p + k, h), min(j * s - p + k, w)
            out[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return out


@pytest.mark.parametrize("shape", [(2, 3, 8, 12), (1, 2, 7, 9), (1, 1, 2, 5), (1, 1, 1, 1)])
def test_avg_pool_exclude_pad_export_form_equals_training_form(shape):
    from src.common.layers import set_export_friendly
    from src.pix2pixhd.networks import AvgPoolExcludePad

    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    pool = AvgPoolExcludePad(3, 2, 1)
    trained = pool(ms.Tensor(x)).asnumpy()
    set_export_friendly(pool)
    exported = pool(ms.Tensor(x)).asnumpy()
    expected = _avg_pool_exclude_pad_numpy(x.astype(np.float64))
    assert trained.shape == exported.shape == expected.shape
    np.testing.assert_allclose(trained, expected, atol=1e-6)
    np.testing.assert_allclose(exported, expected, atol=1e-6)


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
    assert float(L.vgg_feature_loss(feats, f_y, 10.0).asnumpy()) == pytest.approx(10.0 * expected, rel=1e-4)
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
        .get(0, np.random.default_rng(0))["segments"]
        .max()
        == 40000
    )
    (root / "train_inst" / "a.png").unlink()
    (root / "train_inst").rmdir()
    with pytest.raises(UserError, match="no_instance"):
        LabelInstanceDataset(root, "train", label_nc=41, preprocess="none")
    ds = LabelInstanceDataset(root, "train", label_nc=41, no_instance=True, segments="label", preprocess="none")
    sample = ds.get(0, np.random.default_rng(0))
    assert list(sample) == ["input", "image", "segments", "index"]
    inp, img, seg = sample["input"], sample["image"], sample["segments"]
    assert inp.shape == (41, 32, 64) and inp[40].all() and img.shape == (3, 32, 64) and seg.shape == (1, 32, 64)


def test_feature_table_round_trip_and_checks(tmp_path):
    from src.pix2pixhd import features as F

    seg = np.array([[26001, 26001, 7], [24000, 7, 7]], np.int32)
    plane = np.select([seg == 7, seg == 24000, seg == 26001], [1.0, 2.0, 3.0]).astype(np.float32)
    fmap = np.stack([plane, -plane])  # 2 channels, constant per region (as after instance-wise pooling)
    ids, vecs = F.feature_table(fmap, seg[None])
    assert ids.tolist() == [7, 24000, 26001] and vecs.tolist() == [[1, -1], [2, -2], [3, -3]]
    path = F.feature_file(tmp_path, "train", "a")
    F.save_feature_table(path, ids, vecs, "instance")
    ids2, vecs2 = F.load_feature_table(path, 2, "instance")
    # rebuilt on a region map of another size (nearest-upscaled, plus an id the table lacks -> zeros)
    big = np.kron(seg, np.ones((2, 2), np.int32))
    big[0, 0] = 33000
    rebuilt = F.feature_map_from_table(ids2, vecs2, big)
    expected = np.kron(fmap, np.ones((1, 2, 2), np.float32))
    expected[:, 0, 0] = 0
    np.testing.assert_array_equal(rebuilt, expected)
    with pytest.raises(UserError, match="feat_num 3"):
        F.load_feature_table(path, 3, "instance")
    with pytest.raises(UserError, match="per instance region, but this run averages per label"):
        F.load_feature_table(path, 2, "label")
    with pytest.raises(UserError, match="precompute_feature_maps"):
        F.load_feature_table(str(tmp_path / "none.npz"), 2, "instance")


@pytest.fixture(scope="module")
def tiny_hd_data(tmp_path_factory):
    return write_hd_dataset(tmp_path_factory.mktemp("hd_unit"), seed=2)


def _hd_cfg(dataroot, **over):
    return make_cfg(TINY_HD, dataroot=dataroot, **over)


def test_load_features_trains_on_precomputed_files(tiny_hd_data):
    from src.device import init_env
    from src.pix2pixhd import features as F
    from src.pix2pixhd.model import Pix2PixHDModel

    cfg = _hd_cfg(tiny_hd_data, instance_feat=True, feat_num=2, load_features=True, no_flip=False)
    with pytest.raises(UserError, match="precompute_feature_maps"):  # no <phase>_feat files yet
        Pix2PixHDModel.make_source(cfg, "train")
    base = Pix2PixHDModel.make_source(_hd_cfg(tiny_hd_data, instance_feat=True), "train", training=False)
    rng = np.random.default_rng(0)
    for i, name in enumerate(base.names):  # one random vector per instance, as precompute_feature_maps.py writes
        seg = base.get(i, rng)["segments"]
        ids = np.unique(seg).astype(np.int32)
        F.save_feature_table(
            F.feature_file(tiny_hd_data, "train", name), ids, rng.uniform(-1, 1, (len(ids), 2)), "instance"
        )
    source = Pix2PixHDModel.make_source(cfg, "train")
    assert source.columns == ("input", "image", "segments", "features", "index")
    sample = source.get(1, np.random.default_rng(5))
    assert list(sample) == list(source.columns)
    seg, feats = sample["segments"], sample["features"]
    ids, vecs = F.load_feature_table(F.feature_file(tiny_hd_data, "train", source.names[1]), 2, "instance")
    for k, v in enumerate(ids):  # the sample's own (possibly flipped) instance map picks each region's vector
        mask = seg[0] == v
        if mask.any():
            np.testing.assert_array_equal(feats[:, mask], np.repeat(vecs[k][:, None], mask.sum(), 1))

    ms.set_seed(3)
    model = Pix2PixHDModel(cfg, init_env(cfg))
    assert model.E is None and sorted(model.networks) == ["D", "G"]
    model.set_train(True)
    batch = batch_of(sample)
    before = {p.name: p.asnumpy().copy() for p in model.G.trainable_params()}
    losses = model.train_step(batch)
    assert all(np.isfinite(v) for v in losses.values())
    assert any(not np.array_equal(before[p.name], p.asnumpy()) for p in model.G.trainable_params())
    # the features reach G: other features give another output
    out_a = model.generate(batch["input"], features=feats[None])
    out_b = model.generate(batch["input"], features=-feats[None])
    assert np.abs(out_a - out_b).max() > 1e-4
    assert model.visuals(batch)[1].shape == (1, 3, 32, 64)


def test_load_features_config_checks(tmp_path):
    from src.device import init_env
    from src.pix2pixhd.model import Pix2PixHDModel
    from src.pix2pixhd.options import check_config

    with pytest.raises(UserError, match="load_features needs"):
        check_config(_hd_cfg(str(tmp_path), load_features=True))
    # a load_features run has no encoder: its clusters come from its load_pretrain run unless it has its own
    pre = tmp_path / "pre"
    pre.mkdir()
    cfg = _hd_cfg(str(tmp_path), instance_feat=True, load_features=True, load_pretrain=str(pre))
    model = Pix2PixHDModel(cfg, init_env(cfg), training=False)
    run = tmp_path / "run"
    run.mkdir()
    assert model.cluster_path(str(run)) == str(run / "features_clustered_010.npy")
    np.save(pre / "features_clustered_010.npy", np.zeros((35, 10, 3), np.float32))
    assert model.cluster_path(str(run)) == str(pre / "features_clustered_010.npy")
    np.save(run / "features_clustered_010.npy", np.zeros((35, 10, 3), np.float32))
    assert model.cluster_path(str(run)) == str(run / "features_clustered_010.npy")


def test_load_pretrain_fills_global_part_and_matching_discriminator_scales(tmp_path):
    from src.common.checkpoint import save_network
    from src.device import init_env
    from src.pix2pixhd.model import Pix2PixHDModel

    low_cfg = _hd_cfg(str(tmp_path), ngf=8, num_D=2)
    low = Pix2PixHDModel(low_cfg, init_env(low_cfg))
    run = tmp_path / "low"
    run.mkdir()
    save_network(low.G, str(run / "G_latest.ckpt"), "pix2pixhd", "G")
    save_network(low.D, str(run / "D_latest.ckpt"), "pix2pixhd", "D")
    high_cfg = _hd_cfg(str(tmp_path), netG="local", n_blocks_local=1, num_D=3, load_pretrain=str(run))
    high = Pix2PixHDModel(high_cfg, init_env(high_cfg))

    def scale(model, i):
        return [p.asnumpy() for p in model.D.get_parameters() if p.name.startswith(f"D.nets.{i}.")]

    # scales by resolution: the 1024p-style D's scales 1, 2 see what the 512p-style D's scales 0, 1 saw
    for mine, theirs in ((1, 0), (2, 1)):
        for a, b in zip(scale(high, mine), scale(low, theirs)):
            np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(scale(high, 0), scale(low, 0)))
    low_g = {p.name: p.asnumpy() for p in low.G.get_parameters()}
    for p in high.G.get_parameters():
        if p.name.startswith("G.model."):
            np.testing.assert_array_equal(p.asnumpy(), low_g[p.name])
    # another ndf: the discriminator keeps its initialisation
    other_cfg = _hd_cfg(str(tmp_path), netG="local", n_blocks_local=1, num_D=3, ndf=8, load_pretrain=str(run))
    other = Pix2PixHDModel(other_cfg, init_env(other_cfg))
    assert other.load_pretrained_discriminator(str(run / "D_latest.ckpt")) == []


def test_compiled_step_equals_separate_discriminator_passes(tiny_hd_data):
    """The compiled step (D's real pass shared by the D loss and feature matching; G's backward pass stage by stage)
    gives the losses and gradients of four separate D passes and one G pass run eagerly: D(fake) and D(real) for the
    G loss, D(detached fake) and D(real) for D."""
    from mindspore import ops

    from src.device import init_env
    from src.pix2pixhd import features as F
    from src.pix2pixhd import losses as L
    from src.pix2pixhd.model import Pix2PixHDModel

    cfg = _hd_cfg(tiny_hd_data, instance_feat=True, feat_num=2, nef=4, n_downsample_E=2, n_blocks_global=2, jit=True)
    ms.set_seed(4)
    model = Pix2PixHDModel(cfg, init_env(cfg))
    assert len(model.g_stages) == 4  # before the blocks (with E), two blocks, after them
    model.vgg = L.VGG19Features()  # random weights: the VGG term and its gradient take part too
    model.set_train(True)
    # G's gradients reach the optimiser stage by stage (one reducer per stage), D's at once
    model.reduce_G_stages = tuple(
        CaptureGrads(params, f"capture_G{k}") for k, (_, params, _) in enumerate(model.g_stages)
    )
    model.reduce_D = CaptureGrads(model.opt_D.parameters, "capture_D")
    sample = model.make_source(cfg, "train").get(0, np.random.default_rng(1))
    inp, image, seg = sample["input"], sample["image"], sample["segments"]
    label, real = ms.Tensor(inp[None]), ms.Tensor(image[None])
    ids, n = F.segment_ids(seg[None])
    ids = ms.Tensor(ids)
    G, D, E, gan = model.G, model.D, model.E, L.multiscale_gan_loss(False)

    def g_forward(label, real, ids):  # separate passes: D(fake) for the G loss, D(real) for feature matching
        fake = G(ops.cat((label, E(real, ids, n)), 1))
        pred_fake, pred_real = D(ops.cat((label, fake), 1)), D(ops.cat((label, real), 1))
        loss_gan = gan(pred_fake, True)
        loss_fm = L.feature_matching_loss(pred_fake, pred_real, cfg.num_D, cfg.d_layers, cfg.lambda_feat)
        loss_vgg = L.vgg_feature_loss(model.vgg(fake), model.vgg(real), cfg.lambda_feat)
        return loss_gan + loss_fm + loss_vgg, loss_gan, loss_fm, loss_vgg, fake

    def d_forward(label, real, fake):  # and D(detached fake), D(real) again for the D loss
        loss_fake = gan(D(ops.cat((label, fake), 1)), False)
        loss_real = gan(D(ops.cat((label, real), 1)), True)
        return (loss_fake + loss_real) * 0.5, loss_real, loss_fake

    (_, gan_ref, fm_ref, vgg_ref, fake), g_ref = ms.value_and_grad(
        g_forward, None, model.opt_G.parameters, has_aux=True
    )(label, real, ids)
    (_, real_ref, fake_ref), d_ref = ms.value_and_grad(d_forward, None, model.opt_D.parameters, has_aux=True)(
        label, real, ops.stop_gradient(fake)
    )
    losses = model.train_step(batch_of(sample))
    assert float(model.opt_G.beta1_power.asnumpy()) == pytest.approx(cfg.beta1)  # G's Adam counted one step
    assert int(model.opt_G.global_step.asnumpy().item()) == 1
    expected = dict(G_GAN=gan_ref, G_GAN_Feat=fm_ref, G_VGG=vgg_ref, D_real=real_ref, D_fake=fake_ref)
    for k, v in expected.items():
        assert losses[k] == pytest.approx(float(v.asnumpy()), rel=1e-5), k
    assert losses["G_VGG"] > 0 and losses["G_GAN_Feat"] > 0
    g_bufs = [None] * len(g_ref)
    for (_, _, indices), reducer in zip(model.g_stages, model.reduce_G_stages):
        for i, buf in zip(indices, reducer.bufs):
            g_bufs[i] = buf
    for bufs, ref in ((g_bufs, g_ref), (model.reduce_D.bufs, d_ref)):
        assert len(bufs) == len(ref)
        # the biases of convs followed by instance norm have a true gradient of 0 (float noise in both), so the
        # absolute tolerance is relative to the network's largest gradient, not the tensor's
        scale = max(float(np.abs(w.asnumpy()).max()) for w in ref)
        assert scale > 0
        for got, want in zip(bufs, ref):
            np.testing.assert_allclose(got.asnumpy(), want.asnumpy(), rtol=1e-4, atol=1e-5 * scale)


def test_release_of_global_part_restarts_generator_optimizer(tiny_hd_data):
    """After niter_fix_global epochs G's Adam starts afresh (the reference builds a new one), once: a resumed run
    whose global part has trained keeps its optimiser state."""
    from src.device import init_env
    from src.pix2pixhd.model import Pix2PixHDModel

    cfg = _hd_cfg(tiny_hd_data, netG="local", n_blocks_local=1, niter_fix_global=1)
    model = Pix2PixHDModel(cfg, init_env(cfg))
    model.set_train(True)
    batch = batch_of(model.make_source(cfg, "train").get(0, np.random.default_rng(0)))
    opt = model.opt_G

    def state():
        moments = [m.asnumpy() for m in list(opt.moment1) + list(opt.moment2)]
        return float(opt.beta1_power.asnumpy()), int(opt.global_step.asnumpy().item()), moments

    model.on_epoch_start(1)
    model.train_step(batch)
    beta1_power, step, moments = state()
    assert beta1_power == pytest.approx(0.5) and step == 1 and any(np.any(m != 0) for m in moments)
    model.on_epoch_start(2)  # released: a fresh optimiser
    beta1_power, step, moments = state()
    assert beta1_power == 1.0 and step == 0 and all(np.all(m == 0) for m in moments)
    model.train_step(batch)
    after_one = state()
    model.frozen_global = True  # as when a resumed run is built, then told its epoch
    model.on_epoch_start(2)
    again = state()
    assert again[0] == after_one[0] == pytest.approx(0.5) and again[1] == 1
    assert all(np.array_equal(a, b) for a, b in zip(again[2], after_one[2]))
