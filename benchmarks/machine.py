"""What the numbers were measured on, and whether it was quiet: CPU model and
vector extensions, BLAS and its kernel, versions, the load average, the matmul
peak at the start and at the end of the run; the folder of a machine type."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> dict:
    """BLAS library and thread count: threadpoolctl if present, else NumPy's build config."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        pools = threadpool_info()
        return {"source": "threadpoolctl", "pools": pools}
    except ImportError:
        pass
    try:
        config = np.show_config(mode="dicts")
        return {"source": "numpy.show_config", "blas": config.get("Build Dependencies", {})}
    except TypeError:  # NumPy < 1.25 has no mode='dicts'
        return {"source": "unknown"}


def gpu_info(cupy) -> dict:
    """Card name, driver, CUDA runtime and cuDNN versions, as CuPy sees them."""
    rt = cupy.cuda.runtime
    props = rt.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"]
    info = {
        "name": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": f"{props['major']}.{props['minor']}",
        "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
        "multiprocessors": props["multiProcessorCount"],
        "cuda_driver_api_version": rt.driverGetVersion(),
        "cuda_runtime_version": rt.runtimeGetVersion(),
        "cupy_version": cupy.__version__,
        "CUPY_TF32": os.environ.get("CUPY_TF32", "unset (default: off)"),
    }
    try:
        from cupy.cuda import cudnn

        info["cudnn_version"] = cudnn.getVersion()
    except Exception:  # CuPy without cuDNN: npcnn does not use it anyway
        info["cudnn_version"] = None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        info["nvidia_smi"] = out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["nvidia_smi"] = None
    return info


VECTOR = [("avx2", "AVX2"), ("avx512f", "AVX-512"), ("amx_tile", "AMX")]
MAX_LOAD = 0.5  # 1-minute load average above which --publish refuses
MAX_PEAK_DRIFT = 0.10  # start and end matmul peaks further apart than this: refused


def vector_extensions() -> list[str]:
    """The vector extensions in /proc/cpuinfo's flags: AVX2, AVX-512, AMX."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return []
    return [name for flag, name in VECTOR if flag in flags]


def vector_width() -> str:
    ext = vector_extensions()
    return "avx512" if "AVX-512" in ext else "avx2" if "AVX2" in ext else "novec"


def folder_name() -> str:
    """<cpu model>-<widest vector extension>-<n>cpu, e.g. amd-epyc-avx512-2cpu."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{cpu_model()} {vector_width()}".lower()).strip("-")
    return f"{slug}-{affinity_cpus()}cpu"


def affinity_cpus() -> int:
    """The CPUs this process may run on (``taskset`` and cgroups respected)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def load_average():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def load_text(avg) -> str:
    return "-" if not avg else "/".join(f"{x:.2f}" for x in avg)


def versions() -> dict:
    """The installed frameworks' versions, read without importing them."""
    import importlib.metadata as md

    out = {}
    for dist in ("numpy", "scipy", "tensorflow", "torch", "jax", "jaxlib", "mygrad", "cupy"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def machine_info(device: str) -> dict:
    """What the coordinator knows without importing a framework."""
    return {
        "device": device,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": cpu_model(),
        "vector": ", ".join(vector_extensions()) or "no AVX2",
        "logical_cpus": affinity_cpus(),
        "load_average_at_start": load_average(),
        "versions": versions(),
        "blas_environment": blas_environment(),
    }


def blas_environment() -> dict:
    """The variables that pick BLAS's kernel or threads (``OPENBLAS_CORETYPE=Haswell``
    runs AVX2 kernels on an AVX-512 CPU: a report must say so)."""
    prefixes = ("OPENBLAS_", "OMP_", "MKL_", "GOTO_")
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(prefixes)}


def busy_reasons(info) -> list[str]:
    """Why this run's machine was too busy to publish from ([] when quiet)."""
    reasons = []
    load = (info.get("load_average_at_start") or [0.0])[0]
    if load > MAX_LOAD:
        reasons.append(f"the 1-minute load average was {load:.2f} before the run "
                       f"(more than {MAX_LOAD})")  # fmt: skip
    start, end = info.get("peak_start_gflops"), info.get("peak_end_gflops")
    if start and end and abs(end - start) > MAX_PEAK_DRIFT * max(start, end):
        reasons.append(f"the matmul peak moved from {start:.0f} to {end:.0f} GFLOP/s during "
                       f"the run (more than {MAX_PEAK_DRIFT:.0%})")  # fmt: skip
    return reasons
