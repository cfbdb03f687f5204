"""What every GAN model of this repository does the same way (see docs/architecture.md, "The model contract").

:class:`GANModel` implements the verbs that the trainer, eval.py and export.py call, with pix2pix's behaviour as the
default; a model overrides only what it does differently.
"""

import os

import mindspore as ms
import numpy as np

from src.common.eval_sets import PairedEvalSet, pad_to_multiple
from src.common.fast_conv import forward_only
from src.common.init import count_params, init_weights
from src.common.optim import get_learning_rate, linear_decay_lr, make_adam, make_grad_reducer, set_learning_rate


class GANModel:
    """Defaults shared by the models: train mode for all networks, one learning rate for all optimisers, no extras,
    one paired eval set, images translated at their own size.

    A model sets ``cfg``, ``networks`` (name -> Cell), ``optimizers`` (name -> optimiser made by ``make_adam``),
    ``opt_G`` and ``size_multiple``, and implements ``make_source``, ``train_step`` and ``generate``.

    Batches are dicts keyed by the source's ``columns``; ``input_column`` names the one ``generate`` takes.
    """

    input_column = "input"

    def set_train(self, mode=True):
        for net in self.networks.values():
            net.set_train(mode)

    def add_network(self, name, net, bias_init="zeros"):
        """Initialise ``net`` with the config's ``init_type``/``init_gain`` (biases: ``bias_init``), prefix its
        parameter names with ``name.`` and register it in ``networks``; returns it."""
        init_weights(net, self.cfg.init_type, self.cfg.init_gain, bias_init=bias_init)
        net.update_parameters_name(f"{name}.")
        self.__dict__.setdefault("networks", {})[name] = net
        return net

    def add_optimizer(self, name, params, env):
        """Adam over ``params`` with the config's learning rate and betas (scalar state named ``opt_<name>.*``),
        registered in ``optimizers``, and its gradient reducer (the identity on one device). Returns both."""
        cfg = self.cfg
        opt = make_adam(params, cfg.lr, cfg.beta1, cfg.beta2, f"opt_{name}")
        self.optimizers[name] = opt
        return opt, make_grad_reducer(opt.parameters, env)

    def run_network(self, name, x):
        """``networks[name](x)`` on a NumPy batch, compiled once per network (``cfg.jit``); returns NumPy."""
        compiled = self.__dict__.setdefault("_compiled", {})
        if name not in compiled:
            net = self.networks[name]

            def forward(batch):
                return net(batch)

            compiled[name] = ms.jit(forward) if self.cfg.jit else forward
        with forward_only(self.networks[name]):  # no gradient here: forms without one may be used
            return compiled[name](ms.Tensor(np.asarray(x, np.float32))).asnumpy()

    def describe(self):
        """Trainable parameters per network, for the log."""
        return {name: count_params(net) for name, net in self.networks.items()}

    def set_learning_rate(self, lr):
        for opt in self.optimizers.values():
            set_learning_rate(opt, lr)

    def learning_rate_at(self, epoch):
        """The learning rate of ``epoch`` (1-based): junyanz's linear decay (pix2pixHD overrides it with NVIDIA's)."""
        cfg = self.cfg
        return linear_decay_lr(cfg.lr, epoch, cfg.n_epochs, cfg.n_epochs_decay)

    def learning_rate(self):
        return get_learning_rate(self.opt_G)

    # ----- resume extras: NumPy arrays saved in resume.ckpt (CycleGAN keeps its image pools here)
    def extra_state(self):
        return {}

    def load_extra_state(self, extras):
        return None

    def on_epoch_start(self, epoch):
        """Called by the trainer before each epoch, after the learning rate is set (pix2pixHD freezes its global
        generator here for ``niter_fix_global`` epochs). Nothing by default."""
        return None

    # ----- benchmark.py
    def example_batch(self, batch_size, height, width, seed=0):
        """A random training batch of the model's layout: ``{"input", "target", "index"}`` by default."""
        rng = np.random.default_rng(seed)
        return {
            "input": rng.uniform(-1, 1, (batch_size, self.cfg.input_nc, height, width)).astype(np.float32),
            "target": rng.uniform(-1, 1, (batch_size, self.cfg.output_nc, height, width)).astype(np.float32),
            "index": np.arange(batch_size, dtype=np.int32),
        }

    def complexity(self, image_size=None):
        """Parameters and MACs printed beside the benchmark line (CycleGAN: its generator and teacher); none by
        default."""
        return {}

    # ----- the eval protocol (eval.py, export.py)
    def prepare_eval(self, ckpt_path, network, log=print):
        """After eval/export loaded ``network`` from ``ckpt_path``: load what else inference needs (CycleGAN: the
        partner generator; pix2pixHD: the encoder and feature clusters). Nothing by default."""
        return None

    def eval_sets(self, cfg, phase):
        """The :class:`~src.common.eval_sets.EvalSet` list eval.py translates: by default the paired split."""
        return [PairedEvalSet(self.make_source(cfg, phase, training=False), self.generate, cfg.seed)]

    def translate_file(self, path):
        """``eval.py --input``: one image file at its own size -> (input as shown, output), CHW in [-1, 1].

        The image is mirror-padded to the generator's multiple, translated and cropped back."""
        from src.dataset.image_io import load_image, to_tensor_array

        arr, (h, w) = pad_to_multiple(to_tensor_array(load_image(path, self.cfg.input_nc)), self.size_multiple)
        return arr[:, :h, :w], self.generate(arr[None])[0][:, :h, :w]

    def export_graphs(self, ckpt_path, network):
        """``(file base, [(suffix, network, example inputs), ...])`` for export.py, the inputs a tuple of arrays.

        By default the loaded generator on one random image batch of ``export_size`` (``crop_size`` when 0), written
        next to the checkpoint."""
        x = example_image(self.cfg, self.cfg.input_nc)
        return os.path.splitext(os.path.abspath(ckpt_path))[0], [("", self.networks[network], (x,))]


def example_image(cfg, channels):
    """The export's example input: ``export_batch x channels x export_size x export_size`` uniform in [-1, 1]."""
    size = cfg.export_size or cfg.crop_size
    return np.random.default_rng(0).uniform(-1, 1, (cfg.export_batch, channels, size, size)).astype(np.float32)
