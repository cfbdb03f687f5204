"""A gradient 'reducer' for tests that compare a compiled train step's gradients with a reference."""

import mindspore as ms


class CaptureGrads(ms.nn.Cell):
    """Records the gradients a train step hands to the optimiser (in ``bufs``) and passes them on unchanged."""

    def __init__(self, params, prefix):
        super().__init__()
        self.bufs = ms.ParameterTuple(
            [ms.Parameter(ms.ops.zeros(p.shape, p.dtype), name=f"{prefix}.{i}") for i, p in enumerate(params)]
        )

    def construct(self, grads):
        for i in range(len(grads)):
            ms.ops.assign(self.bufs[i], grads[i])
        return grads
