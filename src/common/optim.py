"""Optimisers, learning-rate schedules and gradient reducers shared by the models."""

import mindspore as ms
from mindspore import nn, ops

from src.common.tensors import assign


def make_adam(params, lr, beta1, beta2, prefix):
    """``nn.Adam`` whose learning rate is a Parameter (set per epoch) and whose scalar state is named ``prefix.*``.

    Several optimisers in one jit graph need distinct names for their ``global_step``, ``beta*_power`` and
    ``learning_rate`` parameters, or compilation fails on duplicate names.
    """
    opt = nn.Adam(
        params, learning_rate=ms.Parameter(ms.Tensor(lr, ms.float32), name="learning_rate"), beta1=beta1, beta2=beta2
    )
    for p in opt.get_parameters():
        if p.name in ("global_step", "beta1_power", "beta2_power", "learning_rate"):
            p.name = f"{prefix}.{p.name}"
    return opt


def set_learning_rate(opt, lr):
    """Set the learning rate of an optimiser made by :func:`make_adam`."""
    assign(opt.learning_rate, lr)


def get_learning_rate(opt):
    return float(opt.learning_rate.asnumpy())


def linear_decay_lr(base_lr, epoch, n_epochs, n_epochs_decay):
    """Learning rate during ``epoch`` (1-based): constant for ``n_epochs``, then linear decay towards zero.

    Same rule as the reference's ``lambda_rule`` with its scheduler stepped after each epoch: epoch ``n_epochs + k``
    uses ``base_lr * (1 - k / (n_epochs_decay + 1))``.
    """
    k = max(0, epoch - n_epochs)
    return base_lr * max(0.0, 1.0 - k / float(n_epochs_decay + 1))


def subtractive_decay_lr(base_lr, epoch, n_epochs, n_epochs_decay):
    """Learning rate during ``epoch`` (1-based) by NVIDIA pix2pixHD's ``update_learning_rate``.

    The reference subtracts the constant ``base_lr / niter_decay`` at the end of every epoch after ``niter``, so
    epoch ``n_epochs + 1`` still runs at ``base_lr``, epoch ``n_epochs + k`` at ``base_lr * (1 - (k - 1) /
    n_epochs_decay)``, and the last one at ``base_lr / n_epochs_decay``. A pure function of the epoch, so a resumed
    run gets it exactly.
    """
    k = max(0, epoch - n_epochs - 1)
    if n_epochs_decay <= 0:
        return base_lr
    return base_lr * max(0.0, 1.0 - k / float(n_epochs_decay))


class IdentityReducer(nn.Cell):
    """The gradient reducer of a single-device run: returns the gradients unchanged."""

    def construct(self, grads):
        return grads


def make_grad_reducer(params, env):
    """``nn.DistributedGradReducer`` (mean over ranks) in data-parallel runs, the identity otherwise.

    Every train step passes its gradients through this, so one code path serves one and many devices.
    """
    if env is not None and env.distributed:
        return nn.DistributedGradReducer(params, mean=True, degree=env.group_size)
    return IdentityReducer()


def add_grads(x, y):
    """Element-wise sum of two gradient tuples (inside a compiled step: the gradients of two loss parts)."""
    out = ()
    for i in range(len(x)):
        out = out + (x[i] + y[i],)
    return out


def adam_begin(opt):
    """The once-per-step part of ``opt``'s (an ``nn.Adam``) update, inside a compiled step: count the step and
    advance the bias-correction powers. Returns ``(beta1_power, beta2_power)`` for :func:`adam_update`.

    ``adam_begin`` followed by :func:`adam_update` on every parameter, in parts and in any order, is ``opt(grads)``:
    the same ``Adam`` kernel with the same inputs per parameter (see ``nn.Adam.construct``; no weight decay, loss
    scale 1, dense gradients, as ``make_adam`` builds it). A step can then update each part of a network as soon as
    its gradients exist and free them before the next part's backward pass."""
    ops.assign_add(opt.global_step, opt.global_step_increase_tensor)
    # (the assigns' outputs are what the updates read: an assign whose output nothing reads was dropped from
    # pix2pixHD's step graph)
    beta1_power = ops.assign(opt.beta1_power, opt.beta1_power * opt.beta1)
    beta2_power = ops.assign(opt.beta2_power, opt.beta2_power * opt.beta2)
    return beta1_power, beta2_power


def adam_update(opt, indices, grads, powers):
    """Adam on ``opt.parameters[i]`` for ``i`` in ``indices`` with ``grads`` (same order) and the ``powers`` of
    :func:`adam_begin`; returns a value to ``ops.depend`` on."""
    beta1_power, beta2_power = powers
    lr = opt.get_lr()
    done = True
    for k in range(len(indices)):
        i = indices[k]
        done = ops.depend(
            done,
            opt.opt(
                opt.parameters[i], opt.moment1[i], opt.moment2[i], beta1_power, beta2_power, lr, opt.beta1,
                opt.beta2, opt.eps, grads[k],
            ),
        )  # fmt: skip
    return done
