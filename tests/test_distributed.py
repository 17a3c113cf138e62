"""One program over several processes (``jax.distributed``): two local processes, one CPU device each, train one
grid whose runs are sharded over both; the gathered metrics equal those of a single-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

from rulelab.harness.run import run_grid
from rulelab.harness.train import make_train_program
from rulelab.tasks.supervised import load_dataset
from tests.test_sharding import TINY, assert_same_results

WORKER = textwrap.dedent("""
    import sys
    import jax
    process_id, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=f"localhost:{port}", num_processes=2, process_id=process_id)
    import numpy as np
    from rulelab.harness.run import run_grid
    from rulelab.harness.train import make_train_program
    from rulelab.tasks.supervised import load_dataset
    from tests.test_sharding import TINY
    assert jax.process_count() == 2 and jax.device_count() == 2 and jax.local_device_count() == 1
    program = make_train_program(TINY, load_dataset("digits"))
    result = run_grid(program, {"learning_rate": [1e-3, 3e-2]}, num_seeds=3, devices=jax.devices(), progress=False)
    assert result.plan.num_devices == 2
    np.savez(out, **result.metrics)   # every process holds every run's metrics
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_a_grid_sharded_over_two_processes_equals_the_single_process_grid(tmp_path):
    port = str(free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(i), port, str(tmp_path / f"process{i}.npz")],
                                env={**env, "JAX_PLATFORMS": "cpu"}, cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr[-3000:]
    program = make_train_program(TINY, load_dataset("digits"))
    expected = run_grid(program, {"learning_rate": [1e-3, 3e-2]}, num_seeds=3, progress=False).metrics
    for i in range(2):
        with np.load(tmp_path / f"process{i}.npz") as gathered:
            assert_same_results({k: gathered[k] for k in gathered.files}, expected)
