"""Points where pix2pixHD, CycleGAN KD and the recipes follow their reference implementations (issue 20)."""

import numpy as np
import pytest

from src.config import parse_config
from tests.conftest import TINY_HD, batch_of, make_cfg, write_hd_dataset

# conftest's tiny pix2pixHD, smaller still: 5 labels, one D, one downsampling, the default preprocessing
PARITY = dict(
    {k: v for k, v in TINY_HD.items() if k not in ("preprocess", "batch_size")},
    label_nc=5,
    num_D=1,
    n_downsample_global=1,
)


def _cfg(**over):
    return make_cfg(PARITY, **over)


def _nvidia_lrs(lr, niter, niter_decay):
    """The reference's loop: each epoch runs at the current rate; after epochs > niter, ``lr -= lr0 / niter_decay``."""
    out, current = [], lr
    for epoch in range(1, niter + niter_decay + 1):
        out.append(current)
        if epoch > niter:
            current -= lr / niter_decay
    return out


def test_pix2pixhd_learning_rate_is_nvidias_subtractive_rule():
    from src.pix2pix.model import Pix2PixModel
    from src.pix2pixhd.model import Pix2PixHDModel

    hd = Pix2PixHDModel(_cfg(lr=1.0, n_epochs=3, n_epochs_decay=4), None, training=False)
    got = [hd.learning_rate_at(e) for e in range(1, 8)]
    assert got == pytest.approx([1, 1, 1, 1, 0.75, 0.5, 0.25])
    assert got == pytest.approx(_nvidia_lrs(1.0, 3, 4))
    hd100 = Pix2PixHDModel(_cfg(lr=2e-4, n_epochs=100, n_epochs_decay=100), None, training=False)
    assert [hd100.learning_rate_at(e) for e in range(1, 201)] == pytest.approx(_nvidia_lrs(2e-4, 100, 100))
    assert hd100.learning_rate_at(200) == pytest.approx(2e-6)
    # pix2pix (and CycleGAN) keep junyanz's rule
    p2p = Pix2PixModel(
        parse_config([], overrides=dict(model="pix2pix", lr=1.0, n_epochs=3, n_epochs_decay=3, g_layers=5, ngf=2)),
        None,
        training=False,
    )
    assert [p2p.learning_rate_at(e) for e in range(1, 7)] == pytest.approx([1, 1, 1, 0.75, 0.5, 0.25])


def _convs(net):
    from mindspore import nn

    return [c for _, c in net.cells_and_names() if isinstance(c, (nn.Conv2d, nn.Conv2dTranspose))]


def test_pix2pixhd_init_sets_conv_weights_only_biases_keep_torch_default():
    import mindspore as ms

    from src.common.init import torch_default_bias_bound
    from src.pix2pixhd.model import Pix2PixHDModel

    ms.set_seed(3)  # the draws are checked statistically below; a fixed seed keeps the test deterministic
    model = Pix2PixHDModel(_cfg(instance_feat=True, nef=4, n_downsample_E=1, ngf=8, ndf=8), None)
    for name in ("G", "E", "D"):
        convs = _convs(model.networks[name])
        weights = np.concatenate([c.weight.asnumpy().ravel() for c in convs])
        assert abs(weights.std() - 0.02) < 0.002, name
        for conv in convs:
            bias = conv.bias.asnumpy()
            bound = torch_default_bias_bound(conv.weight.shape)
            assert np.all(np.abs(bias) <= bound) and np.any(bias != 0), (name, conv.weight.shape)
        spread = np.concatenate([c.bias.asnumpy() / torch_default_bias_bound(c.weight.shape) for c in convs])
        # U(-bound, bound) has std 1/sqrt(3); the sample std of n draws has a standard error of about 0.26/sqrt(n)
        # (fourth moment 1/5): allow five of those (zeros would give 0, N(0, bound) 1)
        assert abs(spread.std() - 1 / np.sqrt(3)) < 5 * 0.26 / np.sqrt(spread.size), (name, spread.size)


def test_pix2pix_init_keeps_zero_biases():
    from src.pix2pix.model import Pix2PixModel

    cfg = parse_config([], overrides=dict(model="pix2pix", g_layers=5, ngf=2, ndf=2, norm="instance"))
    model = Pix2PixModel(cfg, None)
    biases = [c.bias.asnumpy() for n in ("G", "D") for c in _convs(model.networks[n]) if c.bias is not None]
    assert biases and all(np.all(b == 0) for b in biases)


@pytest.fixture(scope="module")
def hd_data(tmp_path_factory):
    return write_hd_dataset(tmp_path_factory.mktemp("hd_parity"), seed=2)


def _hd_data_cfg(dataroot, **over):
    values = dict(dataroot=dataroot, label_nc=35, preprocess="none", ngf=2, ndf=2, num_D=1, jit=False)
    values.update(over)
    return _cfg(**values)


def test_niter_fix_global_with_two_enhancers_trains_only_the_outermost(hd_data):
    from src.pix2pixhd.model import Pix2PixHDModel

    cfg = _hd_data_cfg(hd_data, netG="local", n_local_enhancers=2, n_blocks_local=1, niter_fix_global=1)
    model = Pix2PixHDModel(cfg, None)
    model.set_train(True)
    batch = batch_of(model.make_source(cfg, "train").get(0, np.random.default_rng(0)))
    before = {p.name: p.asnumpy().copy() for p in model.G.trainable_params()}
    model.train_step(batch)
    moved = {p.name for p in model.G.trainable_params() if not np.array_equal(p.asnumpy(), before[p.name])}
    outer = {n for n in before if n.startswith(("G.local_down.1.", "G.local_up.1."))}
    assert outer and moved == outer  # neither the global part nor the inner enhancer (local_*.0) moves
    model.on_epoch_start(2)  # released: all of G trains
    model.train_step(batch)
    moved = {p.name for p in model.G.trainable_params() if not np.array_equal(p.asnumpy(), before[p.name])}
    assert any(n.startswith("G.model.") for n in moved) and any(n.startswith("G.local_up.0.") for n in moved)


def test_label_feat_with_instance_feat_averages_over_label_regions(hd_data):
    from src.pix2pixhd.model import Pix2PixHDModel
    from src.pix2pixhd.options import segments_kind

    rng = np.random.default_rng(0)
    both = _hd_data_cfg(hd_data, instance_feat=True, label_feat=True)
    assert segments_kind(both) == "label"
    sample = Pix2PixHDModel.make_source(both, "train").get(0, rng)
    inp, seg = sample["input"], sample["segments"]
    label_ids = np.argmax(inp[:35], 0)
    np.testing.assert_array_equal(seg[0], label_ids)  # the label map wins, as the reference's inst_map = label_map
    inst_only = _hd_data_cfg(hd_data, instance_feat=True)
    seg_inst = Pix2PixHDModel.make_source(inst_only, "train").get(0, np.random.default_rng(0))["segments"]
    assert np.any(seg_inst[0] != label_ids)  # instance ids (label * 1000 + k) where there are instances


def _reference_d_params(input_nc, ndf, n_layers):
    """Parameters of one NVIDIA NLayerDiscriminator with batch norm: nf = min(nf * 2, 512), every conv biased."""
    widths = [ndf]
    for _ in range(n_layers):
        widths.append(min(widths[-1] * 2, 512))
    total = input_nc * ndf * 16 + ndf
    for a, b in zip(widths[:-1], widths[1:]):
        total += a * b * 16 + b + 2 * b  # conv + bias + batch-norm scale and shift
    return total + widths[-1] * 16 + 1


@pytest.mark.parametrize("ndf, n_layers", [(128, 3), (32, 5), (8, 2)])
def test_pix2pixhd_discriminator_widths_and_biases_follow_nvidia(ndf, n_layers):
    from src.common.discriminators import NLayerDiscriminator
    from src.common.init import count_params
    from src.pix2pixhd.networks import MultiscaleDiscriminator

    d = MultiscaleDiscriminator(7, ndf, n_layers, "batch", num_D=1)
    convs = _convs(d)
    want = [ndf]
    for _ in range(n_layers):
        want.append(min(want[-1] * 2, 512))
    assert [c.weight.shape[0] for c in convs] == want + [1]
    assert all(c.bias is not None for c in convs)
    assert count_params(d) == _reference_d_params(7, ndf, n_layers)
    # pix2pix / CycleGAN keep junyanz's PatchGAN: ndf * min(2**n, 8), no bias before batch norm
    junyanz = _convs(NLayerDiscriminator(7, ndf, n_layers, "batch"))
    assert [c.weight.shape[0] for c in junyanz] == [ndf * min(2**n, 8) for n in range(n_layers + 1)] + [1]
    assert [c.bias is not None for c in junyanz] == [True] + [False] * n_layers + [True]


def test_pix2pixhd_scale_width_has_no_crop_size_floor_and_photos_resize_bicubic(hd_data):
    from PIL import Image

    from src.dataset import transforms
    from src.dataset.image_io import load_image, to_tensor_array
    from src.pix2pixhd.model import Pix2PixHDModel

    # NVIDIA's __scale_width: h = int(w_target * oh / ow); junyanz's floors it at crop_size (pix2pix, CycleGAN)
    assert transforms.resized_size((64, 32), "scale_width", 32, 32, scale_width_floor=False) == (32, 16)
    assert transforms.resized_size((64, 32), "scale_width", 32, 32) == (32, 32)
    assert transforms.resized_size((100, 30), "scale_width", 50, 1, scale_width_floor=False) == (50, 15)
    cfg = _hd_data_cfg(hd_data, preprocess="scale_width", load_size=32, crop_size=32)
    source = Pix2PixHDModel.make_source(cfg, "train", training=False)
    sample = source.get(0, np.random.default_rng(0))
    inp, image, seg = sample["input"], sample["image"], sample["segments"]
    assert inp.shape[1:] == image.shape[1:] == seg.shape[1:] == (16, 32)  # the 64x32 maps at width 32
    photo = load_image(source.image_paths[0], 3)
    for method, equal in ((Image.BICUBIC, True), (Image.BILINEAR, False)):
        want = to_tensor_array(photo.resize((32, 16), method))
        assert np.array_equal(image, want) == equal


def test_pix2pixhd_pool_size_is_zero_and_other_values_are_rejected():
    from src.errors import UserError
    from src.pix2pixhd.model import Pix2PixHDModel

    assert _cfg().pool_size == 0  # the reference's default; no pool is implemented
    assert parse_config([], overrides=dict(model="cyclegan")).pool_size == 50
    with pytest.raises(UserError, match="pool_size 50 .*valid values are: 0"):
        Pix2PixHDModel(_cfg(pool_size=50), None)
    Pix2PixHDModel(_cfg(pool_size=50), None, training=False)  # eval of a run saved before the check still works


def test_cyclegan_kd_weight_defaults_to_the_model_zoos():
    from src.config import REPO_ROOT

    cfg = parse_config([], overrides=dict(model="cyclegan"))
    assert cfg.lambda_kd == 50.0 == cfg.lambda_A * 5  # zoo: L1(teacher, student) * lambda_A * 5
    demo = parse_config([], overrides=dict(config_path=f"{REPO_ROOT}/configs/cyclegan_kd_demo.yaml"))
    assert demo.lambda_kd == 50.0


def test_cyclegan_cityscapes_recipe_has_no_dropout_as_the_paper():
    from src.config import REPO_ROOT

    cfg = parse_config([], overrides=dict(config_path=f"{REPO_ROOT}/configs/cyclegan_cityscapes.yaml"))
    assert cfg.model == "cyclegan" and cfg.use_dropout is False
    assert parse_config([], overrides=dict(model="cyclegan")).use_dropout is True  # seed 003's default stays
