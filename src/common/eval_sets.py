"""The eval protocol's sets: what ``eval.py`` translates, one set per direction (see docs/architecture.md).

A model's ``eval_sets(cfg, phase)`` returns a list of :class:`EvalSet`. Each set has a ``tag`` (``""`` for a model
with one direction, else e.g. ``"AtoB"``: the prefix of its image names and metric keys), ``names`` (one per image),
``len()``, and ``translate(index) -> (input, output, target or None)``, CHW float arrays in [-1, 1] (``input`` as it
is shown in the report). eval.py saves the three images, computes PSNR/SSIM where a target of the output's shape
exists, and writes the report; it knows nothing else about the model.
"""

import numpy as np


def pad_to_multiple(arr, multiple):
    """Pad a CHW array on the bottom/right to multiples of ``multiple`` (reflection); returns (padded, (h, w))."""
    _, h, w = arr.shape
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        arr = np.pad(arr, ((0, 0), (0, ph), (0, pw)), mode="symmetric")
    return arr, (h, w)


class EvalSet:
    """One set of test images; subclasses implement :meth:`translate`."""

    tag = ""

    def __init__(self, names, seed):
        self.names, self.seed = list(names), int(seed)

    def __len__(self):
        return len(self.names)

    def rng(self, index):
        """The random generator of image ``index``: the same draw in every evaluation of the same seed."""
        return np.random.default_rng([self.seed, int(index)])

    def translate(self, index):
        raise NotImplementedError


class PairedEvalSet(EvalSet):
    """A dataset whose ``get(index, rng)`` returns ``{"input", "target", ...}`` (``target`` may be absent), translated
    by ``generate`` (a batch NCHW -> NumPy NCHW)."""

    def __init__(self, source, generate, seed, tag=""):
        super().__init__(source.names, seed)
        self.source, self.generate, self.tag = source, generate, tag

    def translate(self, index):
        sample = self.source.get(index, self.rng(index))
        real = sample["input"]
        return real, self.generate(real[None])[0], sample.get("target")
