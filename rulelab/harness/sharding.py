"""Spread a sweep's runs over every local device: one ``runs`` mesh axis, ``NamedSharding``, cache-sized groups.

The same code runs on GPUs, TPUs and CPUs. On a CPU, JAX exposes a single device that splits each small matrix
product over all cores, which gains nothing for the small networks of this field (one core runs a digits-MLP
program as fast as two); one *host device per core*, each training its own share of the runs, doubles a 2-core
machine's throughput (measured in ``benchmarks/harness_scaling.py``, see docs/performance.md). The ``rulelab``
command asks for them itself (``use_host_device_per_core``); a script must ask before JAX starts its backend:

    import rulelab
    rulelab.use_host_device_per_core()      # before the first JAX computation
    # or from the shell: XLA_FLAGS=--xla_force_host_platform_device_count=2 python my_sweep.py

Runs are laid out along one leading axis and sharded over a one-dimensional mesh whose axis is called ``runs``.
The mesh axis type is ``Auto``: explicit-axis meshes break vmapped scans whose carries start as constants.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

RUNS_AXIS = "runs"
HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"  # XLA_FLAGS entry: =N host (CPU) devices

# Runs each device holds in one group. CPU: chosen by measurement (docs/performance.md, harness_scaling_idle.json and
# harness_scaling_mnist_idle.json, 2 idle EPYC cores with 1 MiB of L2 each, one host device per core): a group's
# training state should stay near the core's cache. Digits MLP (0.31 MB of state per run): 4 runs per device beat
# 8 (1.12x), 16 (1.29x) and 1 (1.37x). MNIST-shaped 784-256-256-10 MLP (3.2 MB per run): 1 run per device beat
# 2 (1.10x), 4 (1.41x) and 8 (1.59x). Hence at most CPU_GROUP_STATE_BYTES of state per device, between 1 and
# CPU_RUNS_PER_DEVICE runs. Accelerators: as many runs as fit a share of device memory, counting the training
# state ACTIVATION_ALLOWANCE times over for activations and temporaries.
CPU_RUNS_PER_DEVICE = 4
CPU_GROUP_STATE_BYTES = 3 * 2**19  # 1.5 MiB
ACCELERATOR_MAX_RUNS_PER_DEVICE = 4096
ACCELERATOR_MEMORY_FRACTION = 0.5
ACTIVATION_ALLOWANCE = 4


HOST_DEVICES_ENV = "RULELAB_HOST_DEVICES"  # host devices the rulelab command asks for (1 turns the split off)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def use_host_device_per_core(count: int | None = None) -> int | None:
    """Ask JAX for ``count`` host (CPU) devices, default one per usable core; return the count set, or None.

    Does nothing (returns None) when JAX's backend has already started, or when the user chose already through
    ``XLA_FLAGS`` (``--xla_force_host_platform_device_count``), ``JAX_NUM_CPU_DEVICES`` or ``RULELAB_HOST_DEVICES``
    (which, when set, replaces the default count). Accelerators are unaffected: JAX still computes on them.
    """
    from jax._src import xla_bridge  # the only way to ask whether the backend has started without starting it

    if HOST_DEVICE_FLAG in os.environ.get("XLA_FLAGS", "") or "JAX_NUM_CPU_DEVICES" in os.environ:
        return None
    if count is None:
        requested = os.environ.get(HOST_DEVICES_ENV, "").strip()
        if requested and (not requested.isdigit() or int(requested) < 1):
            raise ValueError(f"{HOST_DEVICES_ENV} must be a positive integer, got {requested!r}")
        count = int(requested) if requested else usable_cores()
    if count < 1:
        raise ValueError(f"host device count must be positive, got {count}")
    if xla_bridge.backends_are_initialized():
        return None
    jax.config.update("jax_num_cpu_devices", count)
    return count


def runs_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh named ``runs`` over ``devices`` (default: every local device)."""
    devices = list(jax.local_devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), (RUNS_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def runs_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (runs) axis split over the mesh, every other axis kept whole on each device."""
    return NamedSharding(mesh, PartitionSpec(RUNS_AXIS))


def shard_runs(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` (leading axis = runs) with its runs spread over ``mesh``.

    In a multi-process program (``jax.distributed``) the mesh spans devices this process cannot address; every
    process then holds the whole run table (built from the same configuration) and contributes its own shards.
    """
    sharding = runs_sharding(mesh)
    if sharding.is_fully_addressable:
        return jax.device_put(tree, sharding)
    return jax.tree.map(lambda leaf: _global_runs_array(leaf, sharding), tree)


def _global_runs_array(leaf: Any, sharding: NamedSharding) -> jax.Array:
    """A global array over a multi-process mesh, each process filling its addressable shards from ``leaf``."""
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        data = _global_runs_array(jax.random.key_data(leaf), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
    host = np.asarray(leaf)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


class RunPlan(NamedTuple):
    """How ``num_runs`` runs are cut into groups: each group gives every device ``runs_per_device`` runs."""

    num_runs: int
    num_devices: int
    runs_per_device: int

    @property
    def group_size(self) -> int:
        return self.num_devices * self.runs_per_device

    @property
    def num_groups(self) -> int:
        return math.ceil(self.num_runs / self.group_size)

    @property
    def padded_runs(self) -> int:
        return self.num_groups * self.group_size

    def group(self, index: int) -> slice:
        """Positions of group ``index`` in the padded runs axis."""
        return slice(index * self.group_size, (index + 1) * self.group_size)


def default_runs_per_device(state_bytes_per_run: int, device: jax.Device) -> int:
    """Runs per device for a group: on CPU what keeps the group's state near the cache (measured), on an
    accelerator what fits its memory."""
    if device.platform == "cpu":
        return int(np.clip(CPU_GROUP_STATE_BYTES // max(1, state_bytes_per_run), 1, CPU_RUNS_PER_DEVICE))
    limit = (device.memory_stats() or {}).get("bytes_limit")
    if not limit:
        return ACCELERATOR_MAX_RUNS_PER_DEVICE
    fitting = ACCELERATOR_MEMORY_FRACTION * limit // (ACTIVATION_ALLOWANCE * max(1, state_bytes_per_run))
    return int(np.clip(fitting, 1, ACCELERATOR_MAX_RUNS_PER_DEVICE))


def plan_runs(num_runs: int, num_devices: int, max_runs_per_device: int) -> RunPlan:
    """Fewest groups of at most ``max_runs_per_device`` runs per device, balanced so that padding is minimal."""
    if num_runs <= 0 or num_devices <= 0 or max_runs_per_device <= 0:
        raise ValueError(f"runs, devices and runs per device must be positive, got "
                         f"{num_runs}, {num_devices}, {max_runs_per_device}")
    num_groups = math.ceil(num_runs / (num_devices * max_runs_per_device))
    return RunPlan(num_runs, num_devices, math.ceil(num_runs / (num_groups * num_devices)))


def pad_runs(tree: Any, padded_runs: int) -> Any:
    """Repeat the last run until the leading axis has ``padded_runs`` entries (the copies are discarded later)."""

    def pad(leaf):
        extra = padded_runs - leaf.shape[0]
        return leaf if extra == 0 else jax.numpy.concatenate([leaf, jax.numpy.repeat(leaf[-1:], extra, axis=0)])

    return jax.tree.map(pad, tree)


def tree_bytes_per_run(tree: Any) -> int:
    """Bytes of one run's slice of ``tree`` (a pytree of arrays or shape-dtype structs with a leading runs axis)."""
    return sum(math.prod(leaf.shape[1:]) * leaf.dtype.itemsize for leaf in jax.tree.leaves(tree))
