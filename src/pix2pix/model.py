"""pix2pix: U-Net generator + PatchGAN discriminator trained with a conditional GAN loss + L1.

One training step does what the reference does, with the generator run once:
1. ``fake = G(A)`` (forward once, keeping its backward with :func:`mindspore.vjp`);
2. D is updated on ``(A, B)`` as real and ``(A, stop_gradient(fake))`` as fake, loss x ``lambda_dis`` (0.5);
3. G is updated against the *updated* D through the same ``fake``: GAN loss x ``lambda_gan`` + L1 x ``lambda_l1``.
The whole step is one ``mindspore.jit`` graph.
"""

import mindspore as ms
from mindspore import ops

from src.common.discriminators import make_discriminator
from src.common.losses import l1_loss, make_gan_loss
from src.common.tensors import wait_for_step
from src.common.unet import UnetGenerator, check_unet_size
from src.model_base import GANModel


def build_generator(cfg):
    """The U-Net generator of a config (also used by eval and export)."""
    return UnetGenerator(cfg.input_nc, cfg.output_nc, cfg.g_layers, cfg.ngf, cfg.norm, cfg.use_dropout, cfg.alpha)


def build_discriminator(cfg):
    return make_discriminator(cfg.netD, cfg.input_nc + cfg.output_nc, cfg.ndf, cfg.d_layers, cfg.norm, cfg.alpha)


class Pix2PixModel(GANModel):
    """The pix2pix model: networks ``G`` and ``D``, their optimisers, a jit-compiled train step and ``generate``."""

    name = "pix2pix"
    loss_names = ("D_real", "D_fake", "G_GAN", "G_L1")

    def __init__(self, cfg, env=None, training=True):
        if cfg.preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
            check_unet_size(cfg.g_layers, cfg.crop_size, cfg.crop_size)
        self.cfg = cfg
        self.networks, self.optimizers = {}, {}
        self.G = self.add_network("G", build_generator(cfg))
        self.size_multiple = self.G.size_multiple
        if not training:
            return
        self.D = self.add_network("D", build_discriminator(cfg))
        self.opt_G, self.reduce_G = self.add_optimizer("G", self.G.trainable_params(), env)
        self.opt_D, self.reduce_D = self.add_optimizer("D", self.D.trainable_params(), env)
        self._step = self._build_step()
        if cfg.jit:
            self._step = ms.jit(self._step)

    # ----- training
    def _build_step(self):
        cfg, G, D = self.cfg, self.G, self.D
        gan_loss = make_gan_loss(cfg.gan_mode)
        lambda_dis, lambda_gan, lambda_l1 = cfg.lambda_dis, cfg.lambda_gan, cfg.lambda_l1
        opt_G, opt_D, reduce_G, reduce_D = self.opt_G, self.opt_D, self.reduce_G, self.reduce_D

        def d_forward(real_a, real_b, fake_b):
            fake_ab = ops.cat((real_a, fake_b), 1)
            real_ab = ops.cat((real_a, real_b), 1)
            loss_fake = gan_loss(D(fake_ab), False)
            loss_real = gan_loss(D(real_ab), True)
            loss = (loss_fake + loss_real) * lambda_dis
            return loss, loss_real, loss_fake

        def g_head(fake_b, real_a, real_b):
            loss_gan = gan_loss(D(ops.cat((real_a, fake_b), 1)), True) * lambda_gan
            loss_l1 = l1_loss(fake_b, real_b) * lambda_l1
            return loss_gan + loss_l1, loss_gan, loss_l1

        grad_d = ms.value_and_grad(d_forward, None, opt_D.parameters, has_aux=True)
        grad_head = ms.value_and_grad(g_head, 0, None, has_aux=True)
        g_weights = opt_G.parameters

        def step(real_a, real_b):
            fake_b, g_vjp = ms.vjp(G, real_a, weights=g_weights)
            (loss_d, loss_real, loss_fake), grads_d = grad_d(real_a, real_b, ops.stop_gradient(fake_b))
            loss_d = ops.depend(loss_d, opt_D(reduce_D(grads_d)))
            loss_real = ops.depend(loss_real, loss_d)
            (loss_g, loss_gan, loss_l1), d_fake = grad_head(fake_b, real_a, real_b)
            _, grads_g = g_vjp(d_fake)
            loss_g = ops.depend(loss_g, opt_G(reduce_G(grads_g)))
            loss_gan = ops.depend(loss_gan, loss_g)
            return loss_real, loss_fake, loss_gan, loss_l1

        return step

    @staticmethod
    def make_source(cfg, phase, training=True):
        """The paired dataset of ``phase``; at test time images are only resized to ``crop_size`` (no crop, no flip)."""
        from src.dataset.aligned import AlignedDataset

        return AlignedDataset(
            cfg.dataroot,
            phase,
            direction=cfg.direction,
            preprocess=cfg.preprocess,
            load_size=cfg.load_size if training else cfg.crop_size,
            crop_size=cfg.crop_size,
            no_flip=cfg.no_flip or not training,
            input_nc=cfg.input_nc,
            output_nc=cfg.output_nc,
            size_multiple=2**cfg.g_layers,
            max_dataset_size=cfg.max_dataset_size or None,
        )

    def train_step(self, batch):
        """One D and one G update on a batch ``{"input", "target", "index"}``; returns the named losses as floats."""
        real_a, real_b = ms.Tensor(batch["input"]), ms.Tensor(batch["target"])
        losses = self._step(real_a, real_b)
        wait_for_step(losses[2])  # G's loss: the step's last output
        return {k: float(v.asnumpy()) for k, v in zip(self.loss_names, losses)}

    # ----- inference
    def set_test_mode(self, test_mode):
        """``paper``: dropout on and batch statistics, as the pix2pix paper tests; ``eval``: deterministic."""
        self.G.set_train(test_mode == "paper")

    def generate(self, real_a):
        """Translate a batch of inputs (NCHW, [-1, 1]); returns a NumPy array of the same layout."""
        return self.run_network("G", real_a)

    def visuals(self, batch):
        """Images for sample grids: input, output, target (NCHW in [-1, 1])."""
        fake = self.generate(batch["input"])
        return [batch["input"], fake, batch["target"]]
