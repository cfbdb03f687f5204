"""What every GAN model of this repository does the same way (see docs/architecture.md, "The model contract")."""

from src.common.optim import get_learning_rate, linear_decay_lr, set_learning_rate


class GANModel:
    """Defaults shared by the models: train mode for all networks, one learning rate for all optimisers, no extras.

    A model sets ``networks`` (name -> Cell), ``optimizers`` (name -> optimiser made by ``make_adam``) and ``opt_G``.
    """

    def set_train(self, mode=True):
        for net in self.networks.values():
            net.set_train(mode)

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
