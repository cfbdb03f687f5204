"""The image pool of CycleGAN (Shrivastava et al.): D is shown a history of generated images, not only the latest.

Runs on the host, between the compiled G and D steps. Until the pool holds ``pool_size`` images every new image is
stored and returned; after that, with probability 0.5 a stored image is returned and replaced by the new one, else the
new one is returned and the pool is unchanged. ``pool_size`` 0 passes every batch through.

Randomness: query ``k`` of a pool draws from ``np.random.default_rng([seed, stream, k])``, so the whole RNG state is
the number of queries made. :meth:`state` / :meth:`load_state` give and take the stored images and that counter as
NumPy arrays (saved in ``resume.ckpt``), and a resumed run continues with the same history and the same draws.
"""

import numpy as np

from src.errors import UserError


class ImagePool:
    """A pool of at most ``pool_size`` images (CHW float32 arrays)."""

    def __init__(self, pool_size, seed=0, stream=0):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}")
        self.pool_size = int(pool_size)
        self.seed = int(seed)
        self.stream = int(stream)
        self.images = []
        self.queries = 0

    def __len__(self):
        return len(self.images)

    def query(self, images):
        """Return a batch (NCHW array) of the same shape: new images or stored ones, per image as described above."""
        images = np.asarray(images, dtype=np.float32)
        if self.pool_size == 0:
            return images
        rng = np.random.default_rng([self.seed, self.stream, self.queries])
        self.queries += 1
        out = []
        for image in images:
            image = np.array(image, dtype=np.float32, copy=True)
            if len(self.images) < self.pool_size:
                self.images.append(image)
                out.append(image)
            elif rng.random() > 0.5:
                i = int(rng.integers(0, self.pool_size))
                out.append(self.images[i])
                self.images[i] = image
            else:
                out.append(image)
        return np.stack(out)

    def state(self, prefix):
        """``{prefix.queries: int64[1], prefix.images: float32[n, C, H, W]}`` (no images entry while empty)."""
        state = {f"{prefix}.queries": np.array([self.queries], np.int64)}
        if self.images:
            state[f"{prefix}.images"] = np.stack(self.images)
        return state

    def load_state(self, extras, prefix):
        """Restore from :meth:`state`; a missing entry (an old or pool-less run) leaves the pool empty."""
        queries = extras.get(f"{prefix}.queries")
        self.queries = int(np.asarray(queries).reshape(-1)[0]) if queries is not None else 0
        images = extras.get(f"{prefix}.images")
        self.images = [] if images is None else [np.array(im, np.float32) for im in np.asarray(images)]
        if len(self.images) > self.pool_size:
            raise UserError(
                f"the saved image pool holds {len(self.images)} images, more than pool_size {self.pool_size}; "
                f"resume with the pool_size of the run"
            )
