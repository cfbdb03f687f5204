"""The training loop shared by every model: epochs, learning-rate schedule, logging, samples, checkpoints, resume.

A model (see :mod:`src.models`) provides ``networks``, ``optimizers``, ``train_step(batch) -> dict``,
``set_learning_rate``, ``extra_state``/``load_extra_state``, ``visuals`` and ``make_source``; this loop does the rest.

Resume contract: ``RUN/resume.ckpt`` holds the networks, the optimiser states and the loop position (epoch and the
number of batches of that epoch already done). The data order and augmentation are a function of (seed, epoch), so a
resumed run sees exactly the batches an uninterrupted run would. SIGINT/SIGTERM stop the loop after the current step
and save first, so Ctrl-C loses nothing; a hard kill loses at most ``save_latest_freq`` steps.
"""

import os
import signal
import time

import numpy as np

from src.common import checkpoint as ckpt
from src.common.fileio import atomic_write_text
from src.common.image_grid import save_sample_grid
from src.common.loss_log import LossLogger
from src.common.plots import plot_losses
from src.config import config_to_yaml
from src.dataset.image_io import tensor_to_uint8
from src.dataset.loader import make_epoch_loader, steps_per_epoch
from src.errors import UserError

RESUME_FILE = "resume.ckpt"


def default_run_name(cfg):
    base = os.path.basename(os.path.normpath(cfg.dataroot)) if cfg.dataroot else "data"
    return f"{cfg.model}_{base}"


def run_dir_of(cfg):
    """``RUN`` for this config: ``--resume RUN``, or ``OUTPUTS_DIR/NAME``."""
    if cfg.resume:
        return os.path.abspath(cfg.resume)
    return os.path.abspath(os.path.join(cfg.outputs_dir, cfg.name or default_run_name(cfg)))


def _format_eta(seconds):
    seconds = int(max(0, seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (so a step is never cut in half)."""

    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum, frame):
        if self.requested:  # second Ctrl-C: give up at once
            raise KeyboardInterrupt
        self.requested = True
        print(f"\nsignal {signum}: finishing this step, saving, then stopping (Ctrl-C again to abort)", flush=True)

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False


class Trainer:
    """Runs training of one model in one run directory."""

    def __init__(self, cfg, env, model, log=print):
        self.cfg, self.env, self.model, self.log = cfg, env, model, log
        self.run_dir = run_dir_of(cfg)
        self.source = model.make_source(cfg, cfg.phase, training=True)
        self.steps_per_epoch = steps_per_epoch(len(self.source), cfg.batch_size, env.group_size)
        self.total_epochs = cfg.n_epochs + cfg.n_epochs_decay
        self.epoch, self.step_in_epoch, self.global_step = 1, 0, 0
        self.logger = None

    # ----- run directory and resume
    def prepare(self):
        """Create the run directory or restore the state of the run in it."""
        cfg, resume_path = self.cfg, os.path.join(self.run_dir, RESUME_FILE)
        resuming = bool(cfg.continue_train or cfg.resume)
        if resuming:
            if not os.path.isfile(resume_path):
                raise UserError(
                    f"nothing to resume in {self.run_dir}: {RESUME_FILE} not found; start a new run without "
                    f"--continue_train/--resume"
                )
            state, extras = ckpt.load_resume(resume_path, self.model.networks, self.model.optimizers)
            if state.get("model") != cfg.model:
                raise UserError(f"{resume_path} is a '{state.get('model')}' run, not '{cfg.model}'")
            if state.get("steps_per_epoch") != self.steps_per_epoch:
                raise UserError(
                    f"{resume_path} was saved with {state.get('steps_per_epoch')} steps per epoch but the data now "
                    f"gives {self.steps_per_epoch}; resume with the same dataset, batch_size and device count"
                )
            self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
            self.global_step = state["global_step"]
            self.model.load_extra_state(extras)
            self.log(
                f"resumed {self.run_dir} at epoch {self.epoch}, step {self.step_in_epoch}/"
                f"{self.steps_per_epoch} (global step {self.global_step})"
            )
        elif os.path.isfile(resume_path):
            raise UserError(
                f"run directory {self.run_dir} already holds a run; pass --continue_train to resume it, or --name to "
                f"start a new one"
            )
        if self.env.is_main:
            os.makedirs(self.run_dir, exist_ok=True)
            atomic_write_text(os.path.join(self.run_dir, "config.yaml"), config_to_yaml(cfg))
            self.logger = LossLogger(
                os.path.join(self.run_dir, "loss_log.csv"),
                columns=self.model.loss_names,
                resume_global_step=self.global_step if resuming else None,
            )

    def _state(self):
        return dict(
            model=self.cfg.model,
            epoch=self.epoch,
            step_in_epoch=self.step_in_epoch,
            global_step=self.global_step,
            steps_per_epoch=self.steps_per_epoch,
            lr=self.model.learning_rate(),
            seed=int(self.cfg.seed),
        )

    def save(self, epoch_copy=False):
        """Write ``*_latest.ckpt`` for every network, then the resume file (and per-epoch copies if asked)."""
        if not self.env.is_main:
            return
        done_epoch = self.epoch - 1 if self.step_in_epoch == 0 else self.epoch
        for name, net in self.model.networks.items():
            ckpt.save_network(
                net,
                os.path.join(self.run_dir, f"{name}_latest.ckpt"),
                self.cfg.model,
                name,
                done_epoch,
                self.global_step,
            )
            if epoch_copy:
                ckpt.save_network(
                    net,
                    os.path.join(self.run_dir, f"{name}_epoch_{done_epoch:03d}.ckpt"),
                    self.cfg.model,
                    name,
                    done_epoch,
                    self.global_step,
                )
        ckpt.save_resume(
            os.path.join(self.run_dir, RESUME_FILE),
            self.model.networks,
            self.model.optimizers,
            self._state(),
            self.model.extra_state(),
        )

    # ----- outputs a person looks at
    def write_samples(self, tag):
        if not self.env.is_main or self.cfg.num_samples <= 0:
            return
        n = min(self.cfg.num_samples, len(self.source))
        items = [self.source.get(i, np.random.default_rng([int(self.cfg.seed), i])) for i in range(n)]
        batch = {c: np.stack([it[c] for it in items]) for c in self.source.columns}
        self.model.set_test_mode(self.cfg.test_mode)
        try:
            visuals = []
            for i in range(n):  # one image at a time: batch statistics stay per image as in training (batch 1)
                visuals.append(self.model.visuals({c: b[i : i + 1] for c, b in batch.items()}))
        finally:
            self.model.set_train(True)
        rows = [[tensor_to_uint8(v[0]) for v in vis] for vis in visuals]
        save_sample_grid(rows, os.path.join(self.run_dir, "samples", f"{tag}.png"))

    def plot(self):
        if self.env.is_main and self.logger is not None:
            plot_losses(self.logger.path, os.path.join(self.run_dir, "loss_plot.png"))

    # ----- the loop
    def train(self):
        try:
            return self._train()
        finally:
            if self.env.distributed:
                self.log(f"rank {self.env.rank}/{self.env.group_size} parameter checksum: {self.checksum()}")

    def checksum(self):
        """sum |w| of every network's trainable parameters (equal on every rank of a data-parallel run)."""
        sums = {
            n: float(sum(np.abs(p.asnumpy()).astype(np.float64).sum() for p in net.trainable_params()))
            for n, net in self.model.networks.items()
        }
        return " ".join(f"{n}={v:.9f}" for n, v in sums.items())

    def _train(self):
        cfg, model = self.cfg, self.model
        self.prepare()
        sizes = ", ".join(f"{k} {v:,}" for k, v in model.describe().items())
        self.log(
            f"model {cfg.model}: parameters {sizes}; {len(self.source)} training images, "
            f"{self.steps_per_epoch} steps per epoch, {self.total_epochs} epochs; run directory {self.run_dir}"
        )
        model.set_train(True)
        stop_at = cfg.max_steps if cfg.max_steps > 0 else None
        if stop_at is not None and self.global_step >= stop_at:
            self.log(f"already at step {self.global_step} >= max_steps {stop_at}: nothing to do")
            return self.global_step
        if self.epoch > self.total_epochs:
            self.log(f"the run has finished all {self.total_epochs} epochs; raise n_epochs/n_epochs_decay to go on")
            return self.global_step
        first_step = True
        with _StopFlag() as stop:
            while self.epoch <= self.total_epochs:
                lr = model.learning_rate_at(self.epoch)  # a function of the epoch: resume recomputes it
                model.set_learning_rate(lr)
                model.on_epoch_start(self.epoch)  # e.g. pix2pixHD's niter_fix_global
                loader = make_epoch_loader(
                    self.source,
                    cfg.batch_size,
                    self.epoch,
                    int(cfg.seed),
                    shuffle=cfg.shuffle,
                    num_shards=self.env.group_size,
                    shard_id=self.env.rank,
                    skip_batches=self.step_in_epoch,
                    num_workers=cfg.num_workers,
                )
                window, t_epoch, stopping = [], time.perf_counter(), None
                for batch in loader:
                    t0 = time.perf_counter()
                    losses = model.train_step(batch)
                    ms_step = (time.perf_counter() - t0) * 1000.0
                    self.step_in_epoch += 1
                    self.global_step += 1
                    if first_step:
                        self.log(f"first step (includes graph compilation): {ms_step / 1000.0:.1f} s")
                        first_step = False
                    else:
                        window.append(ms_step)
                    self._record(losses, ms_step, lr)
                    if self.global_step % max(1, cfg.print_freq) == 0 or self.step_in_epoch == self.steps_per_epoch:
                        self._print(losses, window, lr, ms_step)
                    if cfg.log_samples:
                        self.log(
                            f"rank {self.env.rank}/{self.env.group_size} epoch {self.epoch} step "
                            f"{self.step_in_epoch} samples {[int(i) for i in np.ravel(batch['index'])]}"
                        )
                        window = []
                    if stop.requested or (stop_at is not None and self.global_step >= stop_at):
                        stopping = "stopped by signal" if stop.requested else "max_steps reached"
                        break
                    if cfg.save_latest_freq and self.global_step % cfg.save_latest_freq == 0:
                        self.save()
                if self.step_in_epoch >= self.steps_per_epoch:
                    self._end_epoch(lr, t_epoch)
                if stopping:
                    if self.step_in_epoch:  # mid-epoch: the end of epoch did not save
                        self.save()
                        self.plot()
                    self.log(
                        f"{stopping}: saved at epoch {self.epoch}, step {self.step_in_epoch} "
                        f"(global step {self.global_step}); resume with --continue_train"
                    )
                    return self.global_step
        return self.global_step

    def _end_epoch(self, lr, t_epoch):
        cfg, finished = self.cfg, self.epoch
        self.epoch, self.step_in_epoch = self.epoch + 1, 0
        self.save(epoch_copy=cfg.save_epoch_freq > 0 and finished % cfg.save_epoch_freq == 0)
        if cfg.sample_freq > 0 and (finished % cfg.sample_freq == 0 or finished == self.total_epochs):
            self.write_samples(f"epoch_{finished:03d}")
        self.plot()
        self.log(f"end of epoch {finished}/{self.total_epochs}: {time.perf_counter() - t_epoch:.1f} s, lr {lr:.3g}")

    def _record(self, losses, ms_step, lr):
        if self.logger is not None:
            self.logger.log(
                epoch=self.epoch,
                step=self.step_in_epoch,
                global_step=self.global_step,
                losses=losses,
                ms_per_step=ms_step,
                lr=lr,
            )

    def _print(self, losses, window, lr, last_ms):
        ms_step = float(np.median(window)) if window else last_ms
        left = (self.steps_per_epoch - self.step_in_epoch) + (self.total_epochs - self.epoch) * self.steps_per_epoch
        if self.cfg.max_steps > 0:
            left = min(left, self.cfg.max_steps - self.global_step)
        eta = _format_eta(left * ms_step / 1000.0)
        pct = 100.0 * self.step_in_epoch / self.steps_per_epoch
        loss_text = "  ".join(f"{k} {v:.4f}" for k, v in losses.items())
        self.log(
            f"epoch {self.epoch}/{self.total_epochs}  step {self.step_in_epoch}/{self.steps_per_epoch} "
            f"({pct:3.0f}%)  {loss_text}  lr {lr:.3g}  {ms_step:.1f} ms/step  eta {eta}"
        )
