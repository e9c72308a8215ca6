"""What the numbers were measured on: CPU, BLAS and its threads, library
versions, TensorFlow's settings (oneDNN, TF32, devices) and the GPU."""

from __future__ import annotations

import os
import platform
import subprocess
import sys


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info() -> dict:
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


def tf_info(tf) -> dict:
    """TensorFlow's version and the settings that change its speed."""
    if tf is None:
        return {"available": False}
    info = {
        "available": True,
        "version": tf.__version__,
        # oneDNN is on by default for x86 Linux builds since TF 2.9 unless this is "0"
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset (default: on)"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }
    try:
        info["tf32_enabled"] = bool(tf.config.experimental.tensor_float_32_execution_enabled())
    except AttributeError:
        info["tf32_enabled"] = None
    try:
        build = tf.sysconfig.get_build_info()
        info["cuda_version"] = build.get("cuda_version")
        info["cudnn_version"] = build.get("cudnn_version")
    except Exception:  # CPU builds have no such keys on some versions
        pass
    return info


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


def machine_info(device: str, tf=None, cupy=None) -> dict:
    import numpy as np

    info = {
        "device": device,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "numpy_version": np.__version__,
        "blas": _blas_info(),
        "tensorflow": tf_info(tf),
    }
    if cupy is not None:
        info["gpu"] = gpu_info(cupy)
    return info
