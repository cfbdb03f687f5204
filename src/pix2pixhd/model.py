"""pix2pixHD: coarse-to-fine generator, multi-scale discriminator with feature matching, VGG perceptual loss and an
optional instance-feature encoder.

One training step (one ``mindspore.jit`` graph), in the reference's order:
1. ``fake = G(input [+ E(photo) pooled per instance])``; the G loss against the current D:
   GAN + feature matching + VGG; G (and E) are updated, stage by stage during G's backward pass;
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
from mindspore import ops

from src.common.heap import HeapTrim
from src.common.optim import adam_begin, adam_update, add_grads, make_grad_reducer, subtractive_decay_lr
from src.common.tensors import wait_for_step
from src.errors import UserError
from src.model_base import GANModel
from src.pix2pixhd import features as F
from src.pix2pixhd.inference import Pix2PixHDInference
from src.pix2pixhd.losses import VGG19Features, feature_matching_loss, load_vgg19, multiscale_gan_loss, vgg_feature_loss
from src.pix2pixhd.networks import Encoder, MultiscaleDiscriminator
from src.pix2pixhd.options import (
    build_generator,
    build_size_multiple,
    check_config,
    check_training_config,
    label_channels,
    loads_features,
    pretrain_path,
    segments_kind,
    uses_features,
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


def generator_stages(G, E, opt_params):
    """G (with E) as a chain of stages for the train step: ``(cells, parameters, indices)`` per stage, where
    ``cells`` run in turn, ``parameters`` are the stage's trainable ones (E's with the first stage, which takes G's
    input) and ``indices`` their places in ``opt_params`` (G's optimiser). The global generator has one stage per
    residual block (:meth:`GlobalGenerator.stages`); the local enhancer is one stage."""
    cell_stages = G.stages() if hasattr(G, "stages") else ((G,),)
    index = {p.name: i for i, p in enumerate(opt_params)}
    stages = []
    for k, cells in enumerate(cell_stages):
        params = [p for cell in cells for p in cell.trainable_params()]
        if k == 0 and E is not None:
            params += list(E.trainable_params())
        stages.append((cells, tuple(params), tuple(index[p.name] for p in params)))
    covered = sorted(i for _, _, indices in stages for i in indices)
    if covered != list(range(len(opt_params))):
        raise RuntimeError("generator stages do not cover G's optimiser parameters once each")
    return tuple(stages)


def run_cells(cells, x):
    for cell in cells:
        x = cell(x)
    return x


def chain(cells):
    """The function ``x -> cells[-1](...cells[0](x))``. (The first stage's function calls ``run_cells`` itself: a
    version in which it called its stage's ``chain`` closure failed to compile in MindSpore 2.8 in a process that
    had compiled other steps, "func_graph->get_return() is null".)"""

    def run(x):
        return run_cells(cells, x)

    return run


class Pix2PixHDModel(Pix2PixHDInference, GANModel):
    """The pix2pixHD model: networks ``G`` (+ ``E``) and ``D``, a jit-compiled train step and ``generate``."""

    name = "pix2pixhd"
    loss_names = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")

    def __init__(self, cfg, env=None, training=True):
        check_config(cfg)
        self.cfg = cfg
        self.use_features = uses_features(cfg)
        self.networks, self.optimizers = {}, {}
        # NVIDIA's weights_init sets only conv weights: biases keep PyTorch's default (docs/differences.md)
        self.G = self.add_network("G", build_generator(cfg), bias_init="torch_default")
        multiple = self.G.size_multiple
        self.E = None
        if self.use_features and not loads_features(cfg):
            encoder = Encoder(cfg.output_nc, cfg.feat_num, cfg.nef, cfg.n_downsample_E, cfg.norm)
            self.E = self.add_network("E", encoder, bias_init="torch_default")
            multiple = multiple * self.E.size_multiple // math.gcd(multiple, self.E.size_multiple)
        self.size_multiple = multiple
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
        D = MultiscaleDiscriminator(label_channels(cfg) + cfg.output_nc, cfg.ndf, cfg.d_layers, cfg.norm, cfg.num_D)
        self.D = self.add_network("D", D, bias_init="torch_default")
        d_path = pretrain_path(cfg, "D")
        if cfg.load_pretrain and not (cfg.continue_train or cfg.resume) and os.path.isdir(cfg.load_pretrain):
            if os.path.isfile(d_path):
                self.load_pretrained_discriminator(d_path)
        g_params = list(self.G.trainable_params()) + (list(self.E.trainable_params()) if self.E else [])
        self.opt_G, _ = self.add_optimizer("G", g_params, env)  # (G's gradients are reduced per stage)
        self.g_stages = generator_stages(self.G, self.E, self.opt_G.parameters)
        self.reduce_G_stages = tuple(make_grad_reducer(params, env) for _, params, _ in self.g_stages)
        self.opt_D, self.reduce_D = self.add_optimizer("D", self.D.trainable_params(), env)
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

        Memory: the real image's VGG features are computed with D's real pass, before G runs, so that the real VGG
        pass's buffers are not live with G's activations. G runs stage by stage (``generator_stages``: the layers
        before the residual blocks, each block, the layers after them), each stage under its own
        ``mindspore.vjp``; the backward pass then goes stage by stage, last first, and each stage's parameters get
        their Adam update (``adam_begin`` / ``adam_update``: what ``nn.Adam`` computes, per parameter) before the
        next stage's backward pass starts, so G's gradients are not all held at once. The gradients and the updates
        are those of one backward pass through G and one ``opt_G`` call (tests: the step against separate passes,
        three steps against the PyTorch reference, the staged Adam against ``nn.Adam``).
        """
        cfg, D, E, vgg = self.cfg, self.D, self.E, self.vgg
        gan_loss = multiscale_gan_loss(cfg.gan_mode == "vanilla")
        use_fm, encode, load = not cfg.no_ganFeat_loss, E is not None, loads_features(cfg)
        num_D, n_layers_D, lambda_feat = cfg.num_D, cfg.d_layers, cfg.lambda_feat
        opt_G, opt_D, reduce_D = self.opt_G, self.opt_D, self.reduce_D
        mask = self.global_mask if frozen else tuple(False for _ in self.global_mask)

        def d_real_forward(label, real):
            pred_real = D(ops.cat((label, real), 1))
            loss_real = gan_loss(pred_real, True)
            real_vgg = real if vgg is None else vgg(real)  # (the real image's VGG features, before G's peak)
            return loss_real * 0.5, loss_real, pred_real, real_vgg

        def g_loss(fake, label, real_vgg, pred_real):
            pred_fake = D(ops.cat((label, fake), 1))
            loss_gan = gan_loss(pred_fake, True)
            zero = ops.zeros((), ms.float32)
            loss_fm, loss_vgg = zero, zero
            if use_fm:
                loss_fm = feature_matching_loss(pred_fake, pred_real, num_D, n_layers_D, lambda_feat)
            if vgg is not None:
                loss_vgg = vgg_feature_loss(vgg(fake), real_vgg, lambda_feat)
            return loss_gan + loss_fm + loss_vgg, loss_gan, loss_fm, loss_vgg

        def first_stage(label, real, ids, feat):  # G's input (label [+ E's features]) through G's first stage
            x = ops.stop_gradient(label)  # (no gradient to the data)
            if encode:
                x = ops.cat((x, E(ops.stop_gradient(real), ids, num_segments)), 1)
            elif load:
                x = ops.cat((x, ops.stop_gradient(feat)), 1)
            return run_cells(stage_cells[0], x)

        def d_fake_forward(label, fake):
            loss_fake = gan_loss(D(ops.cat((label, fake), 1)), False)
            return loss_fake * 0.5, loss_fake

        grad_d_real = ms.value_and_grad(d_real_forward, None, opt_D.parameters, has_aux=True)
        grad_g_loss = ms.value_and_grad(g_loss, 0, None, has_aux=True)
        stage_cells = tuple(cells for cells, _, _ in self.g_stages)
        stage_params = tuple(params for _, params, _ in self.g_stages)
        stage_indices = tuple(indices for _, _, indices in self.g_stages)
        stage_masks = tuple(tuple(mask[i] for i in indices) for indices in stage_indices)
        stage_functions = tuple(chain(cells) for cells in stage_cells)
        reducers = self.reduce_G_stages
        grad_d_fake = ms.value_and_grad(d_fake_forward, None, opt_D.parameters, has_aux=True)

        def masker(mask):  # zeroes the gradients of the parameters ``mask`` marks (one function per stage)
            def apply(grads):
                out = ()
                for i in range(len(mask)):
                    if mask[i]:
                        out = out + (ops.zeros_like(grads[i]),)
                    else:
                        out = out + (grads[i],)
                return out

            return apply

        stage_maskers = tuple(masker(m) for m in stage_masks)

        trim = HeapTrim() if str(cfg.device_target).upper() == "CPU" else None

        def step(label, real, ids, feat):
            if trim is not None:  # (a Python op: CPU only)
                label = trim(label)
            (_, loss_real, pred_real, real_vgg), grads_real = grad_d_real(label, real)

            # G forward stage by stage, keeping each stage's backward function
            fake, back = ms.vjp(first_stage, label, real, ids, feat, weights=stage_params[0])
            backs = [back]
            for k in range(1, len(stage_cells)):
                fake, back = ms.vjp(stage_functions[k], fake, weights=stage_params[k])
                backs.append(back)
            (loss_g, loss_gan, loss_fm, loss_vgg), grad = grad_g_loss(fake, label, real_vgg, pred_real)
            # backward stage by stage, last first; each stage's parameters are updated (and its gradients freed)
            # before the next stage's backward pass runs
            powers = adam_begin(opt_G)
            for k in range(len(stage_cells) - 1, -1, -1):
                grad, grads = backs[k](grad)
                grad = grad[0]
                if frozen:
                    grads = stage_maskers[k](grads)
                grad = ops.depend(grad, adam_update(opt_G, stage_indices[k], reducers[k](grads), powers))
            loss_g = ops.depend(loss_g, grad)
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
        batch = {"input": np.stack(inputs), "image": images, "segments": np.stack(segs)}
        if loads_features(self.cfg):
            batch["features"] = rng.uniform(-1, 1, (batch_size, self.cfg.feat_num, height, width)).astype(np.float32)
        batch["index"] = index
        return batch

    def train_step(self, batch):
        """One G (+E) and one D update on a batch ``{"input", "image", "segments"[, "features"], "index"}``; returns
        the named losses."""
        label, real = ms.Tensor(batch["input"]), ms.Tensor(batch["image"])
        if self.E is not None:
            ids, num_segments = F.segment_ids(batch["segments"])
        else:
            ids, num_segments = np.zeros((1,), np.int32), 0
        feat = np.asarray(batch["features"], np.float32) if loads_features(self.cfg) else np.zeros((1,), np.float32)
        key = (num_segments, self.frozen_global)
        if key not in self._steps:
            self._steps[key] = self._build_step(num_segments, self.frozen_global)
        losses = self._steps[key](label, real, ms.Tensor(ids), ms.Tensor(feat))
        wait_for_step(losses[4])  # D_fake: depends on D's update, the step's last
        return {k: float(v.asnumpy()) for k, v in zip(self.loss_names, losses)}
