"""A fourth model built from the contract alone (docs/architecture.md, "How to add a model").

The toy model is one class and one registry entry: a 3x3 conv generator trained with L1 to the target. Training,
resume, eval (split and --input), export and the benchmark batch all work through GANModel's defaults, without any
change to the trainer, eval.py or export.py.
"""

import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import nn

from src.common.losses import l1_loss
from src.common.tensors import wait_for_step
from src.model_base import GANModel
from tests.conftest import tiny_cfg, write_ab_dataset


class ToyModel(GANModel):
    name = "toy"
    loss_names = ("G_L1",)

    def __init__(self, cfg, env=None, training=True):
        self.cfg = cfg
        self.networks, self.optimizers = {}, {}
        conv = nn.Conv2d(cfg.input_nc, cfg.output_nc, 3, pad_mode="pad", padding=1, has_bias=True)
        self.G = self.add_network("G", nn.SequentialCell(conv, nn.Tanh()))
        self.size_multiple = 4
        if not training:
            return
        self.opt_G, reduce_G = self.add_optimizer("G", self.G.trainable_params(), env)
        G, opt_G = self.G, self.opt_G

        def forward(a, b):
            return l1_loss(G(a), b)

        grad = ms.value_and_grad(forward, None, opt_G.parameters)

        def step(a, b):
            loss, grads = grad(a, b)
            return ms.ops.depend(loss, opt_G(reduce_G(grads)))

        self._step = ms.jit(step) if cfg.jit else step

    @staticmethod
    def make_source(cfg, phase, training=True):
        from src.dataset.aligned import AlignedDataset

        return AlignedDataset(cfg.dataroot, phase, direction=cfg.direction, preprocess="none", load_size=cfg.crop_size,
                              crop_size=cfg.crop_size, no_flip=True, size_multiple=4)  # fmt: skip

    def train_step(self, batch):
        loss = self._step(ms.Tensor(batch["input"]), ms.Tensor(batch["target"]))
        wait_for_step(loss)
        return {"G_L1": float(loss.asnumpy())}

    def set_test_mode(self, test_mode):
        self.G.set_train(False)

    def generate(self, x):
        return self.run_network("G", x)

    def visuals(self, batch):
        return [batch["input"], self.generate(batch["input"]), batch["target"]]


@pytest.fixture
def toy_registered(monkeypatch):
    from src import models

    monkeypatch.setitem(models.MODELS, "toy", "tests.test_model_contract:ToyModel")


def test_a_fourth_model_trains_resumes_evaluates_and_exports(tmp_path, toy_registered):
    from src.common.checkpoint import read_checkpoint
    from src.device import init_env
    from src.evaluation import evaluate_split, load_generator, translate_inputs
    from src.models import build_model
    from src.trainer import Trainer

    data = write_ab_dataset(tmp_path / "data")
    cfg = tiny_cfg(dataroot=data, outputs_dir=str(tmp_path / "runs"), name="toy", max_steps=3)
    cfg.model = "toy"  # the registry entry is the only place that knows the name
    env = init_env(cfg)
    model = build_model(cfg, env, training=True)
    before = model.G.trainable_params()[0].asnumpy().copy()
    Trainer(cfg, env, model).train()
    run = tmp_path / "runs" / "toy"
    assert {"G_latest.ckpt", "resume.ckpt", "loss_log.csv"} <= set(os.listdir(run))
    after = read_checkpoint(str(run / "G_latest.ckpt"))["G.0.weight"].asnumpy()
    assert not np.array_equal(before, after)  # the step moved the weights, and the checkpoint holds them

    # resume continues from step 3 with the optimiser state: 2 more steps, then the run stops at max_steps 5
    cfg2 = tiny_cfg(dataroot=data, outputs_dir=str(tmp_path / "runs"), name="toy", max_steps=5, continue_train=True)
    cfg2.model = "toy"
    logs = []
    assert Trainer(cfg2, env, build_model(cfg2, env, training=True), log=logs.append).train() == 5
    assert any("resumed" in line and "(global step 3)" in line for line in logs), logs

    # eval through the default eval set, PSNR/SSIM against the paired target
    cfg_eval = tiny_cfg(dataroot=data, ckpt=str(run / "G_latest.ckpt"), test_mode="eval")
    cfg_eval.model = "toy"
    gen, network = load_generator(cfg_eval, env)
    assert network == "G"
    np.testing.assert_array_equal(gen.G.trainable_params()[0].asnumpy(), read_checkpoint(str(run / "G_latest.ckpt"))[
        "G.0.weight"].asnumpy())  # fmt: skip
    rows, per_image, metrics = evaluate_split(cfg_eval, gen, str(tmp_path / "eval"), log=lambda *_: None)
    assert len(rows) == 2 and set(rows[0]["images"]) == {"input", "output", "target"}
    assert metrics["num_images"] == 2 and np.isfinite(metrics["psnr"])

    # --input: the default translate_file pads to size_multiple and crops back to the file's size
    from PIL import Image

    odd = tmp_path / "odd.png"
    Image.fromarray(np.full((10, 7, 3), 128, np.uint8)).save(odd)
    cfg_eval.input = str(odd)
    rows = translate_inputs(cfg_eval, gen, str(tmp_path / "inp"), log=lambda *_: None)
    with Image.open(tmp_path / "inp" / rows[0]["images"]["output"]) as out:
        assert out.size == (7, 10)

    # export's default graph: the loaded generator on a random image batch of crop_size
    base, graphs = gen.export_graphs(cfg_eval.ckpt, network)
    assert base == str(run / "G_latest") and len(graphs) == 1
    suffix, net, inputs = graphs[0]
    assert suffix == "" and net is gen.G and inputs[0].shape == (1, 3, 32, 32)
    # and the benchmark batch of the default layout
    batch = gen.example_batch(2, 8, 12)
    assert {k: a.shape for k, a in batch.items()} == {"input": (2, 3, 8, 12), "target": (2, 3, 8, 12), "index": (2,)}
