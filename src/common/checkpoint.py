"""Checkpoint I/O: one contract for every model.

A run directory holds
- ``config.yaml``: the resolved config of the run;
- ``<NET>_latest.ckpt`` and ``<NET>_epoch_<EEE>.ckpt``: the weights of one network (``G``, ``D``, ``G_A``, ...), with
  a JSON ``__meta__`` string (model, network, epoch, global step) so eval/export can refuse another model's file;
- ``resume.ckpt``: everything needed to continue training in ONE file (all networks, all optimizer states, the loop
  position, the learning rate, model extras such as the image pool), so a kill can never leave a mixed set.

Every file is written under a temporary name and renamed (:func:`src.common.fileio.atomic_path`).
"""

import json
import os

import mindspore as ms
import numpy as np

from src.common.fileio import atomic_path
from src.common.tensors import assign
from src.errors import UserError

META_KEY = "__meta__"
STATE_KEY = "__state__"
EXTRA_PREFIX = "extra."
FORMAT_VERSION = 1


def _save(entries, path, strings):
    with atomic_path(path) as tmp:
        ms.save_checkpoint(entries, tmp, append_dict=strings)


def save_with_meta(entries, path, meta):
    """Write ``entries`` (``[{"name", "data"}]``) with a JSON ``__meta__`` dict, atomically."""
    _save(entries, path, {META_KEY: json.dumps(meta)})


def save_network(net, path, model, network, epoch=0, global_step=0):
    """Save one network's parameters (trainable and buffers, e.g. batch-norm statistics) with its metadata."""
    meta = dict(model=model, network=network, epoch=int(epoch), global_step=int(global_step), version=FORMAT_VERSION)
    save_with_meta([{"name": p.name, "data": p} for p in net.get_parameters()], path, meta)


def read_checkpoint(path):
    """Load a checkpoint file into a dict, with a clear error for a missing or unreadable file."""
    if not os.path.isfile(path):
        raise UserError(f"checkpoint not found: {path}")
    try:
        return ms.load_checkpoint(path)
    except (ValueError, RuntimeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path} (truncated or not a MindSpore checkpoint?): {first}") from None


def read_meta(path, params=None):
    """The ``__meta__`` dict of a checkpoint written by this repository ({} for a foreign checkpoint)."""
    params = read_checkpoint(path) if params is None else params
    raw = params.get(META_KEY)
    return json.loads(raw) if isinstance(raw, str) else {}


def load_into(net, params, path, what):
    """Copy ``params`` (name -> Parameter) into ``net``; any missing, unexpected or mis-shaped entry is a UserError."""
    own = {p.name: p for p in net.get_parameters()}
    given = {k: v for k, v in params.items() if k in own or not k.startswith(("__", EXTRA_PREFIX))}
    given = {k: v for k, v in given.items() if k not in (META_KEY, STATE_KEY)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    wrong = [
        f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}"
        for k in sorted(set(own) & set(given))
        if tuple(given[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if wrong:
            parts.append(f"{len(wrong)} shape mismatches (checkpoint vs network), e.g. {wrong[0]}")
        if missing:
            parts.append(f"{len(missing)} parameters missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected parameters, e.g. {unexpected[0]}")
        raise UserError(
            f"checkpoint {path} does not fit {what}: {'; '.join(parts)}. Check that the config (ngf, g_layers, norm, "
            f"...) matches the run that wrote it"
        )
    for name, param in own.items():
        assign(param, given[name])


def load_network(net, path, model, network):
    """Load a network file written by :func:`save_network`, refusing another model's or another network's file."""
    params = read_checkpoint(path)
    meta = read_meta(path, params)
    if meta:
        if meta.get("model") != model:
            raise UserError(
                f"checkpoint {path} belongs to model '{meta.get('model')}', not '{model}'; pass --model "
                f"{meta.get('model')} or a {model} checkpoint"
            )
        if meta.get("network") != network:
            raise UserError(
                f"checkpoint {path} holds network '{meta.get('network')}', but '{network}' is needed here; use "
                f"{os.path.basename(path).replace(str(meta.get('network')), network, 1)}"
            )
    load_into(net, params, path, f"{model} network {network}")
    return meta


def save_resume(path, networks, optimizers, state, extras=None):
    """Write the whole training state into one file.

    ``networks`` and ``optimizers`` map names to Cells; the optimizers' own parameters (moments, step, learning rate)
    are saved, not their references to the network weights. ``state`` is a JSON-serialisable dict; ``extras`` maps
    names to NumPy arrays (e.g. an image pool).
    """
    entries, seen = [], set()
    for net in networks.values():
        for p in net.get_parameters():
            entries.append({"name": p.name, "data": p})
            seen.add(p.name)
    for opt in optimizers.values():
        for p in opt.get_parameters():
            if p.name not in seen:
                entries.append({"name": p.name, "data": p})
                seen.add(p.name)
    for name, arr in (extras or {}).items():
        entries.append({"name": EXTRA_PREFIX + name, "data": ms.Tensor(np.ascontiguousarray(arr))})
    _save(entries, path, {STATE_KEY: json.dumps(state)})


def load_resume(path, networks, optimizers):
    """Restore networks and optimizers from :func:`save_resume`; return ``(state, extras)``."""
    params = read_checkpoint(path)
    raw = params.get(STATE_KEY)
    if not isinstance(raw, str):
        raise UserError(f"{path} is not a resume file written by train.py (no training state inside)")
    for name, net in networks.items():
        names = [p.name for p in net.get_parameters()]
        load_into(net, {k: params[k] for k in names if k in params}, path, f"network {name}")
    for name, opt in optimizers.items():
        own = [p for p in opt.get_parameters()]
        missing = [p.name for p in own if p.name not in params]
        if missing:
            raise UserError(
                f"{path} has no state for optimizer {name} (e.g. {missing[0]}); it was written by another "
                f"model or config"
            )
        for p in own:
            if tuple(params[p.name].shape) != tuple(p.shape):
                raise UserError(
                    f"{path}: optimizer entry {p.name} has shape {tuple(params[p.name].shape)}, "
                    f"expected {tuple(p.shape)}; the config differs from the run that wrote it"
                )
            assign(p, params[p.name])
    extras = {k[len(EXTRA_PREFIX) :]: v.asnumpy() for k, v in params.items() if k.startswith(EXTRA_PREFIX)}
    return json.loads(raw), extras
