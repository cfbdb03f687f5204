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
