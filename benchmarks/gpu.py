"""What only ``--device gpu`` needs: CuPy with a card, TF32 switched off in
PyTorch, and the fused CUDA kernels (``cuda_kernels.py``) beside the readable
ops they replace (the ``kernels`` section)."""

from __future__ import annotations

import numpy as np

KERNELS = {  # kernel_workloads' names and variants, known without a GPU
    "bias+relu conv1": ["ops", "fused"],
    "maxpool1 forward": ["ops", "fast", "fused"],
    "maxpool1 backward": ["ops", "fused"],
    "col2im conv2": ["ops", "fused"],
    "adam, 8 parameters": ["ops (one call per parameter)", "fused (one launch)"],
}


class NoGpuError(RuntimeError):
    pass


def load_cupy():
    """CuPy with a usable GPU, or a clear error."""
    try:
        import cupy
    except ImportError as e:
        raise NoGpuError(
            "--device gpu needs CuPy (pip install 'npcnn[gpu]', i.e. cupy-cuda12x): "
            f"import cupy failed: {e}"
        ) from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device
        raise NoGpuError(f"--device gpu: CuPy is installed but finds no GPU ({e})") from e
    if count < 1:
        raise NoGpuError("--device gpu: CuPy is installed but finds no GPU")
    return cupy


def torch_tf32_off(torch) -> None:
    """float32 matmuls and convolutions in full float32 on the card (no TF32), as
    npcnn's CuPy runs them: ``fp32_precision`` on PyTorch >= 2.9, else ``allow_tf32``."""
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        matmul.fp32_precision = conv.fp32_precision = "ieee"
    else:
        matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False


def kernel_workloads(cp, batch) -> dict:
    """{op: {variant: fn}}: each fused kernel and the readable (and fast) op it
    replaces, on the seed network's shapes at this batch."""
    import npcnn
    from npcnn import fast, ops
    from npcnn.ops.conv2d import col2im

    from . import cuda_kernels as ck

    rng = np.random.default_rng(0)

    def dev(*shape):
        return cp.asarray(rng.standard_normal(shape).astype(np.float32))

    z, b = dev(batch, 28, 28, 32), dev(32)
    x1, dy1 = dev(batch, 28, 28, 32), dev(batch, 14, 14, 32)
    dcols = dev(batch * 14 * 14, 25 * 32)
    pads, shape = ((2, 2), (2, 2)), (batch, 18, 18, 32)
    _, pool_cache = ops.maxpool2d_forward(x1, 2, 2, "valid")
    _, arg_cache = ck.maxpool2d_forward(x1, 2, 2, "valid")
    params = npcnn.seed_cnn(seed=0).to(cp).params
    grads = [cp.ones_like(p) for p in params]
    m1, v1 = [cp.zeros_like(p) for p in params], [cp.zeros_like(p) for p in params]
    m2, v2 = [cp.zeros_like(p) for p in params], [cp.zeros_like(p) for p in params]
    s = (np.float32(1e-6), np.float32(0.1), np.float32(0.001), np.float32(1e-7))

    def adam_ops():
        for p, g, m, v in zip(params, grads, m1, v1):
            ops.adam_update(p, g, m, v, *s)

    def col2im_ops():
        full = col2im(dcols.reshape(batch, 14, 14, 5, 5, 32), shape, (5, 5), (1, 1), (14, 14))
        return full[:, 2:16, 2:16]

    return {
        "bias+relu conv1": {
            "ops": lambda: ops.relu_forward(z + b),
            "fused": lambda: ck.bias_relu_forward(z, b),
        },
        "maxpool1 forward": {
            "ops": lambda: ops.maxpool2d_forward(x1, 2, 2, "valid"),
            "fast": lambda: fast.maxpool2d_forward(x1, 2, 2, "valid"),
            "fused": lambda: ck.maxpool2d_forward(x1, 2, 2, "valid"),
        },
        "maxpool1 backward": {
            "ops": lambda: ops.maxpool2d_backward(dy1, pool_cache),
            "fused": lambda: ck.maxpool2d_backward(dy1, arg_cache),
        },
        "col2im conv2": {
            "ops": col2im_ops,
            "fused": lambda: ck.col2im(dcols, shape, (5, 5), (1, 1), (14, 14), pads),
        },
        "adam, 8 parameters": {
            "ops (one call per parameter)": adam_ops,
            "fused (one launch)": lambda: ck.adam_update_all(params, grads, m2, v2, *s),
        },
    }
