"""The launch scripts that cannot run here (rank table on Ascend, mpirun on GPU) and the pix2pixHD 512p wrappers:
argument checks, device-count checks, the commands they build, failures in one line; and how src/device.py picks
the device of a rank for each launcher. The msrun runs themselves are in test_distributed.py."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO

SCRIPTS = os.path.join(REPO, "scripts")
PY_PATH = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]


def _run(script, *args, **env):
    full_env = dict(os.environ, PATH=PY_PATH, PYTHONPATH=REPO)
    for key in ("DRY_RUN", "CUDA_VISIBLE_DEVICES", "DEVICE_TARGET", "LOG_DIR"):
        full_env.pop(key, None)
    full_env.update({k: str(v) for k, v in env.items()})
    return subprocess.run(
        ["bash", os.path.join(SCRIPTS, script)] + [str(a) for a in args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=REPO,
    )


def _one_line_error(res, text, code=2):
    lines = res.stderr.strip().splitlines()
    assert res.returncode == code and len(lines) == 1 and text in lines[0], (res.returncode, res.stderr)
    return lines[0]


def _table_v1(path, device_ids, servers=1):
    per = len(device_ids) // servers
    server_list = [
        {
            "server_id": f"10.0.0.{s + 1}",
            "device": [
                {"device_id": str(d), "device_ip": f"192.{i}.0.6", "rank_id": str(s * per + i)}
                for i, d in enumerate(device_ids[s * per : (s + 1) * per])
            ],
            "host_nic_ip": "reserve",
        }
        for s in range(servers)
    ]
    path.write_text(json.dumps({"version": "1.0", "server_count": str(servers), "server_list": server_list}))
    return str(path)


def _table_seed001(path):
    """The older layout printed in seed 001 (4 devices, ids 4..7, on one instance)."""
    devices = [{"device_id": str(d), "device_ip": f"192.{d}.0.1"} for d in (4, 5, 6, 7)]
    table = {
        "status": "completed",
        "group_count": "1",
        "group_list": [
            {
                "group_name": "worker",
                "device_count": "4",
                "instance_count": "1",
                "instance_list": [{"pod_name": "p", "server_id": "192.168.0.99", "devices": devices}],
            }
        ],
    }
    path.write_text(json.dumps(table))
    return str(path)


# ----- rank table launch (Ascend)
def test_ascend_rank_table_argument_checks(tmp_path):
    script = "run_distribute_train_ascend.sh"
    data = tmp_path / "data"
    data.mkdir()
    table = _table_v1(tmp_path / "rank_table_2pcs.json", [0, 1])
    res = _run(script)
    assert res.returncode == 2 and f"Usage: bash scripts/{script}" in res.stderr
    _one_line_error(_run(script, tmp_path / "none.json", 2, "pix2pix", data, "-"), "rank table file not found")
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": "1.0", ')
    _one_line_error(_run(script, bad, 2, "pix2pix", data, "-"), "is not readable JSON")
    other = tmp_path / "other.json"
    other.write_text('{"devices": []}')
    _one_line_error(_run(script, other, 2, "pix2pix", data, "-"), "neither 'server_list' nor 'group_list'")
    _one_line_error(_run(script, table, "two", "pix2pix", data, "-"), "DEVICE_NUM must be a positive integer")
    _one_line_error(_run(script, table, 2, "pix2pix", tmp_path / "nope", "-"), "dataset folder not found")
    _one_line_error(_run(script, table, 2, "pix2pix", data, tmp_path / "nope.yaml"), "config not found")
    # the device count must match the rank table
    line = _one_line_error(_run(script, table, 8, "pix2pix", data, "-"), "DEVICE_NUM 8 does not match the 2 devices")
    assert "rank_table_2pcs.json" in line
    seed_table = _table_seed001(tmp_path / "seed001.json")
    _one_line_error(_run(script, seed_table, 8, "pix2pix", data, "-"), "does not match the 4 devices")
    two_servers = _table_v1(tmp_path / "rank_table_16pcs.json", list(range(8)) * 2, servers=2)
    _one_line_error(_run(script, two_servers, 16, "pix2pix", data, "-"), "lists devices on 2 servers")


def test_ascend_rank_table_sets_rank_and_device_of_every_process(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    config = os.path.join(REPO, "configs", "pix2pixhd_512p.yaml")
    res = _run(
        "run_distribute_train_ascend.sh", _table_seed001(tmp_path / "t.json"), 4, "pix2pixhd", data, config,
        "--no_vgg_loss", "True", DRY_RUN=1, LOG_DIR=tmp_path / "logs",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 4
    for rank, line in enumerate(lines):
        assert f"RANK_TABLE_FILE={tmp_path / 't.json'} RANK_SIZE=4 RANK_ID={rank} DEVICE_ID={rank + 4} " in line
        assert "train.py --model pix2pixhd" in line and f"--dataroot {data}" in line
        assert f"--config_path {config}" in line and "--device_target Ascend --run_distribute True" in line
        assert line.endswith(f"--no_vgg_loss True > {tmp_path / 'logs'}/worker_{rank}.log")


def test_ascend_launch_without_ascend_fails_in_one_line(tmp_path):
    """On this CPU-only MindSpore both ranks start and fail at once; the script stops and says why in one line."""
    data = tmp_path / "data"
    data.mkdir()
    logs = tmp_path / "logs"
    table = _table_v1(tmp_path / "t.json", [0, 1])
    res = _run("run_distribute_train_ascend.sh", table, 2, "pix2pix", data, "-", LOG_DIR=logs)
    line = _one_line_error(res, "a rank failed, the others were stopped: error: ", code=1)
    assert "cannot run on Ascend" in line
    assert sorted(os.listdir(logs)) == ["worker_0.log", "worker_1.log"]


# ----- mpirun launch (GPU)
def _fake_bin(tmp_path, mpirun_body):
    """A folder with a stand-in ``mpirun`` (OpenMPI is not installed here)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    (folder / "mpirun").write_text("#!/bin/sh\n" + mpirun_body)
    (folder / "mpirun").chmod(0o755)
    return str(folder) + os.pathsep + PY_PATH


def test_gpu_mpirun_argument_checks(tmp_path):
    script = "run_distribute_train_gpu.sh"
    data = tmp_path / "data"
    data.mkdir()
    res = _run(script, 2, "pix2pix")
    assert res.returncode == 2 and f"Usage: bash scripts/{script}" in res.stderr
    _one_line_error(_run(script, 0, "pix2pix", data, "-"), "DEVICE_NUM must be a positive integer")
    _one_line_error(_run(script, 2, "pix2pix", tmp_path / "nope", "-"), "dataset folder not found")
    _one_line_error(_run(script, 2, "pix2pix", data, tmp_path / "c.yaml"), "config not found")
    # more processes than visible GPUs
    path = _fake_bin(tmp_path, "exit 0\n")
    res = _run(script, 2, "pix2pix", data, "-", PATH=path, CUDA_VISIBLE_DEVICES="0")
    _one_line_error(res, "2 processes requested but only 1 GPUs are visible")


@pytest.mark.skipif(shutil.which("mpirun") is not None, reason="OpenMPI is installed here")
def test_gpu_script_without_mpirun_says_so(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    line = _one_line_error(_run("run_distribute_train_gpu.sh", 2, "pix2pix", data, "-"), "mpirun not found")
    assert "scripts/run_distribute_train.sh" in line  # points to msrun


def test_gpu_mpirun_command_and_failure(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    logs = tmp_path / "logs"
    record = tmp_path / "argv.txt"
    path = _fake_bin(tmp_path, f'printf "%s\\n" "$@" > {record}\necho "end of epoch 1/1: 1.0 s"\n')
    res = _run("run_distribute_train_gpu.sh", 2, "cyclegan", data, "-", "--lr", "1e-4", PATH=path, LOG_DIR=logs,
               CUDA_VISIBLE_DEVICES="0,1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    argv = record.read_text().splitlines()
    assert argv[:4] == ["-n", "2", "--allow-run-as-root", "--output-filename"]
    tail = " ".join(argv[argv.index("train.py") :])
    assert tail == f"train.py --model cyclegan --dataroot {data} --device_target GPU --run_distribute True --lr 1e-4"
    assert "end of epoch 1/1" in res.stdout and (logs / "mpirun.log").is_file()
    # a rank fails: its error line reaches the user
    path = _fake_bin(tmp_path, 'echo "error: dataset has 1 images, fewer than batch_size 1 x 2 devices"\nexit 1\n')
    res = _run("run_distribute_train_gpu.sh", 2, "cyclegan", data, "-", PATH=path, LOG_DIR=logs)
    _one_line_error(res, "a rank failed: error: dataset has 1 images", code=1)


# ----- seed 002's pix2pixHD wrappers (the msrun run is in test_distributed.py)
@pytest.mark.parametrize("script", ["distribute_train_512p.sh", "distribute_train_512p_feat.sh"])
def test_pix2pixhd_512p_wrappers_check_their_arguments(tmp_path, script):
    data = tmp_path / "data"
    data.mkdir()
    res = _run(script, 8, "True")
    usage = f"Usage: bash scripts/{script} [DEVICE_NUM] [DISTRIBUTE] [DATASET_PATH]"
    assert res.returncode == 2 and usage in res.stderr
    _one_line_error(_run(script, "eight", "True", data), "DEVICE_NUM must be a positive integer")
    _one_line_error(_run(script, 8, "yes", data), "DISTRIBUTE must be True or False")
    _one_line_error(_run(script, 8, "False", data), "DISTRIBUTE False trains on one device")
    _one_line_error(_run(script, 8, "True", tmp_path / "nope"), "dataset folder not found")


# ----- src/device.py: the device of a rank under each launcher
def test_device_of_a_rank_per_launcher():
    from src.device import distributed_device_id, launcher
    from src.errors import UserError

    msrun = {"MS_ROLE": "MS_WORKER", "MS_NODE_ID": "1"}
    mpi = {"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_SIZE": "8"}
    table = {"RANK_TABLE_FILE": "/x.json", "RANK_ID": "2", "DEVICE_ID": "6"}
    assert [launcher(e) for e in (msrun, mpi, table, {})] == ["msrun", "mpirun", "rank_table", "single"]
    assert distributed_device_id(msrun) is None  # msrun negotiates the devices itself
    assert distributed_device_id(mpi) == 1  # the local rank, not the global one
    assert distributed_device_id(table) == 6
    assert distributed_device_id({}) is None
    with pytest.raises(UserError, match="DEVICE_ID is not set"):
        distributed_device_id({"RANK_TABLE_FILE": "/x.json"})


def test_mindspore_reads_openmpi_environment_as_device_py_expects():
    """``mindspore.communication`` copies OpenMPI's variables into RANK_ID / DEVICE_ID / RANK_SIZE when imported;
    src/device.py then asks for the same device (set_device with no id would mean device 0 on every rank)."""
    code = (
        "import os; import mindspore; from src.device import launcher, distributed_device_id; "
        "print(os.environ['RANK_ID'], os.environ['DEVICE_ID'], os.environ['RANK_SIZE'], launcher(), "
        "distributed_device_id())"
    )
    env = dict(os.environ, PYTHONPATH=REPO, OMPI_COMM_WORLD_RANK="3", OMPI_COMM_WORLD_LOCAL_RANK="1",
               OMPI_COMM_WORLD_SIZE="4")  # fmt: skip
    for key in ("MS_ROLE", "RANK_ID", "DEVICE_ID", "RANK_SIZE", "RANK_TABLE_FILE"):
        env.pop(key, None)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["3", "1", "4", "mpirun", "1"]


def test_run_distribute_without_a_launcher_is_one_line(tmp_path, monkeypatch, capsys):
    import train as train_script
    from src.cli import main_wrapper

    for key in ("MS_ROLE", "OMPI_COMM_WORLD_RANK", "RANK_TABLE_FILE", "MINDSPORE_HCCL_CONFIG_PATH"):
        monkeypatch.delenv(key, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    assert main_wrapper(train_script.run, ["--dataroot", str(data), "--run_distribute", "True"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --run_distribute True needs a launcher"), err


def test_standalone_script_checks_target_and_device_id(tmp_path):
    script = "run_standalone_train.sh"
    res = _run(script, "pix2pix", "CPU")
    assert res.returncode == 2 and f"Usage: bash scripts/{script}" in res.stderr
    _one_line_error(_run(script, "pix2pix", "TPU", 0, tmp_path, "-"), "DEVICE_TARGET must be Ascend, GPU or CPU")
    _one_line_error(_run(script, "pix2pix", "GPU", "first", tmp_path, "-"), "DEVICE_ID must be an integer")
    _one_line_error(_run(script, "pix2pix", "CPU", 0, tmp_path / "nope", "-"), "dataset folder not found")
