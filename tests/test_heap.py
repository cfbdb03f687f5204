"""HeapTrim passes its input through a compiled graph unchanged and trims the heap once."""

import mindspore as ms
import numpy as np

import src.device  # noqa: F401
from src.common.heap import HeapTrim


def test_heap_trim_returns_its_input_and_trims_once():
    trim = HeapTrim()
    calls = []
    trim.malloc_trim = lambda pad: calls.append(pad) or 1

    @ms.jit
    def step(x):
        return trim(x) * 2.0

    x = ms.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    for _ in range(3):
        np.testing.assert_array_equal(step(x).asnumpy(), x.asnumpy() * 2.0)
    assert calls == [0]
