"""CycleGAN: networks and counts, image pool, unpaired data, train steps, KD, resume, eval, export, bad input."""

import csv
import os

import mindspore as ms
import numpy as np
import pytest

import eval as eval_script
import export as export_script
import train as train_script
from src.cli import main_wrapper
from src.common import checkpoint as ckpt
from src.common.discriminators import NLayerDiscriminator
from src.common.init import count_params
from src.common.layers import LeakyReLU
from src.cyclegan.macs import count_macs
from src.cyclegan.model import CycleGANModel
from src.cyclegan.pool import ImagePool
from src.cyclegan.resnet import MirrorPad2d, ResnetBlock, ResnetGenerator
from src.dataset.unaligned import UnalignedDataset
from src.device import init_env
from src.errors import UserError
from tests.conftest import TINY_CG, make_cfg, run_argv, write_unpaired
from tests.grad_capture import CaptureGrads


def _cfg(**over):
    return make_cfg(TINY_CG, **over)


def _model(**over):
    cfg = _cfg(**over)
    env = init_env(cfg)
    ms.set_seed(cfg.seed)
    m = CycleGANModel(cfg, env, log=lambda *a: None)
    m.set_train(True)
    return m


def _batch(seed=0, size=32):
    rng = np.random.default_rng(seed)
    return {
        "A": rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32),
        "B": rng.uniform(-1, 1, (1, 3, size, size)).astype(np.float32),
        "index": np.zeros(1, np.int32),
    }


def _params(nets):
    return {p.name: p.asnumpy().copy() for net in nets.values() for p in net.get_parameters()}


def _argv(data, runs, **over):
    return run_argv(TINY_CG, data, runs, **over)


def _losses(path):
    with open(path) as f:
        return [tuple(v for k, v in r.items() if k not in ("ms_per_step", "time")) for r in csv.DictReader(f)]


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


# ------------------------------------------------------------------------------------------------------ networks
def test_reference_parameter_counts_and_distinct_blocks():
    g9 = ResnetGenerator(3, 3, 64, 9, "instance", False, "REFLECT")
    assert count_params(g9) == 11_378_179  # junyanz resnet_9blocks, instance norm
    block = 2 * (256 * 256 * 9 + 256)
    assert count_params(ResnetGenerator(3, 3, 64, 6, "instance", True, "REFLECT")) == 11_378_179 - 3 * block
    assert count_params(NLayerDiscriminator(3, 64, 3, "instance")) == 2_764_737
    blocks = [c for _, c in g9.cells_and_names() if isinstance(c, ResnetBlock)]
    assert len(blocks) == 9
    weights = [id(b.conv_block[1].weight) for b in blocks]
    assert len(set(weights)) == 9  # no [Block()] * n sharing
    names = [p.name for p in g9.get_parameters()]
    assert len(names) == len(set(names))
    relus = [c for _, c in g9.cells_and_names() if isinstance(c, ms.nn.ReLU)]
    leaky = [c for _, c in g9.cells_and_names() if isinstance(c, (ms.nn.LeakyReLU, LeakyReLU))]
    assert len(relus) == 3 + 9 + 2 and not leaky


def test_generator_shapes_and_macs():
    g = ResnetGenerator(3, 1, 8, 2, "instance", True, "SYMMETRIC")
    g.set_train(False)
    y = g(ms.Tensor(np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 24)).astype(np.float32))).asnumpy()
    assert y.shape == (2, 1, 32, 24) and np.all(np.abs(y) <= 1)
    # MACs from shapes: resnet_9blocks at ngf 64 is 49.55 G at 256x256, i.e. exactly 1/64 of that at 32x32
    assert count_macs(ResnetGenerator(3, 3, 64, 9, "instance"), (1, 3, 32, 32)) == 49_551_507_456 // 64
    conv = ms.nn.Conv2d(3, 5, 3, 2, pad_mode="pad", padding=1)
    assert count_macs(conv, (1, 3, 8, 8)) == 4 * 4 * 5 * 3 * 9
    student = count_macs(ResnetGenerator(3, 3, 16, 9, "instance"), (1, 3, 32, 32))
    assert 49_551_507_456 // 64 / student >= 8


@pytest.mark.parametrize("mode, np_mode", [("REFLECT", "reflect"), ("SYMMETRIC", "symmetric")])
def test_mirror_pad_matches_numpy(mode, np_mode):
    x = np.random.default_rng(1).normal(size=(1, 2, 5, 6)).astype(np.float32)
    pad = MirrorPad2d(3, mode)
    expected = np.pad(x, ((0, 0), (0, 0), (3, 3), (3, 3)), mode=np_mode)
    np.testing.assert_array_equal(pad(ms.Tensor(x)).asnumpy(), expected)
    pad.export_friendly = True  # the ONNX-exportable form gives the same values
    np.testing.assert_array_equal(pad(ms.Tensor(x)).asnumpy(), expected)


# ------------------------------------------------------------------------------------------------------ image pool
def test_image_pool_semantics_and_state():
    images = [np.full((1, 1, 2, 2), i, np.float32) for i in range(400)]
    empty = ImagePool(0)
    assert empty.query(images[7]) is not None and np.array_equal(empty.query(images[7]), images[7])
    assert len(empty) == 0
    pool = ImagePool(3, seed=1)
    for i in range(3):  # filling: every image is stored and returned
        assert np.array_equal(pool.query(images[i]), images[i])
    stored_returned = 0
    for i in range(3, 303):
        before = {float(im[0, 0, 0]) for im in pool.images}
        out = float(pool.query(images[i])[0, 0, 0, 0])
        after = {float(im[0, 0, 0]) for im in pool.images}
        if out != i:  # a stored image came back and the new one took its place
            stored_returned += 1
            assert out in before and i in after and out not in after
        else:
            assert after == before
        assert len(pool) == 3
    assert 0.4 < stored_returned / 300 < 0.6
    # the state (images + query counter) makes a copy continue identically
    copy = ImagePool(3, seed=1)
    copy.load_state(pool.state("p"), "p")
    for i in range(303, 340):
        np.testing.assert_array_equal(copy.query(images[i]), pool.query(images[i]))


# ------------------------------------------------------------------------------------------------------ data
def test_unaligned_dataset(tmp_path):
    data = write_unpaired(tmp_path / "d", n_a=4, n_b=3)
    src = UnalignedDataset(data, "train", crop_size=32, load_size=36, size_multiple=4)
    assert len(src) == 4 and src.columns == ("A", "B", "index")
    s1, s2 = (src.get(2, np.random.default_rng([0, 1, 2])) for _ in range(2))
    assert list(s1) == ["A", "B", "index"] and s1["index"] == 2
    a1, b1, a2, b2 = s1["A"], s1["B"], s2["A"], s2["B"]
    assert a1.shape == b1.shape == (3, 32, 32)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(b1, b2)
    swapped = UnalignedDataset(data, "train", direction="BtoA", crop_size=32, load_size=36)
    assert len(swapped.source_a) == 3


def test_demo_unpaired_split(tmp_path):
    from src.dataset import demo

    root = tmp_path / "cs"
    demo.write_cityscapes_tree(root, num_train=4, num_val=2, height=32, width=64, seed=1)
    counts = demo.write_unpaired(root, tmp_path / "cg", size=32)
    assert counts == {"trainA": 2, "trainB": 2, "testA": 2, "testB": 2}
    train_a, train_b = (set(os.listdir(tmp_path / "cg" / f"train{s}")) for s in "AB")
    assert not train_a & train_b  # different scenes on the two sides
    assert set(os.listdir(tmp_path / "cg" / "testA")) == set(os.listdir(tmp_path / "cg" / "testB"))


# ------------------------------------------------------------------------------------------------------ training
def test_steps_change_all_four_networks():
    m = _model()
    assert set(m.networks) == {"G_A", "G_B", "D_A", "D_B"}
    before = _params(m.networks)
    for i in range(3):
        losses = m.train_step(_batch(i))
        assert list(losses) == list(m.loss_names)
        assert all(np.isfinite(v) for v in losses.values()), losses
        assert losses["idt_A"] > 0 and losses["cycle_B"] > 0
    after = _params(m.networks)
    unchanged = [k for k in before if np.array_equal(before[k], after[k])]
    assert unchanged == []
    assert int(m.opt_G.global_step.asnumpy().item()) == 3 and int(m.opt_D.global_step.asnumpy().item()) == 3
    assert len(m.pool_A) == 2 and len(m.pool_B) == 2
    no_idt = _model(lambda_idt=0.0, gan_mode="vanilla", netG="unet", g_layers=5)
    losses = no_idt.train_step(_batch(0))
    assert losses["idt_A"] == 0.0 and np.isfinite(losses["G_A"])


@pytest.mark.parametrize("lambda_idt", [0.5, 0.0])
def test_generator_step_equals_one_backward_pass_of_the_whole_loss(lambda_idt):
    """The compiled G step sums the gradients of three loss groups (A cycle, B cycle, identity); they must equal the
    gradient of the whole CycleGAN G loss taken in one pass, as the reference does, and so must the losses."""
    from src.common.losses import l1_loss, make_gan_loss

    m = _model(lambda_idt=lambda_idt, jit=True)
    m.reduce_G = CaptureGrads(m.opt_G.parameters, "capture_G")
    m._g_step, m._d_step = (ms.jit(f) for f in m._build_steps())
    G_A, G_B, D_A, D_B, gan = m.G_A, m.G_B, m.D_A, m.D_B, make_gan_loss(m.cfg.gan_mode)
    batch = _batch(3)
    real_a, real_b = ms.Tensor(batch["A"]), ms.Tensor(batch["B"])

    def whole(real_a, real_b):
        fake_b, fake_a = G_A(real_a), G_B(real_b)
        terms = (
            gan(D_A(fake_b), True),
            l1_loss(G_B(fake_b), real_a) * 10.0,
            l1_loss(G_A(real_b), real_b) * 10.0 * lambda_idt,
            gan(D_B(fake_a), True),
            l1_loss(G_A(fake_a), real_b) * 10.0,
            l1_loss(G_B(real_a), real_a) * 10.0 * lambda_idt,
        )
        return terms[0] + terms[1] + terms[2] + terms[3] + terms[4] + terms[5], terms

    (_, want_losses), want = ms.value_and_grad(whole, None, m.opt_G.parameters, has_aux=True)(real_a, real_b)
    _, losses, _, _ = m._g_step(real_a, real_b)
    np.testing.assert_allclose([float(v.asnumpy()) for v in losses[:6]], [float(v.asnumpy()) for v in want_losses],
                               rtol=1e-5, atol=1e-7)  # fmt: skip
    scale = max(float(np.abs(w.asnumpy()).max()) for w in want)
    assert scale > 0 and len(want) == len(m.reduce_G.bufs)
    for got, w in zip(m.reduce_G.bufs, want):
        np.testing.assert_allclose(got.asnumpy(), w.asnumpy(), rtol=1e-4, atol=1e-5 * scale)


def test_knowledge_distillation_changes_only_the_student(tmp_path, capsys):
    teacher = _model(ngf=8)
    for net in ("G_A", "G_B"):
        ckpt.save_network(teacher.networks[net], str(tmp_path / f"{net}_latest.ckpt"), "cyclegan", net)
    kd = dict(kd=True, ngf=4, t_ngf=8, t_gl_num=2, GT_A_ckpt=str(tmp_path / "G_A_latest.ckpt"))
    kd["GT_B_ckpt"] = str(tmp_path / "G_B_latest.ckpt")
    logs = []
    cfg = _cfg(**kd)
    student = CycleGANModel(cfg, init_env(cfg), log=logs.append)
    student.set_train(True)
    assert "teacher" in logs[0] and "MACs" in logs[0]
    c = student.complexity()
    assert c["T_params"] > c["G_params"] and c["T_MACs"] > 2 * c["G_MACs"]
    teacher_before = _params({"A": student.T_A, "B": student.T_B})
    np.testing.assert_array_equal(
        student.T_A.get_parameters().__next__().asnumpy(), teacher.G_A.get_parameters().__next__().asnumpy()
    )
    student_before = _params(student.networks)
    for i in range(2):
        losses = student.train_step(_batch(i))
        assert losses["kd_A"] > 0 and losses["kd_B"] > 0 and all(np.isfinite(v) for v in losses.values())
    assert _params({"A": student.T_A, "B": student.T_B}).keys() == teacher_before.keys()
    for k, v in _params({"A": student.T_A, "B": student.T_B}).items():
        np.testing.assert_array_equal(v, teacher_before[k])
    student_after = _params(student.networks)
    assert all(not np.array_equal(student_before[k], student_after[k]) for k in student_before)
    assert not student.T_A.training and "T_A" not in student.networks

    with pytest.raises(UserError, match="does not match the teacher settings.*t_ngf 16"):
        _model(**dict(kd, t_ngf=16, ngf=8))
    with pytest.raises(UserError, match="needs the teacher's generators"):
        _model(**dict(kd, GT_B_ckpt=""))
    with pytest.raises(UserError, match="1/2 or 1/4"):
        _model(**dict(kd, ngf=3))
    with pytest.raises(UserError, match="teacher G_B is needed"):
        _model(**dict(kd, GT_B_ckpt=kd["GT_A_ckpt"]))


# ------------------------------------------------------------------------------------------------------ as a user
def test_train_eval_export_unpaired(tmp_path, capsys):
    data = write_unpaired(tmp_path / "data", n_a=3, n_b=2, n_test=2)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="r")) == 0
    run = os.path.join(runs, "r")
    for f in ("G_A_latest.ckpt", "G_B_latest.ckpt", "D_A_latest.ckpt", "D_B_latest.ckpt", "resume.ckpt",
              "G_A_epoch_002.ckpt", "samples/epoch_002.png", "loss_log.csv"):  # fmt: skip
        assert os.path.isfile(os.path.join(run, f)), f
    assert len(_losses(os.path.join(run, "loss_log.csv"))) == 6
    assert "cycle_A" in capsys.readouterr().out

    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_A_latest.ckpt")]) == 0
    ev = os.path.join(run, "eval_test")
    page = open(os.path.join(ev, "index.html")).read()
    assert "<th>target</th>" not in page  # unpaired test data: no target column, no PSNR/SSIM
    for tag, name in (("AtoB", "a_test_000"), ("BtoA", "b_test_001")):
        for kind in ("input", "output"):
            assert f"images/{tag}_{name}_{kind}.png" in page
    import json

    metrics = json.load(open(os.path.join(ev, "metrics.json")))
    assert metrics["AtoB"] == {"num_images": 2, "num_with_target": 0} and "psnr" not in metrics["BtoA"]

    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_B_latest.ckpt"), "--input", data]) == 0
    assert "cyclegan G_B" in capsys.readouterr().out

    target = str(tmp_path / "export" / "cg")
    assert main_wrapper(export_script.run, ["--ckpt", os.path.join(run, "G_B_latest.ckpt"), "--file_name", target]) == 0
    assert os.path.isfile(target + "_AtoB.mindir") and os.path.isfile(target + "_BtoA.mindir")
    assert capsys.readouterr().out.count("max |diff| vs checkpoint") == 2
    # ONNX: mirror padding and instance norm switch to exportable forms; onnxruntime checks the numbers
    args = ["--ckpt", os.path.join(run, "G_B_latest.ckpt"), "--file_name", target, "--file_format", "ONNX"]
    assert main_wrapper(export_script.run, args) == 0
    assert os.path.isfile(target + "_AtoB.onnx") and os.path.isfile(target + "_BtoA.onnx")
    assert capsys.readouterr().out.count("max |diff| vs checkpoint") == 2


def test_paired_test_split_gets_metrics(tmp_path):
    data = write_unpaired(tmp_path / "data", n_a=2, n_b=2, n_test=2, paired_test=True)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="p", max_steps=1, num_samples=0)) == 0
    run = os.path.join(runs, "p")
    assert main_wrapper(eval_script.run, ["--ckpt", os.path.join(run, "G_A_latest.ckpt")]) == 0
    import json

    metrics = json.load(open(os.path.join(run, "eval_test", "metrics.json")))
    assert metrics["AtoB"]["num_with_target"] == 2 and 0 < metrics["AtoB"]["psnr"] < 100
    assert "<th>target</th>" in open(os.path.join(run, "eval_test", "index.html")).read()


def test_stop_and_resume_restores_pool_and_optimizers(tmp_path):
    data = write_unpaired(tmp_path / "data", n_a=3, n_b=2, n_test=1)
    runs = str(tmp_path / "runs")
    assert main_wrapper(train_script.run, _argv(data, runs, name="full", num_samples=0)) == 0
    assert main_wrapper(train_script.run, _argv(data, runs, name="cut", num_samples=0, max_steps=3)) == 0
    cut = os.path.join(runs, "cut")
    _, extras = ckpt.load_resume(os.path.join(cut, "resume.ckpt"), {}, {})
    assert extras["pool_fake_A.images"].shape == (2, 3, 32, 32) and int(extras["pool_fake_B.queries"][0]) == 3
    assert main_wrapper(train_script.run, ["--resume", cut, "--max_steps", "0"]) == 0
    full = _losses(os.path.join(runs, "full", "loss_log.csv"))
    assert len(full) == 6 and _losses(os.path.join(cut, "loss_log.csv")) == full


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    data = write_unpaired(tmp_path / "data", n_a=2, n_b=2, n_test=1)
    empty = write_unpaired(tmp_path / "empty", n_a=0, n_b=2, n_test=1)
    assert main_wrapper(train_script.run, _argv(empty, runs, name="e")) == 2
    assert "trainA" in _error_line(capsys)
    nob = tmp_path / "nob"
    os.makedirs(nob / "trainA")
    assert main_wrapper(train_script.run, _argv(str(nob), runs, name="n")) == 2
    assert "trainB" in _error_line(capsys)
    assert main_wrapper(train_script.run, _argv(data, runs, name="k", kd=True, ngf=4, t_ngf=8)) == 2
    assert "GT_A_ckpt" in _error_line(capsys)
    assert main_wrapper(train_script.run, _argv(data, runs, name="u", netG="unet", g_layers=6)) == 2
    assert "does not fit a U-Net with g_layers=6" in _error_line(capsys)
    assert main_wrapper(train_script.run, _argv(data, runs, name="m", model_g="unet", gl_num=9)) == 2
    assert "g_layers=5 or less" in _error_line(capsys)
    assert main_wrapper(train_script.run, _argv(data, runs, name="c", crop_size=30, load_size=36)) == 2
    assert "multiples of 4" in _error_line(capsys)
    # a teacher checkpoint that does not fit t_*: write one (ngf 8) and ask for a t_ngf 16 teacher
    teacher = _model(ngf=8)
    for net in ("G_A", "G_B"):
        ckpt.save_network(teacher.networks[net], str(tmp_path / f"{net}.ckpt"), "cyclegan", net)
    kd = dict(kd=True, ngf=4, t_ngf=16, GT_A_ckpt=tmp_path / "G_A.ckpt", GT_B_ckpt=tmp_path / "G_B.ckpt")
    assert main_wrapper(train_script.run, _argv(data, runs, name="t", **kd)) == 2
    assert "does not match the teacher settings" in _error_line(capsys)
    assert not os.path.exists(runs) or os.listdir(runs) == []  # nothing half-written


@pytest.mark.parametrize("algorithm, fast", [("auto", True), ("direct", False)])
def test_conv_algorithm_reaches_every_network_of_the_model(algorithm, fast):
    from src.common.fast_conv import FastConv2d
    from src.models import build_model

    cfg = _cfg(conv_algorithm=algorithm)
    model = build_model(cfg, init_env(cfg), training=True)
    for name, net in model.networks.items():
        convs = [c for _, c in net.cells_and_names() if isinstance(c, FastConv2d) and c.fast_algorithm != "direct"]
        if name.startswith("G"):
            assert convs, name  # the residual blocks' 3x3 convs and the final 7x7
        assert all(c.use_fast == fast for c in convs), name
