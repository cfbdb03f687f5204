"""GAN objectives and reconstruction losses, as plain functions usable inside ``mindspore.jit``.

:func:`make_gan_loss` picks the objective at build time (outside jit), so the compiled step holds no branching on it.
"""

from mindspore import ops

from src.errors import UserError

GAN_MODES = ("vanilla", "lsgan")


def vanilla_gan_loss(pred, target_is_real):
    """Binary cross-entropy on logits against 1 (real) or 0 (fake), averaged over the patch map."""
    target = ops.ones_like(pred) if target_is_real else ops.zeros_like(pred)
    weight = ops.ones_like(pred)
    return ops.binary_cross_entropy_with_logits(pred, target, weight, weight)


def lsgan_loss(pred, target_is_real):
    """Least-squares GAN: mean squared distance to 1 (real) or 0 (fake)."""
    target = ops.ones_like(pred) if target_is_real else ops.zeros_like(pred)
    diff = pred - target
    return (diff * diff).mean()


_GAN_LOSSES = {"vanilla": vanilla_gan_loss, "lsgan": lsgan_loss}


def make_gan_loss(mode):
    """The GAN loss function ``(pred, target_is_real) -> scalar`` for ``mode``."""
    if mode not in _GAN_LOSSES:
        raise UserError(f"unknown gan_mode '{mode}'; valid modes are: {', '.join(GAN_MODES)}")
    return _GAN_LOSSES[mode]


def l1_loss(x, y):
    """Mean absolute error."""
    return ops.abs(x - y).mean()
