"""pix2pixHD: coarse-to-fine generator, multi-scale discriminator with feature matching, VGG perceptual loss and an
optional instance-feature encoder.

One training step (one ``mindspore.jit`` graph), in the reference's order:
1. ``fake = G(input [+ E(photo) pooled per instance])``; the G loss against the current D:
   GAN + feature matching + VGG; G (and E) are updated;
2. D is updated on ``(input, photo)`` as real and ``(input, stop_gradient(fake))`` as fake, loss x 0.5.
D runs three times per step as in the reference (real, fake, detached fake; see ``_build_step``).
With ``netG local`` and ``niter_fix_global N``, the first N epochs update only the outermost local enhancer (and E),
as the reference (which trains only ``model<n_local_enhancers>_*``): the gradients of the global part and of the
inner enhancers are zeroed, and their Adam moments stay zero, so they do not move.
With ``load_features`` (the reference's 1024p feature recipe) there is no encoder: G's feature input is read from the
per-image files ``precompute_feature_maps.py`` wrote with another run's encoder (``<dataroot>/<phase>_feat``).
"""

import math
import os

import mindspore as ms
import numpy as np
from mindspore import nn, ops

from src.common.init import count_params, init_weights
from src.common.model_base import GANModel
from src.common.optim import add_grads, make_adam, make_grad_reducer, subtractive_decay_lr
from src.common.tensors import wait_for_step
from src.errors import UserError
from src.pix2pixhd import features as F
from src.pix2pixhd.losses import VGG19Features, feature_matching_loss, load_vgg19, multiscale_gan_loss, vgg_loss
from src.pix2pixhd.networks import Encoder, GlobalGenerator, LocalEnhancer, MultiscaleDiscriminator


def label_channels(cfg):
    """Channels of the label input (one-hot + boundary map, or RGB for label_nc 0), without encoded features."""
    if cfg.label_nc == 0:
        return cfg.input_nc
    return cfg.label_nc + (0 if cfg.no_instance else 1)


def uses_features(cfg):
    return bool(cfg.instance_feat or cfg.label_feat)


def loads_features(cfg):
    """``load_features``: G's features come from precomputed per-image files instead of an encoder."""
    return uses_features(cfg) and bool(cfg.get("load_features", False))


def segments_kind(cfg):
    """The regions features are averaged over: ``label`` ids whenever ``label_feat`` is set (with ``instance_feat``
    too, as the reference's ``encode_input``, where ``inst_map = label_map`` wins), else ``instance`` ids."""
    return "label" if cfg.label_feat else "instance"


def check_config(cfg):
    if cfg.label_nc < 0:
        raise UserError(f"label_nc must be >= 0, got {cfg.label_nc}")
    if cfg.netG not in ("global", "local"):
        raise UserError(f"pix2pixhd netG must be global or local, got '{cfg.netG}'")
    if cfg.instance_feat and (cfg.no_instance or cfg.label_nc == 0):
        raise UserError("instance_feat needs instance maps: drop --no_instance (and use label maps, label_nc > 0)")
    if cfg.label_feat and cfg.label_nc == 0:
        raise UserError("label_feat needs label maps (label_nc > 0)")
    if cfg.num_D < 1:
        raise UserError(f"num_D must be >= 1, got {cfg.num_D}")
    if cfg.get("load_features", False) and not uses_features(cfg):
        raise UserError("load_features needs --instance_feat True (or --label_feat True): it loads encoded features")


def check_training_config(cfg):
    """Training-only checks (a run directory saved before such a check still evaluates)."""
    if cfg.pool_size != 0:
        raise UserError(
            f"pool_size {cfg.pool_size} is not supported by pix2pixhd, which has no image pool (the reference's "
            f"default, pool_size 0); valid values are: 0"
        )


def build_generator(cfg):
    in_nc = label_channels(cfg) + (cfg.feat_num if uses_features(cfg) else 0)
    if cfg.netG == "global":
        return GlobalGenerator(in_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global, cfg.norm)
    return LocalEnhancer(
        in_nc,
        cfg.output_nc,
        cfg.ngf,
        cfg.n_downsample_global,
        cfg.n_blocks_global,
        cfg.n_local_enhancers,
        cfg.n_blocks_local,
        cfg.norm,
    )


def fixed_parameter_mask(names, cfg):
    """For each of G's optimiser parameter ``names``: True if it stays fixed while ``niter_fix_global`` holds, i.e. a
    G parameter outside the outermost local enhancer (the reference trains only ``model<n_local_enhancers>_1/_2``,
    and E). All False for ``netG global``."""
    if cfg.netG != "local":
        return tuple(False for _ in names)
    outer = cfg.n_local_enhancers - 1
    trained = (f"G.local_down.{outer}.", f"G.local_up.{outer}.")
    return tuple(n.startswith("G.") and not n.startswith(trained) for n in names)


def pretrain_path(cfg, network="G"):
    """The checkpoint ``load_pretrain`` points at: a file, or ``DIR/<network>_<which_epoch>.ckpt``."""
    path = cfg.load_pretrain
    if os.path.isdir(path):
        which = str(cfg.which_epoch)
        name = f"{network}_latest.ckpt" if which == "latest" else f"{network}_epoch_{int(which):03d}.ckpt"
        path = os.path.join(path, name)
    return path


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


class _EvalSet:
    """The test split for eval.py: ``translate(item)`` -> (coloured label, output, photo or None)."""

    tag = ""

    def __init__(self, model, source, seed):
        self.model, self.source, self.names, self.seed = model, source, source.names, seed

    def __len__(self):
        return len(self.source)

    def get(self, index, rng):
        return self.source.get(index, rng)

    def generate(self, x):
        return self.model.generate(x)

    def translate(self, item):
        inp, image, seg, index = item[0], item[1], item[2], item[-1]
        rng = np.random.default_rng([int(self.seed), int(index)])
        has_photo = self.source.image_paths is not None
        feats = item[3][None] if len(item) == 5 else None  # load_features: precomputed for this split
        fake = self.model.generate(inp[None], seg[None], image[None] if has_photo else None, rng, features=feats)[0]
        return self.model.display_input(inp), fake, image if has_photo else None


class Pix2PixHDModel(GANModel):
    """The pix2pixHD model: networks ``G`` (+ ``E``) and ``D``, a jit-compiled train step and ``generate``."""

    name = "pix2pixhd"
    loss_names = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")
    visual_names = ("input_label", "synthesized_image", "real_image")

    def __init__(self, cfg, env=None, training=True):
        check_config(cfg)
        self.cfg = cfg
        self.use_features = uses_features(cfg)
        self.G = build_generator(cfg)
        init_weights(self.G, cfg.init_type, cfg.init_gain, bias_init="torch_default")
        self.G.update_parameters_name("G.")
        self.networks = {"G": self.G}
        multiple = self.G.size_multiple
        self.E = None
        if self.use_features and not loads_features(cfg):
            self.E = Encoder(cfg.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.norm)
            init_weights(self.E, cfg.init_type, cfg.init_gain, bias_init="torch_default")
            self.E.update_parameters_name("E.")
            self.networks["E"] = self.E
            multiple = multiple * self.E.size_multiple // math.gcd(multiple, self.E.size_multiple)
        self.size_multiple = multiple
        self.optimizers = {}
        self.clusters = None
        self.frozen_global = False
        if not training:
            return
        check_training_config(cfg)
        if cfg.load_pretrain and not (cfg.continue_train or cfg.resume):
            self.load_pretrained(pretrain_path(cfg))
            e_path = pretrain_path(cfg, "E")
            if self.E is not None and os.path.isdir(cfg.load_pretrain) and os.path.isfile(e_path):
                from src.common.checkpoint import load_network

                load_network(self.E, e_path, cfg.model, "E")
        self.vgg = None
        if not cfg.no_vgg_loss:
            self.vgg = load_vgg19(VGG19Features(), cfg.vgg_pre_trained)
            self.vgg.set_train(False)
        self.D = MultiscaleDiscriminator(
            label_channels(cfg) + cfg.output_nc, cfg.ndf, cfg.d_layers, cfg.norm, cfg.num_D
        )
        init_weights(self.D, cfg.init_type, cfg.init_gain, bias_init="torch_default")
        self.D.update_parameters_name("D.")
        self.networks["D"] = self.D
        d_path = pretrain_path(cfg, "D")
        if cfg.load_pretrain and not (cfg.continue_train or cfg.resume) and os.path.isdir(cfg.load_pretrain):
            if os.path.isfile(d_path):
                self.load_pretrained_discriminator(d_path)
        g_params = list(self.G.trainable_params()) + (list(self.E.trainable_params()) if self.E else [])
        self.opt_G = make_adam(g_params, cfg.lr, cfg.beta1, cfg.beta2, "opt_G")
        self.opt_D = make_adam(self.D.trainable_params(), cfg.lr, cfg.beta1, cfg.beta2, "opt_D")
        self.optimizers = {"G": self.opt_G, "D": self.opt_D}
        self.reduce_G = make_grad_reducer(self.opt_G.parameters, env)
        self.reduce_D = make_grad_reducer(self.opt_D.parameters, env)
        self.global_mask = fixed_parameter_mask([p.name for p in self.opt_G.parameters], cfg)
        self._steps = {}
        self.on_epoch_start(1)

    # ----- pretrained weights (1024p from 512p)
    def load_pretrained(self, path):
        """Initialise G from ``path``; a 512p global G loads into the global part of a local enhancer."""
        from src.common.checkpoint import read_checkpoint
        from src.common.tensors import assign

        if not os.path.isfile(path):
            raise UserError(
                f"load_pretrain: G checkpoint not found: {path}; train the lower-resolution run first (e.g. "
                f"scripts/train_512p.sh) or pass --load_pretrain ''"
            )
        params = read_checkpoint(path)
        own = {p.name: p for p in self.G.get_parameters()}
        needed = [n for n in own if n.startswith("G.model.")] if self.cfg.netG == "local" else list(own)
        if self.cfg.netG == "local" and not any(k.startswith("G.head.") for k in params):
            needed = list(own)  # a local-enhancer checkpoint: load everything
        for name in needed:
            if name not in params or tuple(params[name].shape) != tuple(own[name].shape):
                got = tuple(params[name].shape) if name in params else "missing"
                raise UserError(
                    f"load_pretrain {path} does not fit this generator ({name}: {got} vs {tuple(own[name].shape)}); "
                    f"use the G checkpoint of a run with the same label_nc, ngf (x2 for netG local), "
                    f"n_downsample_global and n_blocks_global"
                )
        for name in needed:
            assign(own[name], params[name])
        return len(needed)

    def load_pretrained_discriminator(self, path):
        """Initialise D's scales from a lower-resolution run's D, matched by the resolution they see (as the
        reference, whose scale names count from the coarsest): with ``num_D`` 3 here and 2 there, our scales 1 and 2
        (1/2 and 1/4 of 2048x1024) get that run's scales 0 and 1 (1/1 and 1/2 of 1024x512); the finest scale keeps
        its initialisation. A scale whose shapes differ (other ndf, n_layers_D or inputs) is left as initialised.
        Returns the indices of the scales loaded."""
        from src.common.checkpoint import read_checkpoint
        from src.common.tensors import assign

        params = read_checkpoint(path)
        theirs = {int(k.split(".")[2]) for k in params if k.startswith("D.nets.")}
        shift = self.cfg.num_D - (max(theirs) + 1 if theirs else 0)
        loaded = []
        for i in range(self.cfg.num_D):
            own = [p for p in self.D.get_parameters() if p.name.startswith(f"D.nets.{i}.")]
            if i - shift not in theirs:
                continue
            names = [p.name.replace(f"D.nets.{i}.", f"D.nets.{i - shift}.", 1) for p in own]
            if all(n in params and tuple(params[n].shape) == tuple(p.shape) for n, p in zip(names, own)):
                for n, p in zip(names, own):
                    assign(p, params[n])
                loaded.append(i)
        return loaded

    # ----- training
    def learning_rate_at(self, epoch):
        """NVIDIA's schedule (``update_learning_rate``): full rate through epoch ``n_epochs + 1``, then ``lr /
        n_epochs_decay`` less per epoch, down to ``lr / n_epochs_decay`` in the last epoch."""
        cfg = self.cfg
        return subtractive_decay_lr(cfg.lr, epoch, cfg.n_epochs, cfg.n_epochs_decay)

    def on_epoch_start(self, epoch):
        """Called by the trainer before each epoch: for ``niter_fix_global`` epochs everything of G but the outermost
        local enhancer is frozen (the global generator, and the inner enhancers when ``n_local_enhancers >= 2``).

        When it is released, G's optimiser starts afresh, as the reference does (it builds a new Adam over all of G
        and E): moments zero and bias correction from step 1. Otherwise the global part's first updates would use
        the bias correction of a late step with moments that start at zero, about 16x the learning rate with
        beta1 0.5. A resumed run whose global part has trained already (non-zero moments) keeps its state."""
        was_frozen = self.frozen_global
        self.frozen_global = self.cfg.netG == "local" and epoch <= self.cfg.niter_fix_global
        if was_frozen and not self.frozen_global and self.optimizers and not self._global_part_trained():
            self._restart_optimizer_G()

    def _global_part_trained(self):
        opt = self.opt_G
        return any(np.any(m.asnumpy() != 0) for m, frozen in zip(opt.moment1, self.global_mask) if frozen)

    def _restart_optimizer_G(self):
        from src.common.tensors import assign

        opt = self.opt_G
        for m in list(opt.moment1) + list(opt.moment2):
            assign(m, np.zeros(m.shape, np.float32))
        assign(opt.beta1_power, np.ones(opt.beta1_power.shape, np.float32))
        assign(opt.beta2_power, np.ones(opt.beta2_power.shape, np.float32))
        assign(opt.global_step, np.zeros(opt.global_step.shape, np.int32))

    def _build_step(self, num_segments, frozen):
        """The jit train step (see the module docstring). D runs three times, as in the reference: on the real
        input (its features serve the D loss and, as constants, G's feature matching), on the fake for the G loss,
        and on the detached fake for the D loss. All passes see the same D weights (D is updated last), and the D
        gradient is the sum of the real and fake halves' gradients, as for the whole D loss; a test compares the
        step's losses and gradients with four separate passes.

        Sharing the fake pass too would need two different backward passes through one forward (to the image for
        G, to D's weights for D), i.e. ``mindspore.vjp`` of the multi-output D, which MindSpore 2.8 does not
        compile inside ``jit`` (README, "pix2pixHD: differences from the reference").
        """
        cfg, G, D, E, vgg = self.cfg, self.G, self.D, self.E, self.vgg
        gan_loss = multiscale_gan_loss(cfg.no_lsgan or cfg.gan_mode == "vanilla")
        use_fm, encode, load = not cfg.no_ganFeat_loss, E is not None, loads_features(cfg)
        num_D, n_layers_D, lambda_feat = cfg.num_D, cfg.d_layers, cfg.lambda_feat
        opt_G, opt_D, reduce_G, reduce_D = self.opt_G, self.opt_D, self.reduce_G, self.reduce_D
        mask = self.global_mask if frozen else tuple(False for _ in self.global_mask)

        def d_real_forward(label, real):
            pred_real = D(ops.cat((label, real), 1))
            loss_real = gan_loss(pred_real, True)
            return loss_real * 0.5, loss_real, pred_real

        def g_forward(label, real, ids, feat, pred_real):
            if encode:
                g_in = ops.cat((label, E(real, ids, num_segments)), 1)
            elif load:
                g_in = ops.cat((label, feat), 1)
            else:
                g_in = label
            fake = G(g_in)
            pred_fake = D(ops.cat((label, fake), 1))
            loss_gan = gan_loss(pred_fake, True)
            zero = ops.zeros((), ms.float32)
            loss_fm, loss_vgg = zero, zero
            if use_fm:
                loss_fm = feature_matching_loss(pred_fake, pred_real, num_D, n_layers_D, lambda_feat)
            if vgg is not None:
                loss_vgg = vgg_loss(vgg, fake, real, lambda_feat)
            return loss_gan + loss_fm + loss_vgg, loss_gan, loss_fm, loss_vgg, fake

        def d_fake_forward(label, fake):
            loss_fake = gan_loss(D(ops.cat((label, fake), 1)), False)
            return loss_fake * 0.5, loss_fake

        grad_d_real = ms.value_and_grad(d_real_forward, None, opt_D.parameters, has_aux=True)
        grad_g = ms.value_and_grad(g_forward, None, opt_G.parameters, has_aux=True)
        grad_d_fake = ms.value_and_grad(d_fake_forward, None, opt_D.parameters, has_aux=True)

        def apply_mask(grads):
            out = ()
            for i in range(len(mask)):
                if mask[i]:
                    out = out + (ops.zeros_like(grads[i]),)
                else:
                    out = out + (grads[i],)
            return out

        def step(label, real, ids, feat):
            (_, loss_real, pred_real), grads_real = grad_d_real(label, real)
            (loss_g, loss_gan, loss_fm, loss_vgg, fake), grads_g = grad_g(label, real, ids, feat, pred_real)
            if frozen:
                grads_g = apply_mask(grads_g)
            loss_g = ops.depend(loss_g, opt_G(reduce_G(grads_g)))
            fake = ops.depend(fake, loss_g)
            (_, loss_fake), grads_fake = grad_d_fake(label, ops.stop_gradient(fake))
            loss_fake = ops.depend(loss_fake, opt_D(reduce_D(add_grads(grads_fake, grads_real))))
            loss_real = ops.depend(loss_real, loss_fake)
            loss_gan = ops.depend(loss_gan, loss_g)
            return loss_gan, loss_fm, loss_vgg, loss_real, loss_fake

        return ms.jit(step) if cfg.jit else step

    @staticmethod
    def make_source(cfg, phase, training=True):
        """The label/instance/photo dataset; with ``load_features`` (training, or eval with ``use_encoded_image``)
        samples carry the precomputed feature map as a fourth column before the index."""
        from src.dataset.label_instance import LabelInstanceDataset

        check_config(cfg)
        multiple = build_size_multiple(cfg)
        load = loads_features(cfg) and (training or cfg.use_encoded_image)
        source = LabelInstanceDataset(
            cfg.dataroot,
            phase,
            label_nc=cfg.label_nc,
            no_instance=cfg.no_instance,
            segments=segments_kind(cfg),
            preprocess=cfg.preprocess,
            load_size=cfg.load_size,
            crop_size=cfg.crop_size,
            no_flip=cfg.no_flip or not training,
            size_multiple=multiple,
            max_dataset_size=cfg.max_dataset_size or None,
            need_image=training or (uses_features(cfg) and cfg.use_encoded_image and not loads_features(cfg)),
        )
        return F.PrecomputedFeatureSource(source, cfg.feat_num, segments_kind(cfg)) if load else source

    def example_batch(self, batch_size, height, width, seed=0):
        """A random batch (for benchmark.py): random label map with a few instances, random photo."""
        rng = np.random.default_rng(seed)
        from src.dataset.label_instance import encode_label_input

        inputs, segs = [], []
        for _ in range(batch_size):
            if self.cfg.label_nc == 0:
                inputs.append(rng.uniform(-1, 1, (self.cfg.input_nc, height, width)).astype(np.float32))
                segs.append(np.zeros((1, height, width), np.int32))
                continue
            small = rng.integers(0, self.cfg.label_nc, (max(1, height // 16), max(1, width // 16)))
            label = np.kron(small, np.ones((16, 16), np.int64))[:height, :width]
            label = np.pad(label, ((0, height - label.shape[0]), (0, width - label.shape[1])), mode="edge")
            inst = label * 1000 + (np.arange(width)[None] // max(1, width // 4))
            inputs.append(encode_label_input(label, inst, self.cfg.label_nc, self.cfg.no_instance))
            segs.append(inst[None].astype(np.int32))
        images = rng.uniform(-1, 1, (batch_size, self.cfg.output_nc, height, width)).astype(np.float32)
        index = np.arange(batch_size, dtype=np.int32)
        if loads_features(self.cfg):
            feats = rng.uniform(-1, 1, (batch_size, self.cfg.feat_num, height, width)).astype(np.float32)
            return np.stack(inputs), images, np.stack(segs), feats, index
        return np.stack(inputs), images, np.stack(segs), index

    def train_step(self, batch):
        """One G (+E) and one D update on a batch ``(input, image, segments[, features], index)``; returns the named
        losses."""
        label, real = ms.Tensor(batch[0]), ms.Tensor(batch[1])
        if self.E is not None:
            ids, num_segments = F.segment_ids(batch[2])
        else:
            ids, num_segments = np.zeros((1,), np.int32), 0
        feat = np.asarray(batch[3], np.float32) if loads_features(self.cfg) else np.zeros((1,), np.float32)
        key = (num_segments, self.frozen_global)
        if key not in self._steps:
            self._steps[key] = self._build_step(num_segments, self.frozen_global)
        losses = self._steps[key](label, real, ms.Tensor(ids), ms.Tensor(feat))
        wait_for_step(losses[4])  # D_fake: depends on D's update, the step's last
        return {k: float(v.asnumpy()) for k, v in zip(self.loss_names, losses)}

    # ----- inference
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
        if not hasattr(self, "_gen"):
            G = self.G

            def gen(x):
                return G(x)

            self._gen = ms.jit(gen) if self.cfg.jit else gen
        return self._gen(ms.Tensor(inp)).asnumpy()

    def display_input(self, inp):
        """A ``3 x H x W`` picture in [-1, 1] of one input (label colours for label maps)."""
        if self.cfg.label_nc == 0:
            return inp
        ids = np.argmax(inp[: self.cfg.label_nc], 0)
        rgb = _label_palette(self.cfg.label_nc)[ids].astype(np.float32)
        return rgb.transpose(2, 0, 1) / 127.5 - 1.0

    def visuals(self, batch):
        feats = batch[3] if len(batch) == 5 else None  # load_features: the precomputed ones
        fake = self.generate(batch[0], batch[2], batch[1], encode=True, features=feats)  # else the photo's features
        shown = np.stack([self.display_input(x) for x in batch[0]])
        return [shown, fake, batch[1]]

    def describe(self):
        return {name: count_params(net) for name, net in self.networks.items()}

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
        return [_EvalSet(self, self.make_source(cfg, phase, training=False), cfg.seed)]

    def export_networks(self, ckpt_path, network):
        """One network: (label ids, instance ids[, feature map]) -> image; label_nc 0: the RGB generator."""
        from src.common.layers import set_export_friendly

        cfg = self.cfg
        set_export_friendly(self.G)  # MirrorPad has no ONNX exporter
        size = cfg.export_size or cfg.crop_size
        rng = np.random.default_rng(0)
        shape = (cfg.export_batch, 1, size, size)
        if cfg.label_nc == 0:
            x = rng.uniform(-1, 1, (cfg.export_batch, cfg.input_nc, size, size)).astype(np.float32)
            return os.path.splitext(os.path.abspath(ckpt_path))[0], [("", self.G, (x,))]
        label = rng.integers(0, cfg.label_nc, shape).astype(np.int32)
        inst = (label * 1000 + rng.integers(0, 2, shape)).astype(np.int32)
        inputs = (label, inst)
        if self.use_features:
            inputs += (rng.uniform(-1, 1, (cfg.export_batch, cfg.feat_num, size, size)).astype(np.float32),)
        net = InferenceNet(self.G, cfg.label_nc, cfg.no_instance, self.use_features)
        return os.path.splitext(os.path.abspath(ckpt_path))[0], [("", net, inputs)]

    @property
    def export_network(self):
        return {"G": self.G}


def build_size_multiple(cfg):
    g = 2 ** (cfg.n_downsample_global + (cfg.n_local_enhancers if cfg.netG == "local" else 0))
    if uses_features(cfg) and not loads_features(cfg):
        e = 2**cfg.n_downsample_E
        return g * e // math.gcd(g, e)
    return g
