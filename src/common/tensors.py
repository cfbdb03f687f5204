"""Writing into Parameters so that compiled graphs see the change.

``Parameter.set_data`` swaps the tensor object; a ``mindspore.jit`` graph compiled earlier keeps reading the old
memory (measured on MindSpore 2.8 CPU: outputs do not change after ``set_data``, ``assign_value`` or
``load_param_into_net``). ``Tensor.copy_`` writes in place, which every compiled graph sees.
"""

import mindspore as ms
import numpy as np


def assign(param, value):
    """Copy ``value`` (array-like or Tensor) into ``param`` in place, keeping its dtype and shape."""
    value = value.asnumpy() if isinstance(value, ms.Tensor) else np.asarray(value)
    value = value.astype(ms.dtype_to_nptype(param.dtype), copy=False).reshape(param.shape)
    param.copy_(ms.Tensor(value))


def wait_for_step(last_output):
    """Block until a compiled train step has finished, by reading ``last_output``: a small tensor that depends on
    the step's final optimiser update. Call it before reading any other output of the step.

    Measured on MindSpore 2.8 CPU (per-thread CPU times of the process): when Python first reads an output that is
    ready early in the step (a loss, a generated image) and then waits for the rest, the main thread spins on a core
    while the kernels run; on 2 cores that made the CycleGAN resnet_9blocks step at 256x256 take 27 s instead of
    17 s. Waiting on the step's last output sleeps instead. On the CPU, src/device.py's ``MS_DEV_HOST_BLOCKING_RUN=1``
    now returns from the step only when its graph has finished, so this read no longer waits there; it still orders
    the wait where MindSpore launches asynchronously (GPU, Ascend).
    """
    return last_output.asnumpy()
