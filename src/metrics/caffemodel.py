"""Read Caffe ``.caffemodel`` weights without Caffe or protobuf, and convert the Cityscapes FCN-8s to a MindSpore
checkpoint.

A ``.caffemodel`` is a binary protobuf ``caffe.NetParameter``. Only the fields that carry weights are read; every
other field is skipped by its wire type, so layer parameters, new fields and unknown extensions do no harm.

==================  ==================================================================================
message             fields read (number)
==================  ==================================================================================
NetParameter        ``layer`` = 100 (LayerParameter, current), ``layers`` = 2 (V1LayerParameter, old)
LayerParameter      ``name`` = 1, ``type`` = 2 (string), ``blobs`` = 7
V1LayerParameter    ``name`` = 4, ``type`` = 5 (enum), ``blobs`` = 6; ``layer`` = 1 (V0: ``name`` = 1,
                    ``blobs`` = 50)
BlobProto           ``shape`` = 7 (BlobShape ``dim`` = 1), legacy ``num/channels/height/width`` = 1..4,
                    ``data`` = 5 (float), ``double_data`` = 8 (double); packed or unpacked
==================  ==================================================================================

Blobs without ``shape`` use the legacy 4-D dims; for biases (``1 x 1 x 1 x N``) the leading ones are dropped.
The file is read once into memory and packed float runs become NumPy views of it (the 538 MB FCN-8s model needs
about its own size in RAM, plus the checkpoint copy while it is written).

Usage::

    python -m src.metrics.caffemodel --caffemodel fcn-8s-cityscapes.caffemodel --out fcn8s_cityscapes.ckpt
"""

import argparse
import os
import struct
import sys

import numpy as np

from src.cli import main_wrapper
from src.errors import UserError

# ----------------------------------------------------------------------------------------------------------------------
# Wire format
# ----------------------------------------------------------------------------------------------------------------------

_VARINT, _FIXED64, _LEN, _SGROUP, _EGROUP, _FIXED32 = 0, 1, 2, 3, 4, 5


class _Malformed(Exception):
    pass


def _varint(buf, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise _Malformed("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _Malformed("varint longer than 10 bytes")


def _fields(buf, start=0, end=None):
    """Yield ``(field number, wire type, value)``; ``value`` is an int for varints/fixed, a (start, end) span for
    length-delimited fields."""
    pos = start
    end = len(buf) if end is None else end
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _FIXED64:
            value = (pos, pos + 8)
            pos += 8
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            value = (pos, pos + length)
            pos += length
        elif wire == _FIXED32:
            value = (pos, pos + 4)
            pos += 4
        elif wire == _SGROUP:  # deprecated groups: skip to the matching end-group
            depth = 1
            while depth:
                key, pos = _varint(buf, pos)
                w = key & 7
                if w == _SGROUP:
                    depth += 1
                elif w == _EGROUP:
                    depth -= 1
                elif w == _VARINT:
                    _, pos = _varint(buf, pos)
                elif w == _FIXED64:
                    pos += 8
                elif w == _FIXED32:
                    pos += 4
                elif w == _LEN:
                    length, pos = _varint(buf, pos)
                    pos += length
                else:
                    raise _Malformed(f"unknown wire type {w}")
            continue
        else:
            raise _Malformed(f"unknown wire type {wire} (field {field})")
        if pos > end:
            raise _Malformed(f"field {field} runs past the end of its message")
        yield field, wire, value


def _packed_varints(buf, span):
    out = []
    pos, end = span
    while pos < end:
        value, pos = _varint(buf, pos)
        out.append(value)
    return out


def _parse_blob(buf, span):
    """BlobProto -> float32 array with its shape."""
    start, end = span
    dims = None
    legacy = {}
    float_runs = []  # packed runs (views) and unpacked scalars, in order
    double_runs = []
    for field, wire, value in _fields(buf, start, end):
        if field == 7 and wire == _LEN:  # BlobShape
            dims = []
            for f2, w2, v2 in _fields(buf, *value):
                if f2 == 1:
                    dims.extend(_packed_varints(buf, v2) if w2 == _LEN else [v2])
        elif field in (1, 2, 3, 4) and wire == _VARINT:
            legacy[field] = value
        elif field == 5:
            if wire == _LEN:
                a, b = value
                if (b - a) % 4:
                    raise _Malformed("packed float data length is not a multiple of 4")
                float_runs.append(np.frombuffer(buf, dtype="<f4", count=(b - a) // 4, offset=a))
            elif wire == _FIXED32:
                float_runs.append(np.frombuffer(buf, dtype="<f4", count=1, offset=value[0]))
        elif field == 8:
            if wire == _LEN:
                a, b = value
                if (b - a) % 8:
                    raise _Malformed("packed double data length is not a multiple of 8")
                double_runs.append(np.frombuffer(buf, dtype="<f8", count=(b - a) // 8, offset=a))
            elif wire == _FIXED64:
                double_runs.append(np.frombuffer(buf, dtype="<f8", count=1, offset=value[0]))
        # diff = 6, double_diff = 9 and anything else: skipped
    if float_runs:
        data = float_runs[0] if len(float_runs) == 1 else np.concatenate(float_runs)
    elif double_runs:
        data = np.concatenate(double_runs).astype(np.float32)
    else:
        data = np.zeros(0, dtype=np.float32)
    if dims is None:
        dims = [legacy.get(i, 1 if legacy else 0) for i in (1, 2, 3, 4)] if legacy else [data.size]
        while len(dims) > 1 and dims[0] == 1:  # legacy 1 x 1 x 1 x N bias -> N; 1 x 1 x H x W -> H x W
            dims = dims[1:]
    dims = [int(d) for d in dims]
    if int(np.prod(dims, dtype=np.int64)) != data.size:
        raise _Malformed(f"blob shape {tuple(dims)} does not match its {data.size} values")
    return data.reshape(dims)


def _parse_layer(buf, span, name_field, type_field, blobs_field):
    name, kind, blobs = None, None, []
    for field, wire, value in _fields(buf, *span):
        if field == name_field and wire == _LEN:
            name = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace")
        elif field == type_field:
            kind = bytes(buf[value[0] : value[1]]).decode("utf-8", "replace") if wire == _LEN else int(value)
        elif field == blobs_field and wire == _LEN:
            blobs.append(_parse_blob(buf, value))
        elif name_field == 4 and field == 1 and wire == _LEN:  # V1 layer wrapping a V0 layer
            v0_name, v0_kind, v0_blobs = _parse_layer(buf, value, 1, 2, 50)
            name = name or v0_name
            kind = kind if kind is not None else v0_kind
            blobs.extend(v0_blobs)
    return name, kind, blobs


def parse_caffemodel_bytes(data, path="<bytes>"):
    """Parse a serialized ``NetParameter``: returns ``{layer name: [blob arrays]}`` in file order.

    Layers without blobs (ReLU, pooling, crops, ...) are left out. Raises :class:`UserError` on malformed data.
    """
    buf = memoryview(data).cast("B") if not isinstance(data, memoryview) else data
    layers = {}
    try:
        for field, wire, value in _fields(buf):
            if wire != _LEN or field not in (2, 100):
                continue
            if field == 100:
                name, _, blobs = _parse_layer(buf, value, 1, 2, 7)
            else:
                name, _, blobs = _parse_layer(buf, value, 4, 5, 6)
            if blobs:
                if name is None:
                    raise _Malformed("a layer with weights has no name")
                if name in layers:
                    raise _Malformed(f"layer '{name}' appears twice")
                layers[name] = blobs
    except (_Malformed, struct.error, ValueError) as exc:
        raise UserError(
            f"{path} is not a readable Caffe NetParameter ({exc}); pass the binary .caffemodel, not a .prototxt"
        ) from None
    return layers


def read_caffemodel(path):
    """Read the weight blobs of a ``.caffemodel`` file: ``{layer name: [weight, bias?]}`` (float32 arrays)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"caffemodel not found: {path}; download fcn-8s-cityscapes.caffemodel (see README)")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise UserError(f"{path} is empty; download the caffemodel again")
    layers = parse_caffemodel_bytes(data, path)
    if not layers:
        raise UserError(f"{path} holds no layer with weights; is it a Caffe .caffemodel?")
    return layers


# ----------------------------------------------------------------------------------------------------------------------
# The Cityscapes FCN-8s (scripts/eval_cityscapes/caffemodel/deploy.prototxt of pix2pix / CycleGAN)
# ----------------------------------------------------------------------------------------------------------------------

FCN8S_NUM_OUTPUTS = 20

# (layer, kind, input layer whose output width feeds it ("data" = 3), kernel); full widths in FCN8S_FULL_WIDTHS.
FCN8S_LAYERS = (
    ("conv1_1", "conv", "data", 3),
    ("conv1_2", "conv", "conv1_1", 3),
    ("conv2_1", "conv", "conv1_2", 3),
    ("conv2_2", "conv", "conv2_1", 3),
    ("conv3_1", "conv", "conv2_2", 3),
    ("conv3_2", "conv", "conv3_1", 3),
    ("conv3_3", "conv", "conv3_2", 3),
    ("conv4_1", "conv", "conv3_3", 3),
    ("conv4_2", "conv", "conv4_1", 3),
    ("conv4_3", "conv", "conv4_2", 3),
    ("conv5_1", "conv", "conv4_3", 3),
    ("conv5_2", "conv", "conv5_1", 3),
    ("conv5_3", "conv", "conv5_2", 3),
    ("fc6_cs", "conv", "conv5_3", 7),
    ("fc7_cs", "conv", "fc6_cs", 1),
    ("score_fr", "conv", "fc7_cs", 1),
    ("upscore2", "deconv", "score_fr", 4),
    ("score_pool4", "conv", "conv4_3", 1),
    ("upscore_pool4", "deconv", "score_fr", 4),
    ("score_pool3", "conv", "conv3_3", 1),
    ("upscore8", "deconv", "score_fr", 16),
)
FCN8S_FULL_WIDTHS = {
    "conv1_1": 64, "conv1_2": 64, "conv2_1": 128, "conv2_2": 128,
    "conv3_1": 256, "conv3_2": 256, "conv3_3": 256,
    "conv4_1": 512, "conv4_2": 512, "conv4_3": 512, "conv5_1": 512, "conv5_2": 512, "conv5_3": 512,
    "fc6_cs": 4096, "fc7_cs": 4096,
    "score_fr": FCN8S_NUM_OUTPUTS, "upscore2": FCN8S_NUM_OUTPUTS, "score_pool4": FCN8S_NUM_OUTPUTS,
    "upscore_pool4": FCN8S_NUM_OUTPUTS, "score_pool3": FCN8S_NUM_OUTPUTS, "upscore8": FCN8S_NUM_OUTPUTS,
}  # fmt: skip
FCN8S_PARAM_COUNT = 134_473_084
"""Parameters of the full-width Cityscapes FCN-8s."""


def expected_shapes(widths=None):
    """``{layer: (weight shape, bias shape or None)}`` of the FCN-8s for the given widths (default: full)."""
    widths = dict(FCN8S_FULL_WIDTHS if widths is None else widths)
    widths["data"] = 3
    shapes = {}
    for name, kind, src, k in FCN8S_LAYERS:
        c_in, c_out = widths[src], widths[name]
        if kind == "conv":
            shapes[name] = ((c_out, c_in, k, k), (c_out,))
        else:  # Caffe deconv blob: (C_in, C_out / group, kh, kw), no bias
            shapes[name] = ((c_in, c_out, k, k), None)
    return shapes


def widths_from_blobs(layers):
    """Channel widths read from the blobs (conv: ``weight.shape[0]``, deconv: ``weight.shape[1]``)."""
    widths = {}
    for name, kind, _, _ in FCN8S_LAYERS:
        if name in layers and layers[name] and np.ndim(layers[name][0]) == 4:
            widths[name] = int(layers[name][0].shape[0 if kind == "conv" else 1])
    return widths


def validate_fcn8s(layers, path, allow_reduced_width=False):
    """Check that ``layers`` (from :func:`read_caffemodel`) is the Cityscapes FCN-8s; return its widths.

    Every expected layer must be present with a weight (and a bias for convolutions) of the expected shape. With
    ``allow_reduced_width`` the channel widths may differ from the full model (tests use width-reduced synthetic
    models), but kernels, the 20 outputs and the wiring between layers must still agree.
    """
    names = [n for n, _, _, _ in FCN8S_LAYERS]
    missing = [n for n in names if n not in layers]
    if missing:
        extra = [n for n in layers if n not in names]
        hint = ""
        if "fc6" in layers or "score59" in layers or any(n.startswith("score") and n not in names for n in extra):
            hint = " (this looks like another FCN, e.g. the PASCAL VOC/Context one; use fcn-8s-cityscapes.caffemodel)"
        raise UserError(
            f"{path} is not the Cityscapes FCN-8s: layer '{missing[0]}' is missing ({len(missing)} of {len(names)} "
            f"expected layers missing; the file has {', '.join(list(layers)[:6])}{', ...' if len(layers) > 6 else ''})"
            f"{hint}"
        )
    widths = FCN8S_FULL_WIDTHS
    if allow_reduced_width:
        widths = widths_from_blobs(layers)
        widths.update({n: FCN8S_NUM_OUTPUTS for n in ("score_fr", "upscore2", "score_pool4")})
        widths.update({n: FCN8S_NUM_OUTPUTS for n in ("upscore_pool4", "score_pool3", "upscore8")})
    expected = expected_shapes(widths)
    for name, _, _, _ in FCN8S_LAYERS:
        w_shape, b_shape = expected[name]
        blobs = layers[name]
        want = 1 if b_shape is None else 2
        if len(blobs) != want:
            raise UserError(
                f"{path}: layer '{name}' has {len(blobs)} blobs, expected {want} "
                f"({'weight' if want == 1 else 'weight and bias'}); not the Cityscapes FCN-8s"
            )
        got = [tuple(b.shape) for b in blobs]
        wanted = [w_shape] + ([b_shape] if b_shape else [])
        for what, g, w in zip(("weight", "bias"), got, wanted):
            if g != w:
                raise UserError(
                    f"{path}: layer '{name}' {what} has shape {g}, expected {w} (Cityscapes FCN-8s"
                    f"{'' if allow_reduced_width else ', full width'}); wrong model file?"
                )
    return {n: widths[n] for n in names}


def fcn8s_param_dict(layers):
    """``{MindSpore parameter name: float32 array}`` for :class:`src.metrics.fcn8s.FCN8s` (names ``<layer>.weight``,
    ``<layer>.bias``). Caffe and MindSpore agree on the layouts (conv ``(out, in, kh, kw)``, deconv
    ``(in, out, kh, kw)``), so arrays are copied unchanged."""
    params = {}
    for name, _, _, _ in FCN8S_LAYERS:
        blobs = layers[name]
        params[f"{name}.weight"] = np.ascontiguousarray(blobs[0], dtype=np.float32)
        if len(blobs) > 1:
            params[f"{name}.bias"] = np.ascontiguousarray(blobs[1], dtype=np.float32)
    return params


def convert_caffemodel(caffemodel, out, allow_reduced_width=False, log=print):
    """Read, validate and write the FCN-8s weights as a MindSpore checkpoint (atomically). Returns ``out``."""
    import mindspore as ms

    from src.common.checkpoint import save_with_meta

    layers = read_caffemodel(caffemodel)
    validate_fcn8s(layers, caffemodel, allow_reduced_width=allow_reduced_width)
    params = fcn8s_param_dict(layers)
    count = sum(int(v.size) for v in params.values())
    entries = [{"name": k, "data": ms.Tensor(v)} for k, v in params.items()]
    meta = {"segmenter": "fcn8s", "source": os.path.basename(os.fspath(caffemodel))}
    save_with_meta(entries, out, meta)
    log(f"wrote {out}: FCN-8s, {len(params)} tensors, {count:,} parameters (from {caffemodel})")
    return out


def run(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m src.metrics.caffemodel",
        description="Convert fcn-8s-cityscapes.caffemodel into a MindSpore checkpoint (no Caffe needed).",
    )
    parser.add_argument("--caffemodel", required=True, help="path of fcn-8s-cityscapes.caffemodel")
    parser.add_argument("--out", required=True, help="checkpoint to write, e.g. fcn8s_cityscapes.ckpt")
    parser.add_argument(
        "--allow_reduced_width", action="store_true", help="accept width-reduced synthetic models (tests, demos)"
    )
    args = parser.parse_args(argv)
    convert_caffemodel(args.caffemodel, args.out, allow_reduced_width=args.allow_reduced_width)


def main(argv=None):
    return main_wrapper(run, argv)


if __name__ == "__main__":
    sys.exit(main())
