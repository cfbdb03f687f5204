"""Points where pix2pixHD, CycleGAN KD and the recipes follow their reference implementations (issue 20)."""

import pytest

from src.config import parse_config


def _cfg(**over):
    values = dict(
        model="pix2pixhd",
        label_nc=5,
        ngf=4,
        ndf=4,
        d_layers=1,
        num_D=1,
        n_downsample_global=1,
        n_blocks_global=1,
        no_vgg_loss=True,
        seed=3,
    )
    values.update(over)
    return parse_config([], overrides=values)


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
