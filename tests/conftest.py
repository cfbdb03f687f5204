"""Shared fixtures: tiny paired datasets made on the fly, and tiny model configs."""

import os
import sys

os.environ.setdefault("GLOG_v", "3")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

# A tiny pix2pix: 32x32 crops, U-Net with 5 levels, 8 filters. Builds and steps in well under a second.
TINY = dict(
    model="pix2pix",
    crop_size=32,
    load_size=36,
    g_layers=5,
    ngf=8,
    ndf=8,
    d_layers=2,
    batch_size=1,
    n_epochs=1,
    n_epochs_decay=1,
    print_freq=1,
    save_latest_freq=0,
    save_epoch_freq=1,
    num_samples=2,
    use_dropout=False,
    seed=3,
)


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


def batch_of(*samples):
    """Samples (dicts of a source's ``get``) stacked into one batch dict, as the loader yields it."""
    return {k: np.stack([s[k] for s in samples]) for k in samples[0]}


@pytest.fixture
def ab_data(tmp_path):
    return write_ab_dataset(tmp_path / "data")


def tiny_cfg(**over):
    from src.config import parse_config

    values = dict(TINY)
    values.update(over)
    return parse_config([], overrides=values)
