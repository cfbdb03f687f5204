"""A small trainable segmenter: an "FCN-score-like" metric for users without the Cityscapes caffemodel and for the demo.

The paper's FCN score needs ``fcn-8s-cityscapes.caffemodel``. Without it (or for another dataset in the Cityscapes
file layout, such as the synthetic demo tree of :mod:`src.dataset.demo`) train this segmenter on the *real* photos
and ``labelIds`` of the train split, then score generated images with it exactly like the FCN
(:mod:`src.metrics.fcn_score`, ``--fcn_ckpt SEGMENTER.ckpt``). Numbers are only comparable between runs scored by
the same segmenter checkpoint; always report its "real photos" row (the upper bound) next to them.

Architecture (``tiny_unet``): a 3-level U-Net, widths ``w, 2w, 4w, 8w``, 3x3 convs + ReLU, max-pool down,
transposed-conv up with skip concatenation, 1x1 classifier to the 19 train ids (no 20th channel). Inputs are scaled to
``[-1, 1]``. It was trained at ``height x width``; other input sizes are resized to that size (BILINEAR) before the
forward and the prediction is resized back (NEAREST).

Usage::

    python -m src.metrics.segmenter --cityscapes_dir DEMO/cityscapes --out seg.ckpt --height 128 --width 256 \\
        --minutes 3
"""

import argparse
import functools
import os
import sys
import time

import numpy as np

from src.cli import main_wrapper
from src.errors import UserError

NUM_CLASSES = 19


def _build_net(width):
    import mindspore as ms
    from mindspore import nn, ops

    def conv(c_in, c_out):
        return nn.SequentialCell(
            nn.Conv2d(c_in, c_out, 3, pad_mode="pad", padding=1, has_bias=True),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, pad_mode="pad", padding=1, has_bias=True),
            nn.ReLU(),
        )

    class TinyUNet(nn.Cell):
        def __init__(self, w):
            super().__init__()
            self.enc1, self.enc2, self.enc3 = conv(3, w), conv(w, 2 * w), conv(2 * w, 4 * w)
            self.mid = conv(4 * w, 8 * w)
            self.pool = nn.MaxPool2d(2, 2)
            self.up3 = nn.Conv2dTranspose(8 * w, 4 * w, 2, 2, pad_mode="valid", has_bias=True)
            self.dec3 = conv(8 * w, 4 * w)
            self.up2 = nn.Conv2dTranspose(4 * w, 2 * w, 2, 2, pad_mode="valid", has_bias=True)
            self.dec2 = conv(4 * w, 2 * w)
            self.up1 = nn.Conv2dTranspose(2 * w, w, 2, 2, pad_mode="valid", has_bias=True)
            self.dec1 = conv(2 * w, w)
            self.head = nn.Conv2d(w, NUM_CLASSES, 1, pad_mode="valid", has_bias=True)

        def construct(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            e3 = self.enc3(self.pool(e2))
            m = self.mid(self.pool(e3))
            d3 = self.dec3(ops.concat((self.up3(m), e3), 1))
            d2 = self.dec2(ops.concat((self.up2(d3), e2), 1))
            d1 = self.dec1(ops.concat((self.up1(d2), e1), 1))
            return self.head(d1)

    ms.set_seed(0)
    return TinyUNet(int(width))


def _to_input(rgb):
    arr = np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


class TinySegmenter:
    """A trained ``tiny_unet``: ``predict(rgb) -> HxW`` uint8 train ids (0..18)."""

    def __init__(self, net, meta):
        self.net = net
        self.meta = meta
        self.height, self.width = int(meta["height"]), int(meta["width"])

    def predict(self, rgb):
        import mindspore as ms
        from PIL import Image

        rgb = np.asarray(rgb)
        h, w = rgb.shape[:2]
        if (h, w) != (self.height, self.width):
            rgb = np.asarray(Image.fromarray(rgb).resize((self.width, self.height), Image.BILINEAR))
        scores = self.net(ms.Tensor(_to_input(rgb)[None])).asnumpy()[0]
        pred = scores.argmax(axis=0).astype(np.uint8)
        if (h, w) != (self.height, self.width):
            pred = np.asarray(Image.fromarray(pred).resize((w, h), Image.NEAREST))
        return pred


def load_tiny_segmenter(params, meta, path):
    from src.common.checkpoint import load_into

    if meta.get("arch") != "tiny_unet":
        raise UserError(f"{path}: unknown segmenter architecture {meta.get('arch')!r}; expected tiny_unet")
    net = _build_net(meta["width_mult"])
    load_into(net, {k: v for k, v in params.items() if k != "__meta__"}, path, "the tiny_unet segmenter")
    net.set_train(False)
    return TinySegmenter(net, meta)


def _load_split(cityscapes_dir, split, height, width, max_frames=0):
    from PIL import Image

    from src.dataset.cityscapes import list_label_frames, photo_path_for
    from src.dataset.cityscapes_labels import label_ids_to_train_ids

    frames = list_label_frames(cityscapes_dir, split)
    if max_frames > 0:
        frames = frames[:max_frames]
    photos, labels = [], []
    for frame_id, label_path in frames:
        photo_path = photo_path_for(cityscapes_dir, split, frame_id)
        with Image.open(photo_path) as img:
            photos.append(_to_input(img.convert("RGB").resize((width, height), Image.BILINEAR)))
        with Image.open(label_path) as img:
            ids = np.asarray(img.resize((width, height), Image.NEAREST))
        labels.append(label_ids_to_train_ids(ids).astype(np.int32))
    return np.stack(photos), np.stack(labels)


def train_segmenter(
    cityscapes_dir,
    out,
    height=128,
    width=256,
    width_mult=16,
    minutes=3.0,
    max_steps=0,
    batch_size=4,
    lr=1e-3,
    seed=0,
    max_frames=0,
    log=print,
):
    """Train ``tiny_unet`` on ``train`` photos -> train ids of a Cityscapes-shaped tree; save it to ``out``.

    Stops after ``minutes`` of training or ``max_steps`` steps (whichever comes first; 0 = no step limit).
    Returns the saved metadata (steps, final loss, seconds).
    """
    import mindspore as ms
    from mindspore import nn, ops

    from src.common.checkpoint import save_with_meta

    if height % 8 or width % 8:
        raise UserError(f"segmenter size {height}x{width} must be a multiple of 8 (e.g. 128x256)")
    images, labels = _load_split(cityscapes_dir, "train", height, width, max_frames)
    log(f"segmenter: {len(images)} training frames at {height}x{width} from {cityscapes_dir}")
    net = _build_net(width_mult)
    opt = nn.Adam(net.trainable_params(), learning_rate=lr)

    def loss_fn(x, y):
        logits = net(x)
        logp = ops.log_softmax(logits, 1)
        valid = (y != 255).astype(ms.float32)
        onehot = ops.one_hot(ops.clip_by_value(y, 0, NUM_CLASSES - 1), NUM_CLASSES, 1.0, 0.0, 1)
        nll = -(onehot * logp).sum(1) * valid
        return nll.sum() / ops.maximum(valid.sum(), 1.0)

    grad_fn = ms.value_and_grad(loss_fn, None, opt.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        opt(grads)
        return loss

    net.set_train(True)
    rng = np.random.default_rng(seed)
    start = time.time()
    steps, losses, last_log = 0, [], 0.0
    while True:
        idx = rng.integers(0, len(images), batch_size)
        x, y = images[idx].copy(), labels[idx].copy()
        flip = rng.random(batch_size) < 0.5
        x[flip] = x[flip][..., ::-1]
        y[flip] = y[flip][..., ::-1]
        loss = float(step(ms.Tensor(np.ascontiguousarray(x)), ms.Tensor(np.ascontiguousarray(y))).asnumpy())
        losses.append(loss)
        steps += 1
        elapsed = time.time() - start
        if steps % 50 == 0 or elapsed - last_log >= 30:
            last_log = elapsed
            log(f"segmenter step {steps}: loss {np.mean(losses[-50:]):.4f} ({elapsed:.0f} s)")
        if (max_steps and steps >= max_steps) or elapsed >= minutes * 60:
            break
    net.set_train(False)
    meta = dict(
        segmenter="tiny_unet",
        arch="tiny_unet",
        width_mult=int(width_mult),
        height=int(height),
        width=int(width),
        num_classes=NUM_CLASSES,
        steps=steps,
        final_loss=float(np.mean(losses[-20:])),
        seconds=round(time.time() - start, 1),
        trained_on=os.path.abspath(os.fspath(cityscapes_dir)),
    )
    entries = [{"name": p.name, "data": p} for p in net.get_parameters()]
    save_with_meta(entries, out, meta)
    log(f"wrote {out}: tiny_unet w={width_mult}, {steps} steps, loss {meta['final_loss']:.4f}, {meta['seconds']} s")
    return meta


def run(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m src.metrics.segmenter",
        description="Train a small segmenter (photos -> 19 Cityscapes train ids) for FCN-score-like evaluation.",
    )
    parser.add_argument("--cityscapes_dir", required=True, help="Cityscapes-shaped tree (leftImg8bit/, gtFine/)")
    parser.add_argument("--out", required=True, help="checkpoint to write")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--width_mult", type=int, default=16, help="channels of the first level (default 16)")
    parser.add_argument("--minutes", type=float, default=3.0, help="training time budget (default 3)")
    parser.add_argument("--max_steps", type=int, default=0, help="stop after this many steps (0 = time only)")
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train_segmenter(
        args.cityscapes_dir,
        args.out,
        height=args.height,
        width=args.width,
        width_mult=args.width_mult,
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        log=functools.partial(print, flush=True),
    )


def main(argv=None):
    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())
