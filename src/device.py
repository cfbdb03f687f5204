"""Device and run-time set-up: device target, execution mode, seeds, determinism, data-parallel communication.

Import this module before MindSpore in entry scripts: on MindSpore >= 2.9 it sets ``ONEDNN_MAX_CPU_ISA=AVX2`` first,
which keeps convolutions on the fast oneDNN path on AVX-512 CPUs (measured ~90x faster there).
"""

import dataclasses
import os


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

import mindspore as ms  # noqa: E402


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


def init_env(cfg):
    """Set up MindSpore from the config and return a :class:`RunEnv`."""
    target = cfg.device_target
    try:
        ms.set_device(target, None if cfg.run_distribute else int(cfg.device_id))
    except RuntimeError:
        # MindSpore fixes the device once per process (tests build several runs in one process).
        if ms.get_context("device_target") != target:
            raise
    ms.set_context(mode=ms.GRAPH_MODE if cfg.mode == "graph" else ms.PYNATIVE_MODE)
    if cfg.deterministic and not _deterministic_configured():
        ms.set_deterministic(True)
    env = RunEnv(device_target=target)
    if cfg.run_distribute:
        from mindspore.communication import get_group_size, get_rank, init

        init()
        env.rank, env.group_size, env.distributed = get_rank(), get_group_size(), True
        ms.set_auto_parallel_context(
            parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True, device_num=env.group_size
        )
    # Same seed on every rank: identical initial weights; data shards differ by rank.
    ms.set_seed(int(cfg.seed))
    return env
