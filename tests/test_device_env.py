"""src/device.py's run-time settings: ``MS_DEV_HOST_BLOCKING_RUN`` on the CPU, taken back on accelerators;
``MS_DEV_SIDE_EFFECT_LOAD_ELIM`` (no parameter copies)."""

import os
import subprocess
import sys

from src.device import HOST_BLOCKING_RUN, LOAD_COPIES, keep_host_blocking_on_cpu
from tests.conftest import REPO


def _value_after_import(extra_env, name=HOST_BLOCKING_RUN):
    env = {k: v for k, v in os.environ.items() if k != name}
    env.update(extra_env)
    code = f"import os, src.device; print(os.environ.get({name!r}, 'unset'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_sets_host_blocking_run_unless_the_user_did():
    assert _value_after_import({}) == "1"
    assert _value_after_import({HOST_BLOCKING_RUN: "0"}) == "0"


def test_import_drops_the_parameter_copies_unless_the_user_chose():
    assert _value_after_import({}, LOAD_COPIES) == "3"
    assert _value_after_import({LOAD_COPIES: "1"}, LOAD_COPIES) == "1"


def test_accelerators_get_the_asynchronous_launch_back():
    for target, expected in (("CPU", "1"), ("cpu", "1"), ("GPU", None), ("Ascend", None)):
        environ = {HOST_BLOCKING_RUN: "1"}
        keep_host_blocking_on_cpu(target, environ, set_here=True)
        assert environ.get(HOST_BLOCKING_RUN) == expected, target
    environ = {HOST_BLOCKING_RUN: "1"}  # the user's own setting is kept on every device
    keep_host_blocking_on_cpu("GPU", environ, set_here=False)
    assert environ == {HOST_BLOCKING_RUN: "1"}
