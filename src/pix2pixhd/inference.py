"""pix2pixHD at test time: features from the encoder or the clusters, generation, eval sets, ``--input`` label
maps, and the exported graph (label and instance ids in, the one-hot encoding and boundary map inside)."""

import os

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.common.eval_sets import EvalSet
from src.errors import UserError
from src.pix2pixhd import features as F
from src.pix2pixhd.options import segments_kind


def _label_palette(n):
    from src.dataset.cityscapes_labels import NUM_LABEL_IDS, colorize_label_ids

    base = colorize_label_ids(np.arange(NUM_LABEL_IDS, dtype=np.uint8)[None])[0]
    extra = np.random.default_rng(0).integers(0, 256, (max(0, n - NUM_LABEL_IDS), 3), dtype=np.uint8)
    return np.concatenate([base, extra])[: max(n, 1)]


class EdgeOneHot(nn.Cell):
    """Export front end: label ids (N x 1 x H x W) and instance ids -> one-hot + boundary map, as the dataset does."""

    def __init__(self, label_nc, no_instance):
        super().__init__()
        self.label_nc, self.no_instance = label_nc, no_instance

    def construct(self, label, inst):
        onehot = ops.one_hot(label[:, 0].astype(ms.int32), self.label_nc, ms.Tensor(1.0), ms.Tensor(0.0))
        onehot = onehot.transpose(0, 3, 1, 2)
        if self.no_instance:
            return onehot
        inst = inst.astype(ms.float32)
        dh = ops.not_equal(inst[:, :, :, 1:], inst[:, :, :, :-1]).astype(ms.float32)
        dv = ops.not_equal(inst[:, :, 1:, :], inst[:, :, :-1, :]).astype(ms.float32)
        zw, zh = ops.zeros_like(inst[:, :, :, :1]), ops.zeros_like(inst[:, :, :1, :])  # (concat: ONNX has no PadV3)
        edge = ops.maximum(ops.cat((zw, dh), 3), ops.cat((dh, zw), 3))
        edge = ops.maximum(edge, ops.maximum(ops.cat((zh, dv), 2), ops.cat((dv, zh), 2)))
        return ops.cat((onehot, edge), 1)


class InferenceNet(nn.Cell):
    """What export writes: (label ids, instance ids[, feature map]) -> image."""

    def __init__(self, G, label_nc, no_instance, with_features):
        super().__init__()
        self.G, self.front, self.with_features = G, EdgeOneHot(label_nc, no_instance), with_features

    def construct(self, label, inst, feat=None):
        x = self.front(label, inst)
        if self.with_features:
            x = ops.cat((x, feat), 1)
        return self.G(x)


class _LabelEvalSet(EvalSet):
    """The test split for eval.py: ``translate(index)`` -> (coloured label, output, photo or None)."""

    def __init__(self, model, source, seed):
        super().__init__(source.names, seed)
        self.model, self.source = model, source

    def translate(self, index):
        sample = self.source.get(index, self.rng(index))
        inp, image, seg = sample["input"], sample["image"], sample["segments"]
        rng = self.rng(index)  # a fresh draw of the same seed for the cluster sampling
        has_photo = self.source.image_paths is not None
        feats = sample["features"][None] if "features" in sample else None  # load_features: precomputed
        fake = self.model.generate(inp[None], seg[None], image[None] if has_photo else None, rng, features=feats)[0]
        return self.model.display_input(inp), fake, image if has_photo else None


class Pix2PixHDInference:
    """The inference verbs of :class:`src.pix2pixhd.model.Pix2PixHDModel` (it sets ``cfg``, ``G``, ``E``,
    ``networks``, ``use_features``, ``clusters`` and ``size_multiple``)."""

    def set_test_mode(self, test_mode):
        """Instance norm and no dropout: both modes are deterministic; ``paper`` keeps train-mode cells."""
        for name, net in self.networks.items():
            if name != "D":
                net.set_train(test_mode == "paper")

    def encode_features(self, image, segments):
        """Encoder output averaged per segment: ``N x feat_num x H x W`` NumPy."""
        ids, num_segments = F.segment_ids(segments)
        return self.E(ms.Tensor(np.asarray(image, np.float32)), ms.Tensor(ids), num_segments).asnumpy()

    def feature_map(self, segments, image=None, rng=None, encode=None):
        """Features for the generator at test time: encoded from ``image`` (use_encoded_image), else sampled from the
        clusters (zeros when there are none loaded, e.g. in the benchmark)."""
        seg = np.asarray(segments)
        encode = self.cfg.use_encoded_image if encode is None else encode
        if encode and image is not None and self.E is not None:
            return self.encode_features(image, seg)
        if self.clusters is None:
            return np.zeros((seg.shape[0], self.cfg.feat_num) + seg.shape[-2:], np.float32)
        rng = rng or np.random.default_rng(int(self.cfg.seed))
        return np.stack([F.sample_feature_map(self.clusters, s, rng) for s in seg])

    def generate(self, inp, segments=None, image=None, rng=None, encode=None, features=None):
        """Translate label inputs (``N x C x H x W`` as the dataset makes them); returns a NumPy array.

        With features: ``features`` when given (precomputed), else :meth:`feature_map`."""
        inp = np.asarray(inp, np.float32)
        if self.use_features:
            if features is None:
                if segments is None:
                    segments = np.zeros((inp.shape[0], 1) + inp.shape[2:], np.int32)
                features = self.feature_map(segments, image, rng, encode)
            inp = np.concatenate([inp, np.asarray(features, np.float32)], 1)
        return self.run_network("G", inp)

    def display_input(self, inp):
        """A ``3 x H x W`` picture in [-1, 1] of one input (label colours for label maps)."""
        if self.cfg.label_nc == 0:
            return inp
        ids = np.argmax(inp[: self.cfg.label_nc], 0)
        rgb = _label_palette(self.cfg.label_nc)[ids].astype(np.float32)
        return rgb.transpose(2, 0, 1) / 127.5 - 1.0

    def visuals(self, batch):
        """Coloured input, output, photo of a batch ``{"input", "image", "segments"[, "features"], ...}``."""
        feats = batch.get("features")  # load_features: the precomputed ones, else the photo's features
        fake = self.generate(batch["input"], batch["segments"], batch["image"], encode=True, features=feats)
        shown = np.stack([self.display_input(x) for x in batch["input"]])
        return [shown, fake, batch["image"]]

    # ----- eval.py / export.py hooks
    def prepare_eval(self, ckpt_path, network, log=print):
        """Load E (beside the G checkpoint) and the feature clusters when the model uses features."""
        from src.common import checkpoint as ckpt

        if network != "G":
            raise UserError(f"eval needs the generator checkpoint (G_*.ckpt), not {network}")
        if not self.use_features:
            return
        folder, base = os.path.split(os.path.abspath(ckpt_path))
        if self.E is not None:
            e_path = os.path.join(folder, "E" + base[1:])
            if not os.path.isfile(e_path):
                raise UserError(f"encoder checkpoint {e_path} not found next to {ckpt_path}; the run used features")
            ckpt.load_network(self.E, e_path, self.cfg.model, "E")
        if not self.cfg.use_encoded_image:
            self.clusters = F.load_clusters(self.cluster_path(folder), self.cfg.label_nc, self.cfg.feat_num)
            log(f"feature clusters: {self.cluster_path(folder)}")

    def cluster_path(self, run_dir):
        """``cluster_path``, else the run's own cluster file; a ``load_features`` run has no encoder, so it falls
        back to the file of its ``load_pretrain`` run (whose encoder made the features it trained on)."""
        if self.cfg.cluster_path:
            return self.cfg.cluster_path
        name = F.cluster_file_name(self.cfg.n_clusters)
        own = os.path.join(run_dir, name)
        if self.E is None and not os.path.isfile(own) and self.cfg.load_pretrain:
            pretrain_dir = self.cfg.load_pretrain
            if not os.path.isdir(pretrain_dir):
                pretrain_dir = os.path.dirname(pretrain_dir)
            if os.path.isfile(os.path.join(pretrain_dir, name)):
                return os.path.join(pretrain_dir, name)
        return own

    def translate_file(self, path):
        """eval.py --input: one label id map at its own size -> (input picture, output), CHW in [-1, 1].

        The instance map is ``<folder with _label replaced by _inst>/<same name>`` when it exists; otherwise the label
        map stands in for it (boundaries between classes only). ``label_nc 0``: an RGB image.
        """
        from src.dataset.image_io import load_image, to_tensor_array
        from src.dataset.label_instance import check_label_range, encode_label_input, load_id_map

        cfg, m = self.cfg, self.size_multiple
        if cfg.label_nc == 0:
            inp = to_tensor_array(load_image(path, cfg.input_nc))
            seg = np.zeros(inp.shape[1:], np.int32)
            h, w = seg.shape
        else:
            label = load_id_map(path)
            check_label_range(label, cfg.label_nc, path)
            folder, name = os.path.split(os.path.abspath(path))
            inst_path = os.path.join(folder.replace("_label", "_inst"), name)
            inst = load_id_map(inst_path) if "_label" in folder and os.path.isfile(inst_path) else label
            if inst.shape != label.shape:
                raise UserError(
                    f"{inst_path} is {inst.shape[1]}x{inst.shape[0]}, its label map {path} is "
                    f"{label.shape[1]}x{label.shape[0]}; they must have the same size"
                )
            h, w = label.shape
            pad = ((0, (-h) % m), (0, (-w) % m))
            label, inst = np.pad(label, pad, mode="edge"), np.pad(inst, pad, mode="edge")
            inp = encode_label_input(label, inst, cfg.label_nc, cfg.no_instance)
            seg = label if segments_kind(cfg) == "label" else inst
        if inp.shape[1] % m or inp.shape[2] % m:
            inp = np.pad(inp, ((0, 0), (0, (-h) % m), (0, (-w) % m)), mode="symmetric")
            seg = np.pad(seg, ((0, (-h) % m), (0, (-w) % m)), mode="edge")
        rng = np.random.default_rng(int(cfg.seed))
        out = self.generate(inp[None], seg[None, None].astype(np.int32), None, rng)[0][:, :h, :w]
        return self.display_input(inp)[:, :h, :w], out

    def eval_sets(self, cfg, phase):
        return [_LabelEvalSet(self, self.make_source(cfg, phase, training=False), cfg.seed)]

    def export_graphs(self, ckpt_path, network):
        """One network: (label ids, instance ids[, feature map]) -> image; label_nc 0: the RGB generator."""
        from src.common.layers import set_export_friendly

        cfg = self.cfg
        set_export_friendly(self.G)  # MirrorPad has no ONNX exporter
        size = cfg.export_size or cfg.crop_size
        rng = np.random.default_rng(0)
        shape = (cfg.export_batch, 1, size, size)
        if cfg.label_nc == 0:
            return super().export_graphs(ckpt_path, network)
        label = rng.integers(0, cfg.label_nc, shape).astype(np.int32)
        inst = (label * 1000 + rng.integers(0, 2, shape)).astype(np.int32)
        inputs = (label, inst)
        if self.use_features:
            inputs += (rng.uniform(-1, 1, (cfg.export_batch, cfg.feat_num, size, size)).astype(np.float32),)
        net = InferenceNet(self.G, cfg.label_nc, cfg.no_instance, self.use_features)
        return os.path.splitext(os.path.abspath(ckpt_path))[0], [("", net, inputs)]
