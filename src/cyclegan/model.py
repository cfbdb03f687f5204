"""CycleGAN: two generators (G_A: A -> B, G_B: B -> A), two PatchGAN discriminators (D_A judges domain B, D_B domain
A), LSGAN (or vanilla) adversarial losses, cycle-consistency and identity losses, image pools; optionally knowledge
distillation from a frozen teacher pair into narrower students.

One training step follows the reference's ``optimize_parameters``:

1. G step (one ``mindspore.jit`` graph): ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, ``fake_A = G_B(B)``,
   ``rec_B = G_A(fake_A)``; loss = GAN(D_A(fake_B)) + GAN(D_B(fake_A)) + lambda_A |rec_A - A| + lambda_B |rec_B - B|
   + identity (lambda_idt * (lambda_B |G_A(B) - B| + lambda_A |G_B(A) - A|)) [+ lambda_kd |G(x) - teacher(x)| per
   direction]; G_A and G_B are updated together by one Adam. The fakes (made before the update) are returned.
2. On the host, each fake batch goes through its image pool.
3. D step (a second jit graph): D_A on real B vs pooled fake B, D_B on real A vs pooled fake A, each x ``lambda_dis``
   (0.5); D_A and D_B are updated together by one Adam.
"""

import os

import mindspore as ms
from mindspore import ops

from src.common import checkpoint as ckpt
from src.common.discriminators import make_discriminator
from src.common.eval_sets import EvalSet
from src.common.init import count_params
from src.common.layers import set_export_friendly
from src.common.losses import l1_loss, make_gan_loss
from src.common.optim import add_grads
from src.common.tensors import wait_for_step
from src.common.unet import UnetGenerator, check_unet_size
from src.cyclegan.macs import count_macs, format_count
from src.cyclegan.pool import ImagePool
from src.cyclegan.resnet import SIZE_MULTIPLE, ResnetGenerator, check_resnet_size
from src.errors import UserError
from src.model_base import GANModel, example_image

NET_GS = ("resnet", "unet")
CROP_MODES = ("resize_and_crop", "crop", "scale_width_and_crop")


def build_generator(netG, input_nc, output_nc, ngf, layers, norm, use_dropout, pad_mode="REFLECT", alpha=0.2):
    """A CycleGAN generator: ``resnet`` with ``layers`` residual blocks, or ``unet`` with ``layers`` levels."""
    if netG == "resnet":
        return ResnetGenerator(input_nc, output_nc, ngf, layers, norm, use_dropout, pad_mode)
    if netG == "unet":
        return UnetGenerator(input_nc, output_nc, layers, ngf, norm, use_dropout, alpha)
    raise UserError(f"unknown netG '{netG}'; valid generators are: {', '.join(NET_GS)}")


def size_multiple_of(netG, layers):
    return SIZE_MULTIPLE if netG == "resnet" else 2**layers


def check_generator_size(netG, layers, height, width, pad_mode="REFLECT", what="crop_size"):
    """A clear error when the image size does not fit the generator (U-Net depth, ResNet multiple of 4)."""
    if netG == "unet":
        check_unet_size(layers, height, width, what)
    else:
        check_resnet_size(height, width, pad_mode, what)


def _generator(cfg, input_nc, output_nc, teacher=False):
    if teacher:
        return build_generator(
            cfg.netG, input_nc, output_nc, cfg.t_ngf, cfg.t_g_layers, cfg.t_norm, cfg.use_dropout, cfg.pad_mode,
            cfg.t_alpha,
        )  # fmt: skip
    return build_generator(
        cfg.netG, input_nc, output_nc, cfg.ngf, cfg.g_layers, cfg.norm, cfg.use_dropout, cfg.pad_mode, cfg.alpha
    )


def validate_config(cfg, training=True):
    """Every config mistake that would otherwise surface as a shape error deep inside MindSpore."""
    if cfg.netG not in NET_GS:
        raise UserError(f"unknown netG '{cfg.netG}'; valid generators are: {', '.join(NET_GS)}")
    if training and cfg.lambda_idt > 0 and cfg.input_nc != cfg.output_nc:
        raise UserError(
            f"the identity loss (lambda_idt {cfg.lambda_idt}) needs input_nc == output_nc, got {cfg.input_nc} and "
            f"{cfg.output_nc}; set lambda_idt 0"
        )
    if cfg.pool_size < 0:
        raise UserError(f"pool_size must be 0 (no pool) or more, got {cfg.pool_size}")
    if cfg.preprocess in CROP_MODES:
        check_generator_size(cfg.netG, cfg.g_layers, cfg.crop_size, cfg.crop_size, cfg.pad_mode)
        if cfg.kd and training:
            check_generator_size(cfg.netG, cfg.t_g_layers, cfg.crop_size, cfg.crop_size, cfg.pad_mode)
    if cfg.kd and training:
        if not cfg.GT_A_ckpt or not cfg.GT_B_ckpt:
            raise UserError(
                "--kd True needs the teacher's generators: pass --GT_A_ckpt TEACHER_RUN/G_A_latest.ckpt and "
                "--GT_B_ckpt TEACHER_RUN/G_B_latest.ckpt"
            )
        if cfg.ngf * 2 != cfg.t_ngf and cfg.ngf * 4 != cfg.t_ngf:
            raise UserError(
                f"the student's ngf must be 1/2 or 1/4 of the teacher's t_ngf {cfg.t_ngf}, got ngf {cfg.ngf}; use "
                f"--ngf {cfg.t_ngf // 2} or --ngf {cfg.t_ngf // 4} (and t_ngf = the teacher run's ngf)"
            )
        for path in (cfg.GT_A_ckpt, cfg.GT_B_ckpt):
            if not os.path.isfile(path):
                raise UserError(f"teacher checkpoint not found: {path}")


class CycleGANModel(GANModel):
    """The CycleGAN model (see the module docstring); ``networks`` are ``G_A``, ``G_B`` (+ ``D_A``, ``D_B``)."""

    name = "cyclegan"
    input_column = "A"

    def __init__(self, cfg, env=None, training=True, log=print):
        validate_config(cfg, training)
        self.cfg, self.log = cfg, log
        self.kd = bool(cfg.kd) and training
        self.loss_names = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
        if self.kd:
            self.loss_names += ("kd_A", "kd_B")
        self.networks, self.optimizers = {}, {}
        self.G_A = self.add_network("G_A", _generator(cfg, cfg.input_nc, cfg.output_nc))
        self.G_B = self.add_network("G_B", _generator(cfg, cfg.output_nc, cfg.input_nc))
        self.size_multiple = self.G_A.size_multiple
        self.primary = "G_A"  # the generator used by generate() (eval --ckpt G_B_... selects G_B)
        self.loaded = ("G_A", "G_B")
        if not training:
            return
        self.D_A = self.add_network("D_A", self._discriminator(cfg.output_nc))  # judges domain B: real vs fake B
        self.D_B = self.add_network("D_B", self._discriminator(cfg.input_nc))
        if self.kd:
            self.T_A = self._load_teacher(cfg.GT_A_ckpt, "G_A", cfg.input_nc, cfg.output_nc)
            self.T_B = self._load_teacher(cfg.GT_B_ckpt, "G_B", cfg.output_nc, cfg.input_nc)
            self._report_kd()
        g_params = self.G_A.trainable_params() + self.G_B.trainable_params()
        d_params = self.D_A.trainable_params() + self.D_B.trainable_params()
        self.opt_G, self.reduce_G = self.add_optimizer("G", g_params, env)
        self.opt_D, self.reduce_D = self.add_optimizer("D", d_params, env)
        # the pools' draws come from (seed, pool, query number): a resumed run makes the same draws
        self.pool_A = ImagePool(cfg.pool_size, int(cfg.seed), stream=1)  # fake A images, for D_B
        self.pool_B = ImagePool(cfg.pool_size, int(cfg.seed), stream=2)  # fake B images, for D_A
        self._g_step, self._d_step = self._build_steps()
        if cfg.jit:
            self._g_step, self._d_step = ms.jit(self._g_step), ms.jit(self._d_step)

    # ----- construction
    def _discriminator(self, input_nc):
        cfg = self.cfg
        return make_discriminator(cfg.netD, input_nc, cfg.ndf, cfg.d_layers, cfg.norm, cfg.alpha)

    def _load_teacher(self, path, network, input_nc, output_nc):
        """The frozen teacher for ``network`` (``G_A``/``G_B``) from a CycleGAN generator checkpoint."""
        cfg, name = self.cfg, "T_" + network[-1]
        net = _generator(cfg, input_nc, output_nc, teacher=True)
        net.update_parameters_name(f"{name}.")
        params = ckpt.read_checkpoint(path)
        meta = ckpt.read_meta(path, params)
        if meta and (meta.get("model") != "cyclegan" or meta.get("network") != network):
            raise UserError(
                f"teacher checkpoint {path} holds {meta.get('model')} network '{meta.get('network')}', but the "
                f"teacher {network} is needed here; pass TEACHER_RUN/{network}_latest.ckpt"
            )
        prefix = f"{network}."
        renamed = {f"{name}.{k[len(prefix) :]}": v for k, v in params.items() if k.startswith(prefix)}
        try:
            ckpt.load_into(net, renamed, path, f"the teacher {network}")
        except UserError as err:
            detail = str(err).split(": ", 1)[-1].split(". Check", 1)[0]
            raise UserError(
                f"teacher checkpoint {path} does not match the teacher settings (netG {cfg.netG}, t_ngf {cfg.t_ngf}, "
                f"t_g_layers {cfg.t_g_layers}, t_norm {cfg.t_norm}): {detail}; set t_ngf/t_g_layers/t_norm "
                f"to the teacher run's ngf/g_layers/norm"
            ) from None
        for p in net.get_parameters():
            p.requires_grad = False
        net.set_train(False)  # inference mode: no dropout, running statistics
        return net

    def example_batch(self, batch_size, height, width, seed=0):
        """A random training batch ``{"A", "B", "index"}`` (the default's draws, under the domains' names)."""
        batch = super().example_batch(batch_size, height, width, seed)
        return {"A": batch["input"], "B": batch["target"], "index": batch["index"]}

    def complexity(self, image_size=None):
        """Parameters and MACs (one image of ``image_size``) of a generator, and of the teacher when distilling."""
        size = image_size or self.cfg.crop_size
        shape = (1, self.cfg.input_nc, size, size)
        out = {"G_params": count_params(self.G_A), "G_MACs": count_macs(self.G_A, shape)}
        if self.kd:
            out.update(T_params=count_params(self.T_A, trainable_only=False), T_MACs=count_macs(self.T_A, shape))
        return out

    def _report_kd(self):
        c = self.complexity()
        size = self.cfg.crop_size
        self.log(
            f"knowledge distillation at {size}x{size}: teacher (t_ngf {self.cfg.t_ngf}) {c['T_params']:,} parameters, "
            f"{format_count(c['T_MACs'])}MACs per generator; student (ngf {self.cfg.ngf}) {c['G_params']:,} "
            f"parameters, {format_count(c['G_MACs'])}MACs ({c['T_MACs'] / c['G_MACs']:.1f}x fewer MACs, "
            f"{c['T_params'] / c['G_params']:.1f}x fewer parameters)"
        )

    # ----- training
    def _build_steps(self):
        cfg = self.cfg
        G_A, G_B, D_A, D_B = self.G_A, self.G_B, self.D_A, self.D_B
        gan_loss = make_gan_loss(cfg.gan_mode)
        lambda_a, lambda_b, lambda_idt = float(cfg.lambda_A), float(cfg.lambda_B), float(cfg.lambda_idt)
        lambda_dis, lambda_kd = float(cfg.lambda_dis), float(cfg.lambda_kd)
        opt_G, opt_D, reduce_G, reduce_D = self.opt_G, self.opt_D, self.reduce_G, self.reduce_D

        # Loss terms that may be off are chosen here, at build time: the compiled graphs hold no branches.
        #
        # The G loss is a sum of three independent groups: the A cycle (G_A then G_B, D_A, KD of G_A), the B cycle
        # (G_B then G_A, D_B, KD of G_B) and the identity terms. Its gradient is taken as the sum of the three
        # groups' gradients, in one compiled graph: the same function as one backward pass of the whole sum (a test
        # compares the two), but each group's backward runs right after its forward, which on the CPU took the
        # resnet_9blocks step at 256x256 from 27 s to 17 s (one backward pass over all six generator passes keeps
        # every activation alive at once).
        zero = ops.zeros((), ms.float32)

        if lambda_idt > 0:

            def identity_forward(real_a, real_b):
                loss_idt_a = l1_loss(G_A(real_b), real_b) * (lambda_b * lambda_idt)
                loss_idt_b = l1_loss(G_B(real_a), real_a) * (lambda_a * lambda_idt)
                return loss_idt_a + loss_idt_b, loss_idt_a, loss_idt_b

        if self.kd:
            T_A, T_B = self.T_A, self.T_B

            def distill_a(real_a, fake_b):
                return l1_loss(fake_b, ops.stop_gradient(T_A(real_a))) * lambda_kd

            def distill_b(real_b, fake_a):
                return l1_loss(fake_a, ops.stop_gradient(T_B(real_b))) * lambda_kd
        else:

            def distill_a(real_a, fake_b):
                return zero

            def distill_b(real_b, fake_a):
                return zero

        def cycle_a_forward(real_a):
            fake_b = G_A(real_a)
            loss_g_a = gan_loss(D_A(fake_b), True)
            loss_cycle_a = l1_loss(G_B(fake_b), real_a) * lambda_a
            loss_kd_a = distill_a(real_a, fake_b)
            return loss_g_a + loss_cycle_a + loss_kd_a, loss_g_a, loss_cycle_a, loss_kd_a, fake_b

        def cycle_b_forward(real_b):
            fake_a = G_B(real_b)
            loss_g_b = gan_loss(D_B(fake_a), True)
            loss_cycle_b = l1_loss(G_A(fake_a), real_b) * lambda_b
            loss_kd_b = distill_b(real_b, fake_a)
            return loss_g_b + loss_cycle_b + loss_kd_b, loss_g_b, loss_cycle_b, loss_kd_b, fake_a

        grad_cycle_a = ms.value_and_grad(cycle_a_forward, None, opt_G.parameters, has_aux=True)
        grad_cycle_b = ms.value_and_grad(cycle_b_forward, None, opt_G.parameters, has_aux=True)

        if lambda_idt > 0:
            grad_identity_terms = ms.value_and_grad(identity_forward, None, opt_G.parameters, has_aux=True)

            def identity_grads(real_a, real_b, grads):
                (_, loss_idt_a, loss_idt_b), grads_idt = grad_identity_terms(real_a, real_b)
                return loss_idt_a, loss_idt_b, add_grads(grads, grads_idt)
        else:

            def identity_grads(real_a, real_b, grads):
                return zero, zero, grads

        def d_forward(real_a, real_b, pooled_fake_b, pooled_fake_a):
            loss_d_a = (gan_loss(D_A(real_b), True) + gan_loss(D_A(pooled_fake_b), False)) * lambda_dis
            loss_d_b = (gan_loss(D_B(real_a), True) + gan_loss(D_B(pooled_fake_a), False)) * lambda_dis
            return loss_d_a + loss_d_b, loss_d_a, loss_d_b

        grad_d = ms.value_and_grad(d_forward, None, opt_D.parameters, has_aux=True)

        def g_step(real_a, real_b):
            (loss_a, loss_g_a, loss_cycle_a, loss_kd_a, fake_b), grads = grad_cycle_a(real_a)
            (loss_b, loss_g_b, loss_cycle_b, loss_kd_b, fake_a), grads_b = grad_cycle_b(real_b)
            loss_idt_a, loss_idt_b, grads = identity_grads(real_a, real_b, add_grads(grads, grads_b))
            loss = loss_a + loss_b + loss_idt_a + loss_idt_b
            loss = ops.depend(loss, opt_G(reduce_G(grads)))
            fake_b = ops.depend(fake_b, loss)
            losses = (loss_g_a, loss_cycle_a, loss_idt_a, loss_g_b, loss_cycle_b, loss_idt_b, loss_kd_a, loss_kd_b)
            return loss, losses, fake_b, fake_a

        def d_step(real_a, real_b, pooled_fake_b, pooled_fake_a):
            (loss, loss_d_a, loss_d_b), grads = grad_d(real_a, real_b, pooled_fake_b, pooled_fake_a)
            loss = ops.depend(loss, opt_D(reduce_D(grads)))
            loss_d_a = ops.depend(loss_d_a, loss)
            return loss_d_a, loss_d_b

        return g_step, d_step

    @staticmethod
    def make_source(cfg, phase, training=True):
        """The unpaired dataset of ``phase`` (``phase``A/ and ``phase``B/); at test time images are only resized."""
        from src.dataset.unaligned import UnalignedDataset

        return UnalignedDataset(
            cfg.dataroot,
            phase,
            direction=cfg.direction,
            preprocess=cfg.preprocess,
            load_size=cfg.load_size if training else cfg.crop_size,
            crop_size=cfg.crop_size,
            no_flip=cfg.no_flip or not training,
            input_nc=cfg.input_nc,
            output_nc=cfg.output_nc,
            size_multiple=size_multiple_of(cfg.netG, cfg.g_layers),
            max_dataset_size=cfg.max_dataset_size or None,
            random_b=bool(cfg.shuffle) and training,
        )

    def train_step(self, batch):
        """One G update (G_A and G_B), then one D update (D_A and D_B) on pooled fakes; returns the named losses."""
        real_a, real_b = ms.Tensor(batch["A"]), ms.Tensor(batch["B"])
        done, g_losses, fake_b, fake_a = self._g_step(real_a, real_b)
        wait_for_step(done)  # the scalar that depends on G's update; read before the fakes (see wait_for_step)
        pooled_b = self.pool_B.query(fake_b.asnumpy())
        pooled_a = self.pool_A.query(fake_a.asnumpy())
        loss_d_a, loss_d_b = self._d_step(real_a, real_b, ms.Tensor(pooled_b), ms.Tensor(pooled_a))
        g = [float(v.asnumpy()) for v in g_losses]
        losses = dict(
            D_A=float(loss_d_a.asnumpy()), G_A=g[0], cycle_A=g[1], idt_A=g[2],
            D_B=float(loss_d_b.asnumpy()), G_B=g[3], cycle_B=g[4], idt_B=g[5],
        )  # fmt: skip
        if self.kd:
            losses.update(kd_A=g[6], kd_B=g[7])
        return losses

    # ----- resume extras: the image pools (content and RNG position)
    def extra_state(self):
        state = self.pool_A.state("pool_fake_A")
        state.update(self.pool_B.state("pool_fake_B"))
        return state

    def load_extra_state(self, extras):
        self.pool_A.load_state(extras, "pool_fake_A")
        self.pool_B.load_state(extras, "pool_fake_B")

    # ----- inference
    def set_test_mode(self, test_mode):
        """``eval`` (the CycleGAN default): dropout off; ``paper``: dropout on (as pix2pix tests)."""
        for name in ("G_A", "G_B"):
            self.networks[name].set_train(test_mode == "paper")

    def generate(self, real, network=None):
        """Translate a batch (NCHW, [-1, 1]) with ``network`` (default: the selected generator, G_A unless eval
        was given a G_B checkpoint); returns a NumPy array."""
        return self.run_network(network or self.primary, real)

    def visuals(self, batch):
        """real A, fake B, reconstructed A, real B, fake A, reconstructed B (NCHW in [-1, 1]) of ``{"A", "B"}``."""
        real_a, real_b = batch["A"], batch["B"]
        fake_b = self.generate(real_a, "G_A")
        fake_a = self.generate(real_b, "G_B")
        return [real_a, fake_b, self.generate(fake_b, "G_B"), real_b, fake_a, self.generate(fake_a, "G_A")]

    # ----- eval.py / export.py hooks
    def prepare_eval(self, ckpt_path, network, log=print):
        """After eval/export loaded ``network`` from ``ckpt_path``: select it and load its partner generator from the
        file next to it (``G_A_latest.ckpt`` <-> ``G_B_latest.ckpt``) when present."""
        other = "G_B" if network == "G_A" else "G_A"
        folder, base = os.path.split(os.path.abspath(ckpt_path))
        other_path = os.path.join(folder, base.replace(network, other, 1)) if network in base else ""
        self.primary, self.loaded = network, (network,)
        if other_path and os.path.isfile(other_path):
            ckpt.load_network(self.networks[other], other_path, self.name, other)
            self.loaded = ("G_A", "G_B")
            log(f"also loaded {other} from {other_path}")
        else:
            log(f"no {other} checkpoint next to {ckpt_path}: only {network} is used")

    def _sides(self, network):
        """(input side, output side) folder letters of a generator, given the configured direction."""
        a, b = ("A", "B") if self.cfg.direction == "AtoB" else ("B", "A")
        return (a, b) if network == "G_A" else (b, a)

    def eval_sets(self, cfg, phase):
        """One evaluation set per loaded generator: its input folder, translated; targets where the other folder
        holds an image of the same name (e.g. paired test scenes), else none."""
        sets = []
        for network in ("G_A", "G_B"):
            if network not in self.loaded:
                continue
            side_in, side_out = self._sides(network)
            nc_in, nc_out = (cfg.input_nc, cfg.output_nc) if network == "G_A" else (cfg.output_nc, cfg.input_nc)
            sets.append(
                _DirectionEvalSet(
                    cfg, phase, side_in, side_out, nc_in, nc_out, self.size_multiple,
                    lambda x, n=network: self.generate(x, n),
                )
            )  # fmt: skip
        return sets

    def export_graphs(self, ckpt_path, network):
        """``(default file base, [(suffix, net, example inputs), ...])``: ``NAME_AtoB`` for G_A, ``NAME_BtoA`` for
        G_B; the default base is the checkpoint's path with the network name replaced by ``G``."""
        folder, base = os.path.split(os.path.splitext(os.path.abspath(ckpt_path))[0])
        default = os.path.join(folder, base.replace(network, "G", 1) if network in base else base)
        nets = []
        for name in ("G_A", "G_B"):
            if name in self.loaded:
                side_in, side_out = self._sides(name)
                in_nc = self.cfg.input_nc if name == "G_A" else self.cfg.output_nc
                net = set_export_friendly(self.networks[name])  # MirrorPad has no ONNX exporter
                nets.append((f"_{side_in}to{side_out}", net, (example_image(self.cfg, in_nc),)))
        return default, nets


class _DirectionEvalSet(EvalSet):
    """The test images of one direction, with paired targets where names match."""

    def __init__(self, cfg, phase, side_in, side_out, nc_in, nc_out, size_multiple, generate):
        from src.dataset.unaligned import ImageFolderDataset, domain_folder

        common = dict(preprocess=cfg.preprocess, load_size=cfg.crop_size, crop_size=cfg.crop_size, no_flip=True,
                      size_multiple=size_multiple)  # fmt: skip
        self.generate = generate
        self.source = ImageFolderDataset(
            domain_folder(cfg.dataroot, phase, side_in), channels=nc_in, what=f"{phase}{side_in} images",
            max_dataset_size=cfg.max_eval_images or None, **common,
        )  # fmt: skip
        super().__init__(self.source.names, cfg.seed)
        self.tag = f"{side_in}to{side_out}"
        self.targets, self._target_index = None, {}
        folder_out = domain_folder(cfg.dataroot, phase, side_out)
        if os.path.isdir(folder_out):
            try:
                targets = ImageFolderDataset(
                    folder_out, channels=nc_out, verify=False, what=f"{phase}{side_out}", **common
                )
            except UserError:
                targets = None
            if targets is not None:
                self.targets = targets
                index = {n: i for i, n in enumerate(targets.names)}
                self._target_index = {i: index[n] for i, n in enumerate(self.names) if n in index}

    def __len__(self):
        return len(self.source)

    def translate(self, index):
        rng = self.rng(index)
        real = self.source.load(index, rng)
        j = self._target_index.get(index)
        target = None if j is None else self.targets.load(j, rng)
        return real, self.generate(real[None])[0], target
