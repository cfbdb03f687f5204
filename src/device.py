"""Device and run-time set-up: device target, execution mode, seeds, determinism, data-parallel communication.

Import this module before MindSpore in entry scripts: on MindSpore >= 2.9 it sets ``ONEDNN_MAX_CPU_ISA=AVX2`` first,
which keeps convolutions on the fast oneDNN path on AVX-512 CPUs (measured ~90x faster there), and it sets
``MS_DEV_HOST_BLOCKING_RUN=1`` (see :data:`HOST_BLOCKING_RUN`), which :func:`init_env` takes back for GPU and Ascend,
and ``MS_DEV_SIDE_EFFECT_LOAD_ELIM=3`` (see :data:`LOAD_COPIES`).
"""

import dataclasses
import os
import re


def _mindspore_version():
    try:
        from importlib.metadata import version

        return tuple(int(p) for p in version("mindspore").split(".")[:2])
    except Exception:  # noqa: BLE001 - not installed as a distribution: assume a recent release
        return (99, 0)


# MindSpore >= 2.9 falls into a reference oneDNN convolution on AVX-512 CPUs (~90x slower); capping the ISA at AVX2
# avoids it. 2.8 has no such problem and is faster with AVX-512 (measured: pix2pix inference 154 vs 210 ms/image).
if _mindspore_version() >= (2, 9):
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("GLOG_v", "3")  # MindSpore C++ log level: errors only

# MindSpore 2.8 runs a compiled graph on its own actor threads while the Python thread waits for the outputs in
# ``AsyncRQueue::Wait``, which spins: on a 2-core CPU the waiting thread took 29% of the process's CPU samples
# against 71% for the two kernel threads (perf, pix2pix step). ``MS_DEV_HOST_BLOCKING_RUN=1`` runs the graph to its
# end before the call returns, so no thread spins: pix2pix 712 -> 405 ms/step, CycleGAN 7.9 -> 5.4 s, pix2pixHD
# 4.4 -> 3.8 s (measured on 2 cores, same outputs). On GPU and Ascend the asynchronous launch is what keeps the
# device busy, so init_env takes the setting back there unless the user set it. MindSpore reads it when the first
# graph runs.
HOST_BLOCKING_RUN = "MS_DEV_HOST_BLOCKING_RUN"
_HOST_BLOCKING_SET_HERE = HOST_BLOCKING_RUN not in os.environ
os.environ.setdefault(HOST_BLOCKING_RUN, "1")

# MindSpore's frontend (its order-enforcing pass) gives every load of a parameter that a graph loads more than once a
# copy (a TensorMove kernel), on top of ordering every reader of a load before the parameter's next update. In
# pix2pixHD's step, which updates G stage by stage while the other stages still read their weights, that copied G's
# and D's weights each step: 1.6 GB, 0.16 s of kernel time, and the step 6.67 -> 6.34 s without them (256x512, same
# sitting, peak unchanged). The ordering alone keeps the values right wherever no single op reads a parameter's
# value both before and after an update, which no graph here does; ``3`` keeps the ordering and drops the copies
# (the training-equivalence tests compare every model's compiled steps with separate passes and the PyTorch
# reference). MindSpore's stricter mode ``2``, which looks for such ops, spent over 9 minutes compiling pix2pixHD's
# step. MindSpore reads the setting when it compiles its first graph; a user's own value is kept.
LOAD_COPIES = "MS_DEV_SIDE_EFFECT_LOAD_ELIM"
os.environ.setdefault(LOAD_COPIES, "3")

import mindspore as ms  # noqa: E402

from src.errors import UserError  # noqa: E402


@dataclasses.dataclass
class RunEnv:
    """What the rest of the program needs to know about the processes it runs in."""

    device_target: str = "CPU"
    rank: int = 0
    group_size: int = 1
    distributed: bool = False

    @property
    def is_main(self):
        """Only rank 0 writes files."""
        return self.rank == 0


def _deterministic_configured():
    """``set_deterministic`` may be called once per process; tests build several runs in one process."""
    try:
        from mindspore.device_manager import DeviceManagerConf

        return DeviceManagerConf.get_instance().is_deterministic_configured()
    except (ImportError, AttributeError):
        return False


def launcher(environ=None):
    """How this process was started: ``msrun`` (MindSpore's dynamic cluster, ``MS_ROLE``), ``mpirun`` (OpenMPI,
    ``OMPI_COMM_WORLD_*``), ``rank_table`` (Ascend, ``RANK_TABLE_FILE`` + ``DEVICE_ID``) or ``single``."""
    environ = os.environ if environ is None else environ
    if environ.get("MS_ROLE"):
        return "msrun"
    if environ.get("OMPI_COMM_WORLD_RANK") is not None:
        return "mpirun"
    if environ.get("RANK_TABLE_FILE") or environ.get("MINDSPORE_HCCL_CONFIG_PATH"):
        return "rank_table"
    return "single"


def distributed_device_id(environ=None):
    """The device of this rank in a data-parallel run, or ``None`` to let MindSpore choose.

    msrun negotiates the devices itself. For the other launchers ``mindspore.set_device(target, None)`` means device
    0 on every rank, so the id is taken from the launcher: OpenMPI's local rank (which
    ``mindspore.communication`` also copies into ``DEVICE_ID`` when it is imported), or the rank table script's
    ``DEVICE_ID``.
    """
    environ = os.environ if environ is None else environ
    how = launcher(environ)
    value = None
    if how == "mpirun":
        value = environ.get("OMPI_COMM_WORLD_LOCAL_RANK")
    elif how == "rank_table":
        value = environ.get("DEVICE_ID")
        if value is None:
            raise UserError(
                "rank table launch: DEVICE_ID is not set; start the ranks with a script that exports it "
                "(scripts/run_distribute_train_ascend.sh)"
            )
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{how} launch: device id '{value}' is not an integer") from None


def keep_host_blocking_on_cpu(target, environ=None, set_here=None):
    """Take back the ``MS_DEV_HOST_BLOCKING_RUN=1`` this module set (see :data:`HOST_BLOCKING_RUN`) when the device
    is not the CPU: accelerators keep MindSpore's asynchronous launch. A value the user set is left alone."""
    environ = os.environ if environ is None else environ
    set_here = _HOST_BLOCKING_SET_HERE if set_here is None else set_here
    if str(target).upper() != "CPU" and set_here:
        environ.pop(HOST_BLOCKING_RUN, None)


def init_env(cfg):
    """Set up MindSpore from the config and return a :class:`RunEnv`."""
    target = cfg.device_target
    if cfg.run_distribute and launcher() == "single":
        raise UserError(
            "--run_distribute True needs a launcher that starts one process per device: "
            "scripts/run_distribute_train.sh (msrun), scripts/run_distribute_train_gpu.sh (mpirun) or "
            "scripts/run_distribute_train_ascend.sh (rank table)"
        )
    try:
        ms.set_device(target, distributed_device_id() if cfg.run_distribute else int(cfg.device_id))
    except RuntimeError as err:
        if "Unsupported device target" in str(err):
            found = re.search(r"only supports one of the (\[[^\]]*\])", str(err))
            supported = f" (it supports {found.group(1)})" if found else ""
            raise UserError(
                f"this MindSpore installation cannot run on {target}{supported}: install the MindSpore package "
                f"for {target} or pass --device_target CPU"
            ) from None
        # MindSpore fixes the device once per process (tests build several runs in one process).
        if ms.get_context("device_target") != target:
            raise
    keep_host_blocking_on_cpu(target)
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == "graph" else ms.PYNATIVE_MODE)
    if cfg.deterministic and not _deterministic_configured():
        ms.set_deterministic(True)
    env = RunEnv(device_target=target)
    if cfg.run_distribute:
        from mindspore.communication import get_group_size, get_rank, init

        try:
            init()
        except RuntimeError as err:
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise UserError(f"{launcher()} launch: mindspore.communication.init() failed: {first}") from None
        env.rank, env.group_size, env.distributed = get_rank(), get_group_size(), True
        ms.set_auto_parallel_context(
            parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=env.group_size
        )
    # Same seed on every rank: identical initial weights; data shards differ by rank.
    ms.set_seed(int(cfg.seed))
    return env
