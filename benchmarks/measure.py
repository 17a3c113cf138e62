"""Measuring helpers shared by the benchmarks: median timings, this machine's matmul peak, the context of a run.

Machines are noisy (and this one is shared), so every benchmark records the load average next to its numbers and
quotes ratios of quantities measured in the same run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Timing(NamedTuple):
    wall_s: float  # elapsed time
    cpu_s: float  # CPU time of this process (all threads): what the work cost, whatever else the machine runs


def timed(call: Callable[[], Any]) -> Timing:
    """Wall and process CPU time of one ``call`` (which must block until its work is done)."""
    wall, cpu = time.perf_counter(), time.process_time()
    call()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def median_seconds(call: Callable[[], Any], *, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``call``."""
    return statistics.median(timed(call).wall_s for _ in range(repeats))


def matmul_call(size: int) -> Callable[[], None]:
    """A warmed-up call of a jitted float32 ``size × size`` matrix product (2 size³ FLOPs) that blocks."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (size, size), jnp.float32)
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    return lambda: product(a, b).block_until_ready()


def matmul_peak_gflops(size: int = 2048, repeats: int = 5) -> float:
    """Median GFLOP/s of a jitted float32 matrix product: this machine's practical peak."""
    return 2 * size**3 / median_seconds(matmul_call(size), repeats=repeats) / 1e9


def run_context() -> dict[str, Any]:
    """Where and when: load average (1, 5, 15 min), cores, devices, library versions."""
    context = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "loadavg": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        import torch

        context["torch"] = torch.__version__
        context["torch_threads"] = torch.get_num_threads()
    except ImportError:
        context["torch"] = None
    return context


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_result(name: str, data: dict[str, Any], out_dir: Path = RESULTS_DIR) -> Path:
    """Write ``data`` (with the load average at the end of the run added) to ``out_dir/name.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {**data, "loadavg_at_end": list(os.getloadavg())}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A fixed-width table: ``columns`` are (key, header, format spec); missing values print as ``-``."""
    widths = [max(len(header), 10) for _, header, _ in columns]
    lines = ["  ".join(header.rjust(w) for (_, header, _), w in zip(columns, widths))]
    for row in rows:
        cells = []
        for (key, _, spec), width in zip(columns, widths):
            value = row.get(key)
            cells.append(("-" if value is None else format(value, spec)).rjust(width))
        lines.append("  ".join(cells))
    return "\n".join(lines)
