"""Giving the C heap's free pages back to the system once a compiled graph starts running."""

import ctypes
import ctypes.util

from mindspore import ops


def _trim_function():
    """glibc's ``malloc_trim``, or None where there is none (another C library, another system)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


class HeapTrim:
    """``trim(x)`` returns ``x``; the first time a compiled graph runs it, the C heap's free pages go back to the
    system first (glibc's ``malloc_trim(0)``).

    Compiling pix2pixHD's train step allocates and frees some 2.7 GB of small objects (the graph's nodes); the freed
    memory stays resident in the fragmented heap, and the graph's buffers, allocated when it first runs, come on
    top of it: trimming the heap as the step starts lowered its process peak from 8.2 to 7.8 GB at 256x512
    (measured; ``malloc_trim`` then freed 0.8 GB of the 1.7 GB free in the heap, the rest being pages shared with
    live objects). Called on the step's first input, so that it runs before most of the step's buffers are
    allocated. A ``pyfunc`` Custom op runs Python on the CPU only.
    """

    def __init__(self):
        self.malloc_trim = _trim_function()
        self.done = False
        self.op = ops.Custom(self._run, out_shape=lambda s: s, out_dtype=lambda t: t, func_type="pyfunc")

    def _run(self, x):
        if not self.done and self.malloc_trim is not None:
            self.malloc_trim(0)
        self.done = True
        return x

    def __call__(self, x):
        return self.op(x)
