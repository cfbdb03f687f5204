"""Export a trained generator: ``python export.py --ckpt RUN/G_latest.ckpt --file_format MINDIR|ONNX``.

CycleGAN (``--ckpt RUN/G_A_latest.ckpt``) exports both directions, ``NAME_AtoB`` (G_A) and ``NAME_BtoA`` (G_B, from
the partner checkpoint next to it), each checked as below.

The exported graph is the deterministic inference network (dropout off, batch norm with running statistics, i.e.
``test_mode eval``); after writing, it is loaded back (MINDIR with ``nn.GraphCell``, ONNX with onnxruntime when it
is installed) and its output compared with the checkpoint's on the same input.

``python export.py --convert_from_torch latest_net_G.pth --model pix2pix|cyclegan|pix2pixhd --out G.ckpt`` converts a
reference PyTorch checkpoint instead (read without PyTorch; see ``src/convert/run.py``).
"""

import os
import shutil
import sys
import tempfile

import numpy as np

import src.device  # noqa: F401  (sets ONEDNN_MAX_CPU_ISA before MindSpore loads)
from src.cli import config_for_checkpoint, main_wrapper
from src.errors import UserError

EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx", "AIR": ".air"}
TOLERANCE = 1e-3


def _inputs(x):
    """The example inputs as a tuple (one array, or a tuple of arrays for multi-input networks)."""
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def fix_onnx_conv_transpose(path):
    """Mend the ConvTranspose nodes MindSpore 2.8 writes.

    - It writes a 4-D ``output_shape`` attribute; ONNX expects only the spatial dims there and onnxruntime rejects
      the file. Pads and strides already fix the output size, so it is dropped.
    - It writes ``pads`` in its own ``(top, bottom, left, right)`` order; ONNX's is ``(top, left, bottom, right)``.
      The two agree for symmetric padding, but not for the asymmetric padding that stands for PyTorch's
      ``output_padding`` (``src.common.layers.conv_transpose2d``), so they are reordered.

    export.py then checks the file's output against the checkpoint's. Needs the ``onnx`` package; returns False
    without it.
    """
    try:
        import onnx
    except ImportError:
        return False
    model = onnx.load(path)
    for node in model.graph.node:
        if node.op_type == "ConvTranspose":
            for attr in list(node.attribute):
                if attr.name == "output_shape" and len(attr.ints) == 4:
                    node.attribute.remove(attr)
                elif attr.name == "pads" and len(attr.ints) == 4:
                    top, bottom, left, right = attr.ints
                    attr.ints[:] = [top, left, bottom, right]
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return True


def run_exported(path, file_format, x):
    """Run an exported file on ``x``; returns the output or None when no runtime is available for it."""
    import mindspore as ms
    from mindspore import nn

    if file_format == "MINDIR":
        return nn.GraphCell(ms.load(path))(*[ms.Tensor(a) for a in _inputs(x)]).asnumpy()
    if file_format == "ONNX":
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {i.name: a for i, a in zip(sess.get_inputs(), _inputs(x))})[0]
    return None


def export_network(net, x, out_path, file_format):
    """Export ``net`` traced on ``x`` to ``out_path`` atomically (built in a temporary folder, then moved)."""
    import mindspore as ms

    folder = os.path.dirname(os.path.abspath(out_path)) or "."
    os.makedirs(folder, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".export.", dir=folder)
    try:
        base = os.path.join(tmp_dir, "net")
        try:
            ms.export(net, *[ms.Tensor(a) for a in _inputs(x)], file_name=base, file_format=file_format)
        except RuntimeError as exc:  # e.g. an operator with no exporter for this format
            reason = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise UserError(f"MindSpore cannot export this network to {file_format}: {reason}; use MINDIR") from None
        produced = base + EXTENSIONS[file_format]
        if not os.path.isfile(produced):
            raise UserError(f"MindSpore wrote no {file_format} file (is {file_format} supported on this device?)")
        if file_format == "ONNX":
            fix_onnx_conv_transpose(produced)
        os.replace(produced, out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def run(argv=None):
    from src.common.fast_conv import set_conv_algorithm
    from src.common.layers import set_export_friendly
    from src.config import parse_config, peek_config
    from src.device import init_env
    from src.evaluation import load_generator

    if peek_config(argv).convert_from_torch:  # a reference PyTorch checkpoint -> a MindSpore one (src/convert)
        from src.convert.run import run_conversion

        first = parse_config(argv, description=__doc__)
        first.run_distribute = False
        init_env(first)
        return run_conversion(first)
    cfg, _ = config_for_checkpoint(argv, __doc__)
    cfg.run_distribute = False
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError("file_format AIR can only be exported on Ascend; use MINDIR or ONNX here")
    env = init_env(cfg)
    cfg.test_mode = "eval"
    model, network = load_generator(cfg, env)
    size = cfg.export_size or cfg.crop_size
    if size % model.size_multiple:
        raise UserError(f"export_size {size} must be a multiple of {model.size_multiple} for this generator")
    base, graphs = model.export_graphs(cfg.ckpt, network)  # CycleGAN: both directions, NAME_AtoB and NAME_BtoA
    base = cfg.file_name or base
    for suffix, net, x in graphs:
        net.set_train(False)
        set_conv_algorithm(net, "direct")  # exported graphs hold plain convolutions, for any runtime
        if cfg.file_format == "ONNX":
            set_export_friendly(net)  # MirrorPad and GroupNorm have no ONNX exporters
        export_and_check(net, x, base + suffix + EXTENSIONS[cfg.file_format], cfg.file_format)


def export_and_check(net, x, out_path, file_format):
    """Export ``net`` on ``x`` and compare the exported file's output with the network's; remove it if they differ."""
    import mindspore as ms

    export_network(net, x, out_path, file_format)
    expected = net(*[ms.Tensor(a) for a in _inputs(x)]).asnumpy()
    got = run_exported(out_path, file_format, x)
    size_mb = os.path.getsize(out_path) / 2**20
    if got is None:
        print(f"exported {out_path} ({size_mb:.1f} MB); no runtime installed to check it numerically")
        return
    diff = float(np.max(np.abs(got - expected)))
    if not np.isfinite(diff) or diff > TOLERANCE:
        os.remove(out_path)
        raise UserError(
            f"exported {file_format} output differs from the checkpoint by {diff:.3g} "
            f"(> {TOLERANCE}); the file was removed"
        )
    shapes = ", ".join(str(list(a.shape)) for a in _inputs(x))
    print(f"exported {out_path} ({size_mb:.1f} MB, input {shapes}); max |diff| vs checkpoint {diff:.2e}")


if __name__ == "__main__":
    sys.exit(main_wrapper(run))
