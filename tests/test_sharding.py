"""Device meshes: the layout rules here; 8 simulated devices and two processes in child processes."""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import dcjax
from configs import digits
from dcjax import sharding
from dcjax.errors import ConfigError

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


@pytest.mark.parametrize("devices,classes,shape", [
    (8, 10, (8, 1)), (8, 100, (8, 1)), (8, 3, (2, 4)), (8, 5, (4, 2)), (6, 4, (3, 2)), (1, 10, (1, 1)),
    (4, 1, (1, 4))])
def test_auto_mesh_shape(devices, classes, shape):
    assert sharding.auto_mesh_shape(devices, classes) == shape


def test_one_device_is_a_trivial_layout():
    assert jax.device_count() == 1
    layout = sharding.class_layout(digits.get_config(), 10)
    assert dict(layout.mesh.shape) == {"classes": 1, "batch": 1}
    assert layout.padded_classes == 10 and layout.batch_shards == 1


def test_mesh_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="product 1"):
        sharding.make_mesh((2, 1), 10)
    with pytest.raises(ConfigError, match="two distinct names"):
        sharding.make_mesh(None, 10, axis_names=("classes", "classes"))


def child_env(devices: int) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT,
               XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    return env


def test_eight_simulated_devices():
    """tests/eight_devices.py: sharded matching, condensation and evaluation equal one device's."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           os.path.join(ROOT, "tests", "eight_devices.py")],
                          env=child_env(8), cwd=ROOT, capture_output=True, text=True, timeout=900)
    print(proc.stdout[-5000:], proc.stderr[-3000:])
    assert proc.returncode == 0
    assert " passed" in proc.stdout and "skipped" not in proc.stdout


TINY = ["--config.ipc=2", "--config.num_iterations=2", "--config.net.width=16", "--config.batch_real=16",
        "--config.inner_loop=5", "--config.eval.num_models=2", "--config.eval.epochs=2",
        "--config.eval.compare_random=False", "--config.class_parallel=unroll"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_condense_together(tmp_path):
    """Two local processes (2 CPU devices each) joined by jax.distributed run bin/condense.py
    unchanged and agree with each other and with a one-process run."""
    workdir = str(tmp_path / "two")
    port = free_port()
    command = [sys.executable, os.path.join(ROOT, "bin", "condense.py"), f"--config={ROOT}/configs/digits.py",
               f"--workdir={workdir}", "--distributed", f"--coordinator_address=127.0.0.1:{port}",
               "--num_processes=2", *TINY]
    procs = [subprocess.Popen(command + [f"--process_id={i}"], env=child_env(2), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err[-3000:]

    summary = json.load(open(os.path.join(workdir, "summary.json")))
    assert summary["processes"] == 2 and len(summary["devices"]) == 4
    assert f"synthetic set sha256 {summary['images_sha256']}" in outputs[1][0]   # process 1 agrees
    assert "test accuracy" in outputs[0][0] and "test accuracy" not in outputs[1][0]

    config = digits.get_config()
    config.ipc, config.num_iterations, config.net.width, config.batch_real, config.inner_loop = 2, 2, 16, 16, 5
    config.eval.num_models, config.class_parallel = 0, "unroll"
    dcjax.condense(config, str(tmp_path / "one"))
    np.testing.assert_allclose(dcjax.load_synthetic(workdir).images,
                               dcjax.load_synthetic(str(tmp_path / "one")).images, atol=1e-5)


def test_a_stop_signal_to_one_process_stops_both_after_the_same_iteration(tmp_path):
    """SIGTERM to process 1 alone: the stop is agreed after an iteration, both processes save that
    iteration's checkpoint together and exit 143; none waits in a collective for the other."""
    import signal
    workdir = str(tmp_path / "two")
    port = free_port()
    command = [sys.executable, os.path.join(ROOT, "bin", "condense.py"), f"--config={ROOT}/configs/digits.py",
               f"--workdir={workdir}", "--distributed", f"--coordinator_address=127.0.0.1:{port}",
               "--num_processes=2", *TINY, "--config.num_iterations=1000", "--config.checkpoint_every=1000",
               "--config.log_every=1"]
    procs = [subprocess.Popen(command + [f"--process_id={i}"], env=child_env(2), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    for line in procs[0].stderr:   # process 0 shows the progress
        if line.startswith("condensing: iteration 2/"):
            procs[1].send_signal(signal.SIGTERM)
            break
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [143, 143], outputs
    stops = [err.strip().splitlines()[-1] for _, err in outputs]
    assert all(s.startswith("stopped by SIGTERM after iteration ") for s in stops) and stops[0] == stops[1]
    done = stops[0].split("after iteration ")[1].split(";")[0]
    assert os.listdir(os.path.join(workdir, "checkpoints")) == [done]
