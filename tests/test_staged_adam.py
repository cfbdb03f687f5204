"""``adam_begin`` + ``adam_update`` in parts (pix2pixHD's stage-by-stage G update) against ``nn.Adam`` on the whole
parameter list: same parameters, moments, step count and bias-correction powers after several steps."""

import mindspore as ms
import numpy as np
from mindspore import ops

from src.common.optim import adam_begin, adam_update, make_adam


def _params(prefix, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    shapes = [(3, 2, 3, 3), (3,), (4, 3), (5,)]
    return [
        ms.Parameter(ms.Tensor(rng.normal(size=s).astype(np.float32)), name=f"{prefix}{i}")
        for i, s in enumerate(shapes)
    ]


def test_adam_in_parts_equals_nn_adam():
    ms.set_context(mode=ms.GRAPH_MODE)
    ours, theirs = _params("staged."), _params("whole.")
    opt_ours = make_adam(ours, 2e-3, 0.5, 0.999, "opt_staged")
    opt_theirs = make_adam(theirs, 2e-3, 0.5, 0.999, "opt_whole")
    parts = ((3, 1), (2,), (0,))  # any split, any order

    @ms.jit
    def staged(grads):
        powers = adam_begin(opt_ours)
        done = True
        for part in parts:
            done = ops.depend(adam_update(opt_ours, part, tuple(grads[i] for i in part), powers), done)
        return done

    @ms.jit
    def whole(grads):
        return opt_theirs(grads)

    rng = np.random.default_rng(1)
    for _ in range(3):
        grads = tuple(ms.Tensor(rng.normal(size=p.shape).astype(np.float32)) for p in ours)
        staged(grads)
        whole(grads)
    assert int(opt_ours.global_step.asnumpy().item()) == int(opt_theirs.global_step.asnumpy().item()) == 3
    assert float(opt_ours.beta1_power.asnumpy()) == float(opt_theirs.beta1_power.asnumpy()) == 0.125
    assert float(opt_ours.beta2_power.asnumpy()) == float(opt_theirs.beta2_power.asnumpy())
    initial = _params("initial.")
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert not np.array_equal(a.asnumpy(), initial[i].asnumpy())  # they moved
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
        np.testing.assert_array_equal(opt_ours.moment1[i].asnumpy(), opt_theirs.moment1[i].asnumpy())
        np.testing.assert_array_equal(opt_ours.moment2[i].asnumpy(), opt_theirs.moment2[i].asnumpy())
