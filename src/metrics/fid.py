"""FID and KID of two image sets with the InceptionV3 of the standard FID (pytorch-fid), without PyTorch.

* Features: :class:`src.metrics.inception.FIDInceptionV3` with ``pt_inception-2015-12-05-6726825d.pth`` (read by
  ``src/convert/torch_reader.py``; never downloaded here). Images are read as pytorch-fid reads them (PIL
  ``convert("RGB")``, ``/ 255``), each resized to 299x299 (bilinear, ``align_corners=False``), so sets of mixed sizes
  work; 2048-d pool features, in float64 for the statistics.
* FID: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))`` with SciPy's ``sqrtm``; a non-finite root is retried with
  ``1e-6`` added to both diagonals, and an imaginary part is dropped if the diagonal's is below 1e-3 (as pytorch-fid).
* KID: unbiased MMD^2 with the polynomial kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over 100 random subsets of
  ``min(1000, n_real, n_fake)`` features each (drawn without replacement, seed 0), as torch-fidelity and the KID
  paper's code; the mean and the standard deviation over subsets are reported.
* Features are cached per image set in ``CACHE_DIR/fid_<key>.npz`` (written atomically); the key hashes the file names,
  sizes and contents and the weights file's name, size and mtime, so a rewritten but identical set (eval.py saves its
  targets every run) still hits the cache and any changed image misses it.

Usage::

    python -m src.metrics.fid REAL_DIR FAKE_DIR --weights pt_inception-2015-12-05-6726825d.pth [--cache_dir DIR]
"""

import argparse
import hashlib
import os
import sys
import time
import warnings

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads; src.metrics.inception loads it)
from src.errors import UserError
from src.metrics.inception import FEATURE_DIM, FID_WEIGHTS_NAME

IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
CACHE_VERSION = "fid-features-v1"
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


def default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pix2pix_mindspore", "fid")


# ----------------------------------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------------------------------


def statistics(features):
    """Mean and covariance (``ddof=1``) of ``N x d`` features, float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise UserError(f"FID needs at least 2 images per set, got {len(f)}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, log=print):
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) (see the module docstring)."""
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"mismatched statistics: {mu1.shape}/{sigma1.shape} vs {mu2.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Matrix is singular": expected with fewer images than dimensions
        root = linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(root).all():
            log(f"FID: singular covariance product; adding {eps} to the diagonals")
            offset = np.eye(sigma1.shape[0]) * eps
            root = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(root.imag))} in sqrtm")
        root = root.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def polynomial_mmd2(x, y):
    """Unbiased MMD^2 of ``x``, ``y`` (``m x d`` each) with the kernel ``(x.y / d + 1)^3``."""
    d = x.shape[1]
    m, n = len(x), len(y)
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2.0 * kxy.mean())


def kernel_inception_distance(real, fake, subsets=KID_SUBSETS, subset_size=KID_SUBSET_SIZE, seed=0):
    """``(mean, std)`` of :func:`polynomial_mmd2` over ``subsets`` random subsets of
    ``min(subset_size, n_real, n_fake)`` rows each (see the module docstring)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise UserError(f"KID needs at least 2 images per set, got {len(real)} and {len(fake)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), m, replace=False)]
        y = fake[rng.choice(len(fake), m, replace=False)]
        values.append(polynomial_mmd2(x, y))
    return float(np.mean(values)), float(np.std(values))


# ----------------------------------------------------------------------------------------------------------------------
# Images, features, cache
# ----------------------------------------------------------------------------------------------------------------------


def list_folder(folder):
    """Image files directly in ``folder`` (pytorch-fid's extensions, not recursive, hidden files skipped), sorted."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise UserError(f"image folder not found: {folder}")
    from src.dataset.image_io import image_files_in

    paths = image_files_in(folder, IMAGE_EXTENSIONS)
    if not paths:
        raise UserError(f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in {folder}")
    return paths


def load_rgb01(path):
    """An image as pytorch-fid reads it: PIL ``convert("RGB")`` -> ``3 x H x W`` float32 in [0, 1]."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"), dtype=np.float32)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path} ({err}); replace or delete it") from None
    return np.ascontiguousarray(arr.transpose(2, 0, 1) / np.float32(255.0))


def weights_identity(weights_path):
    st = os.stat(weights_path)
    return f"{os.path.basename(weights_path)}:{st.st_size}:{st.st_mtime_ns}"


def set_key(paths, weights_id):
    """Cache key of an image set: names, sizes and contents of the files, and the weights' identity."""
    h = hashlib.sha256(f"{CACHE_VERSION}\n{weights_id}\n".encode())
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        h.update(f"{os.path.basename(p)}:{len(data)}:".encode())
        h.update(hashlib.blake2b(data, digest_size=16).digest())
    return h.hexdigest()[:24]


class FeatureExtractor:
    """Loads the network once; ``features(paths)`` streams the images in batches with a progress line."""

    def __init__(self, weights_path, batch_size=8, log=print):
        from src.metrics.inception import load_pt_inception

        self.weights_path = weights_path
        self.net = load_pt_inception(weights_path)
        self.weights_id = weights_identity(weights_path)
        self.batch_size = max(1, int(batch_size))
        self.log = log

    def features_of_arrays(self, images_01):
        """``N x 2048`` float64 features of ``3 x H x W`` arrays in [0, 1]."""
        import mindspore as ms

        from src.metrics.inception import preprocess

        return self.net(ms.Tensor(preprocess(images_01))).asnumpy().astype(np.float64)

    def features(self, paths, what="images"):
        out = np.empty((len(paths), FEATURE_DIM), np.float64)
        start = last = time.time()
        for i in range(0, len(paths), self.batch_size):
            chunk = paths[i : i + self.batch_size]
            out[i : i + len(chunk)] = self.features_of_arrays([load_rgb01(p) for p in chunk])
            done = i + len(chunk)
            now = time.time()
            if now - last > 10 or done == len(paths):
                last = now
                rate = (now - start) / done
                self.log(
                    f"FID features of {what}: {done}/{len(paths)} ({rate:.2f} s/image, "
                    f"{rate * (len(paths) - done):.0f} s left)"
                )
        return out


def cached_features(extractor, paths, cache_dir, what="images", log=print):
    """Features of ``paths``, from ``cache_dir`` when the same set was seen with the same weights."""
    from src.common.fileio import atomic_path

    key = set_key(paths, extractor.weights_id)
    cache = os.path.join(cache_dir, f"fid_{key}.npz") if cache_dir else None
    if cache and os.path.isfile(cache):
        try:
            with np.load(cache, allow_pickle=False) as z:
                feats = z["features"]
            if feats.shape == (len(paths), FEATURE_DIM):
                log(f"FID features of {what}: {len(paths)} images from the cache {cache}")
                return feats.astype(np.float64)
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute and overwrite it
    feats = extractor.features(paths, what)
    if cache:
        with atomic_path(cache) as tmp:
            np.savez(tmp, features=feats, names=np.array([os.path.basename(p) for p in paths], dtype=str))
    return feats


def warn_if_biased(n_real, n_fake, log=print):
    n = min(n_real, n_fake)
    if n < FEATURE_DIM:
        log(
            f"WARNING: FID from {n_real} real and {n_fake} generated images (fewer than the {FEATURE_DIM} feature "
            "dimensions): the covariances are singular and the FID is biased upwards; compare it only with FIDs of "
            "the same number of images (KID is unbiased)"
        )


def fid_kid(real_feats, fake_feats, log=print):
    """``{"fid", "kid", "kid_std", "fid_num_real", "fid_num_fake"}`` of two feature sets."""
    warn_if_biased(len(real_feats), len(fake_feats), log)
    mu1, s1 = statistics(real_feats)
    mu2, s2 = statistics(fake_feats)
    kid, kid_std = kernel_inception_distance(real_feats, fake_feats)
    return {
        "fid": frechet_distance(mu1, s1, mu2, s2, log=log),
        "kid": kid,
        "kid_std": kid_std,
        "fid_num_real": len(real_feats),
        "fid_num_fake": len(fake_feats),
    }


def evaluate_paths(real_paths, fake_paths, weights_path, cache_dir=None, batch_size=8, extractor=None, log=print):
    """FID / KID of two lists of image files (real features cached; generated ones too, keyed by content)."""
    if len(real_paths) < 2 or len(fake_paths) < 2:
        raise UserError(f"FID needs at least 2 images per set, got {len(real_paths)} real and {len(fake_paths)}")
    extractor = extractor or FeatureExtractor(weights_path, batch_size, log)
    real = cached_features(extractor, real_paths, cache_dir, "real images", log)
    fake = cached_features(extractor, fake_paths, cache_dir, "generated images", log)
    return fid_kid(real, fake, log)


# ----------------------------------------------------------------------------------------------------------------------
# eval.py hook
# ----------------------------------------------------------------------------------------------------------------------


def check_eval_options(cfg):
    """Fail fast (before translating anything) on eval.py's FID options."""
    if not cfg.get("fid"):
        return
    if cfg.get("input"):
        raise UserError("--fid needs a dataset split with real images (--dataroot), not --input")
    path = cfg.get("fid_weights") or ""
    if not path or not os.path.isfile(path):
        raise UserError(
            f"--fid needs --fid_weights PATH/{FID_WEIGHTS_NAME} (pytorch-fid's InceptionV3 weights; "
            f"{'not found: ' + path if path else 'not given'}; see docs/fid.md)"
        )


def _eval_sets_of_rows(rows, out_dir):
    """``{tag: (real paths, fake paths)}``: real = the set's targets, or for a set without targets (CycleGAN's
    unpaired directions) the inputs of the other set, which are real images of the generated domain."""
    by_tag = {}
    for r in rows:
        by_tag.setdefault(r.get("set", ""), []).append(r.get("images") or {})
    sets = {}
    for tag, images in by_tag.items():
        fake = [os.path.join(out_dir, im["output"]) for im in images if "output" in im]
        real = [os.path.join(out_dir, im["target"]) for im in images if "target" in im]
        if not real and len(by_tag) == 2:
            (other,) = [t for t in by_tag if t != tag]
            real = [os.path.join(out_dir, im["input"]) for im in by_tag[other] if "input" in im]
        sets[tag] = (real, fake)
    return sets


def score_eval_rows(cfg, rows, metrics, out_dir, log=print):
    """Add ``fid``, ``kid``, ``kid_std``, ``fid_num_real/fake`` to eval.py's ``metrics`` (per set tag when there
    are several sets, as PSNR/SSIM), from the images eval.py wrote."""
    extractor = FeatureExtractor(cfg.fid_weights, log=log)
    cache_dir = cfg.get("fid_cache_dir") or default_cache_dir()
    sets = _eval_sets_of_rows(rows, out_dir)
    for tag, (real, fake) in sets.items():
        if len(real) < 2 or len(fake) < 2:
            log(f"FID{' ' + tag if tag else ''}: skipped ({len(real)} real, {len(fake)} generated images; need 2)")
            continue
        result = evaluate_paths(real, fake, cfg.fid_weights, cache_dir, extractor=extractor, log=log)
        log(f"FID{' ' + tag if tag else ''}: {result['fid']:.4f}  KID: {result['kid']:.6f} +- {result['kid_std']:.6f}")
        target = metrics.setdefault(tag, {}) if tag and isinstance(metrics.get(tag), dict) else metrics
        target.update(result)
    return metrics


def main(argv=None):
    from src.cli import main_wrapper

    def run(args_list):
        parser = argparse.ArgumentParser(
            prog="python -m src.metrics.fid",
            description="FID and KID of two image folders (pytorch-fid's InceptionV3, without PyTorch).",
        )
        parser.add_argument("real_dir", help="folder of real images")
        parser.add_argument("fake_dir", help="folder of generated images")
        parser.add_argument("--weights", default=FID_WEIGHTS_NAME, help=f"path of {FID_WEIGHTS_NAME}")
        parser.add_argument("--cache_dir", default=default_cache_dir(), help="feature cache ('' = no cache)")
        parser.add_argument("--batch_size", type=int, default=8)
        parser.add_argument("--json", default="", help="also write the numbers to this JSON file")
        args = parser.parse_args(args_list)
        real, fake = list_folder(args.real_dir), list_folder(args.fake_dir)
        extractor = FeatureExtractor(args.weights, args.batch_size)  # a missing weights file fails here
        result = evaluate_paths(real, fake, args.weights, args.cache_dir or None, extractor=extractor)
        print(f"FID: {result['fid']:.4f}  KID: {result['kid']:.6f} +- {result['kid_std']:.6f}  ({len(real)} real, "
              f"{len(fake)} generated)")  # fmt: skip
        if args.json:
            import json

            from src.common.fileio import atomic_write_text

            atomic_write_text(args.json, json.dumps(result, indent=2) + "\n")

    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
