"""Spread a sweep's runs over every local device: one ``runs`` mesh axis, ``NamedSharding``, cache-sized groups.

The same code runs on GPUs, TPUs and CPUs. On a CPU, JAX exposes a single device that splits each small matrix
product over all cores, which gains little for the small networks of this field; one *host device per core*, each
training its own share of the runs, can be faster (measured in ``benchmarks/``, see docs/performance.md). Ask
for them before JAX starts its backend, which ``import rulelab`` already does (gymnax creates arrays on import):

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python my_sweep.py      # from the shell, or
    import jax; jax.config.update("jax_num_cpu_devices", 2); import rulelab    # first lines of a script

Runs are laid out along one leading axis and sharded over a one-dimensional mesh whose axis is called ``runs``.
The mesh axis type is ``Auto``: explicit-axis meshes break vmapped scans whose carries start as constants.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

RUNS_AXIS = "runs"
HOST_DEVICE_FLAG = "--xla_force_host_platform_device_count"  # XLA_FLAGS entry: =N host (CPU) devices

# Runs each device holds in one group. CPU: chosen by measurement (docs/performance.md): on 2 EPYC cores, programs of
# 8 vmapped runs beat single runs by 1.1-1.2x for the digits MLP and the recurrent agent, 64 runs only tied and
# 512 lost (0.7-0.9x, and 0.4x for predictive coding) to cache misses. Accelerators: as many runs as fit a share
# of device memory, counting the training state ACTIVATION_ALLOWANCE times over for activations and temporaries.
CPU_RUNS_PER_DEVICE = 8
ACCELERATOR_MAX_RUNS_PER_DEVICE = 4096
ACCELERATOR_MEMORY_FRACTION = 0.5
ACTIVATION_ALLOWANCE = 4


def runs_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-dimensional mesh named ``runs`` over ``devices`` (default: every local device)."""
    devices = list(jax.local_devices() if devices is None else devices)
    return jax.make_mesh((len(devices),), (RUNS_AXIS,), axis_types=(AxisType.Auto,), devices=devices)


def runs_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (runs) axis split over the mesh, every other axis kept whole on each device."""
    return NamedSharding(mesh, PartitionSpec(RUNS_AXIS))


def shard_runs(tree: Any, mesh: Mesh) -> Any:
    """Place every leaf of ``tree`` (leading axis = runs) with its runs spread over ``mesh``."""
    return jax.device_put(tree, runs_sharding(mesh))


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
    """Runs per device for a group: the measured CPU optimum, or what fits an accelerator's memory."""
    if device.platform == "cpu":
        return CPU_RUNS_PER_DEVICE
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
