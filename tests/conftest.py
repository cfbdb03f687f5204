"""Shared fixtures: tiny datasets made on the fly (paired, unpaired, pix2pixHD), tiny model configs, command lines
and batches."""

import os
import sys

os.environ.setdefault("GLOG_v", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# The training loop of the tiny runs: batch 1, one epoch at the full rate and one of decay, a checkpoint per epoch.
TINY_LOOP = dict(batch_size=1, n_epochs=1, n_epochs_decay=1, print_freq=1, save_latest_freq=0, save_epoch_freq=1)

# A tiny pix2pix: 32x32 crops, U-Net with 5 levels, 8 filters. Builds and steps in well under a second.
TINY = dict(
    model="pix2pix", crop_size=32, load_size=36, g_layers=5, ngf=8, ndf=8, d_layers=2, **TINY_LOOP, num_samples=2,
    use_dropout=False, seed=3,
)  # fmt: skip

# A tiny CycleGAN: 32x32 crops, ResNet generator with 2 blocks, 4 filters, a pool of 2 so it fills within a few steps.
TINY_CG = dict(
    model="cyclegan", crop_size=32, load_size=36, g_layers=2, ngf=4, ndf=4, d_layers=2, pool_size=2, use_dropout=False,
    **TINY_LOOP, num_samples=1, seed=5,
)  # fmt: skip

# A tiny pix2pixHD on 32x64 label maps (write_hd_dataset): 35 labels, 4 filters, two scales of one-layer Ds, no VGG.
TINY_HD = dict(
    model="pix2pixhd", label_nc=35, preprocess="none", ngf=4, ndf=4, d_layers=1, num_D=2, n_downsample_global=2,
    n_blocks_global=1, no_vgg_loss=True, batch_size=1, seed=3,
)  # fmt: skip


def write_ab_dataset(root, n_train=4, n_test=2, size=32, seed=0):
    """A|B side-by-side PNGs in ROOT/train and ROOT/test: A = smooth random colours, B = a fixed function of A."""
    rng = np.random.default_rng(seed)
    for phase, n in (("train", n_train), ("test", n_test)):
        os.makedirs(os.path.join(root, phase), exist_ok=True)
        for i in range(n):
            small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
            a = np.asarray(Image.fromarray(small).resize((size, size), Image.BILINEAR))
            b = 255 - a[:, :, ::-1]
            Image.fromarray(np.concatenate([a, b], axis=1)).save(os.path.join(root, phase, f"{phase}_{i:03d}.png"))
    return str(root)


def write_unpaired(root, n_a=4, n_b=3, n_test=2, size=32, paired_test=False, seed=0):
    """ROOT/{train,test}{A,B}: A = smooth random colours, B = blocky random colours (different names unless paired)."""
    rng = np.random.default_rng(seed)
    for phase, counts in (("train", (n_a, n_b)), ("test", (n_test, n_test))):
        for side, n in zip("AB", counts):
            folder = os.path.join(root, f"{phase}{side}")
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
                mode = Image.BILINEAR if side == "A" else Image.NEAREST
                img = Image.fromarray(small).resize((size, size), mode)
                name = f"{phase}_{i:03d}" if paired_test and phase == "test" else f"{side.lower()}_{phase}_{i:03d}"
                img.save(os.path.join(folder, name + ".png"))
    return str(root)


def write_hd_dataset(root, seed):
    """A pix2pixHD layout in ROOT/data (2 train, 1 test 32x64 demo frames from ROOT/cs); returns ROOT/data."""
    from src.dataset.cityscapes import prepare_pix2pixhd
    from src.dataset.demo import write_cityscapes_tree

    write_cityscapes_tree(root / "cs", 2, 1, height=32, width=64, seed=seed)
    prepare_pix2pixhd(str(root / "cs"), str(root / "data"))
    return str(root / "data")


def batch_of(*samples):
    """Samples (dicts of a source's ``get``) stacked into one batch dict, as the loader yields it."""
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


def cli_args(values):
    """``{"crop_size": 32, ...}`` -> ``["--crop_size", "32", ...]``."""
    return [x for k, v in values.items() for x in (f"--{k}", str(v))]


def run_argv(base, data, runs, **over):
    """The command line of a training run: ``base`` with ``dataroot``, ``outputs_dir`` and ``over``."""
    values = dict(base, dataroot=data, outputs_dir=runs)
    values.update(over)
    return cli_args(values)


@pytest.fixture
def ab_data(tmp_path):
    return write_ab_dataset(tmp_path / "data")


def make_cfg(base, **over):
    """The validated config of ``base`` with ``over`` (no command line). Keys of ``base`` that the selected model does
    not have are left out (``TINY`` is pix2pix's; another model keeps the keys it has)."""
    from src.config import load_schema, parse_config

    keys = load_schema(over.get("model", base.get("model", TINY["model"]))).values
    values = {k: v for k, v in base.items() if k in keys}
    values.update(over)
    return parse_config([], overrides=values)


def tiny_cfg(**over):
    return make_cfg(TINY, **over)


def _has_compiler():
    from src.common import native

    return native.compiler() is not None


# the tests of the native kernels (src/common/native.py) that need them built
needs_compiler = pytest.mark.skipif(not _has_compiler(), reason="no C++ compiler (g++, c++ or CXX) here")


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """A fresh native-kernel cache in tmp_path, and no library of an earlier test in this process."""
    from src.common import native

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(native, "_CACHE", {})
    return os.path.join(str(tmp_path), "ms-image-translation")
