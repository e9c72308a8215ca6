"""Turn the measurements into numbers a reader compares: GFLOP/s, % of the
measured matmul peak, npcnn/TF time ratios; then the Markdown report and PNG plots."""

from __future__ import annotations

import itertools
from collections import defaultdict


def matmul_peaks(results) -> dict:
    """{impl/dtype: best median GFLOP/s over the matmul sizes}, e.g. 'numpy float32'."""
    peaks = {}
    for r in results:
        if r["section"] == "matmul":
            key = f"{r['impl']} {r['dtype']}"
            peaks[key] = max(peaks.get(key, 0.0), r["gflops_per_s"])
    return peaks


def _peak_for(row, peaks, machine):
    """The peak a row is compared with: the CPU's NumPy GEMM, or the GPU's CuPy GEMM
    (TF32 when the row ran TF on the GPU with TF32 on)."""
    dtype = row["dtype"]
    if row["impl"] == "cupy tf32":  # the TF32 matmul row is compared with itself
        return peaks.get(f"cupy tf32 {dtype}")
    if row["family"] == "cupy" or "(gpu)" in row["impl"]:
        tf32 = (
            "(gpu)" in row["impl"] and machine.get("tensorflow", {}).get("tf32_enabled")
        ) and dtype == "float32"
        return peaks.get(f"cupy tf32 {dtype}" if tf32 else f"cupy {dtype}")
    return peaks.get(f"numpy {dtype}")


def annotate(data) -> None:
    """Add pct_of_peak and ratio_vs_* fields to every result row, in place."""
    results, machine = data["results"], data["machine"]
    peaks = matmul_peaks(results)
    data["matmul_peak_gflops"] = peaks
    groups = defaultdict(list)
    for r in results:
        groups[(r["section"], r["name"], r["kind"], r["batch"], r["dtype"])].append(r)
        peak = _peak_for(r, peaks, machine)
        r["pct_of_peak"] = 100.0 * r["gflops_per_s"] / peak if r["gflops_per_s"] and peak else None
    for rows in groups.values():
        others = {r["impl"]: r for r in rows}
        for r in rows:
            if r["impl"].startswith("npcnn"):
                r["ratios"] = {
                    f"{r['impl']} / {o}": r["median_s"] / row["median_s"]
                    for o, row in others.items()
                    if o != r["impl"] and not o.startswith("npcnn naive")
                }
                if r["impl"] == "npcnn naive":
                    fast = [x for x in rows if x["impl"] in ("npcnn", "npcnn (cupy)")]
                    if fast:
                        r["speedup_of_fast"] = r["median_s"] / fast[0]["median_s"]


def _fmt_ms(s):
    return f"{s * 1e3:.3f}" if s < 0.1 else f"{s * 1e3:.1f}"


def _row_cells(r):
    spread = f"{_fmt_ms(r['min_s'])}-{_fmt_ms(r['max_s'])}"
    gf = f"{r['gflops_per_s']:.1f}" if r.get("gflops_per_s") else "-"
    pct = f"{r['pct_of_peak']:.0f}%" if r.get("pct_of_peak") else "-"
    ratios = "; ".join(f"{k.split(' / ')[1]}: {v:.2f}x" for k, v in r.get("ratios", {}).items())
    if "speedup_of_fast" in r:
        ratios = f"fast is {r['speedup_of_fast']:.0f}x faster"
    return [
        r["name"],
        r["kind"],
        str(r["batch"]),
        r["dtype"],
        r["impl"],
        _fmt_ms(r["median_s"]),
        spread,
        gf,
        pct,
        ratios or "-",
    ]


# the TF rows an inference headline compares with (the fastest of them counts)
TF_INFERENCE = ("tf eager", "tf function", "tf function chunked")


HEADER = [
    "what",
    "kind",
    "N",
    "dtype",
    "impl",
    "median ms",
    "min-max ms",
    "GFLOP/s",
    "% peak",
    "npcnn time / other",
]


def _table(rows) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(_row_cells(r)) + " |" for r in rows]
    return lines


def _find(results, section, kind, impl, batch=None, dtype="float32"):
    for r in results:
        if (
            r["section"] == section
            and r["kind"] == kind
            and r["impl"] == impl
            and r["dtype"] == dtype
            and (batch is None or r["batch"] == batch)
        ):
            return r
    return None


def targets(data) -> list[str]:
    """The issue's targets, checked against the headline rows (when present)."""
    res = data["results"]
    out = []
    npi = "npcnn (cupy)" if data["machine"]["device"] == "gpu" else "npcnn"
    tag = " (gpu)" if data["machine"]["device"] == "gpu" else ""
    step = _find(res, "headline", "train step", npi)
    tf_fn = _find(res, "headline", "train step", "tf function" + tag)
    tf_eager = _find(res, "headline", "train step", "tf eager" + tag)
    if step and tf_fn:
        r = step["median_s"] / tf_fn["median_s"]
        out.append(
            f"train step (N={step['batch']}): npcnn / tf.function = {r:.2f}x "
            f"(target <= 1.5x: {'met' if r <= 1.5 else 'NOT met'})"
        )
    if step and tf_eager:
        r = step["median_s"] / tf_eager["median_s"]
        out.append(
            f"train step (N={step['batch']}): npcnn / TF eager = {r:.2f}x "
            f"(target < 1: {'met' if r < 1 else 'NOT met'})"
        )
    inf = _find(res, "headline", "inference", npi)
    tf_inf = [r for r in (_find(res, "headline", "inference", i + tag) for i in TF_INFERENCE) if r]
    if inf and tf_inf:
        best = min(tf_inf, key=lambda r: r["median_s"])
        ips, tips = inf["batch"] / inf["median_s"], best["batch"] / best["median_s"]
        out.append(
            f"inference (N={inf['batch']}): npcnn {ips:,.0f} images/s, TF ({best['impl']}) "
            f"{tips:,.0f} images/s = {ips / tips:.2f} of TF (target >= 0.5: "
            f"{'met' if ips / tips >= 0.5 else 'NOT met'})"
        )
    f32 = _find(
        res,
        "train step",
        "train step",
        npi,
        dtype="float32",
        batch=data["settings"].get("headline_batch"),
    )
    f64 = _find(res, "train step", "train step", npi, dtype="float64")
    if f32 and f64:
        r = f64["median_s"] / f32["median_s"]
        out.append(
            f"float64 / float32 train step (N={f64['batch']}): {r:.2f}x "
            f"(target <= 3x: {'met' if r <= 3 else 'NOT met'})"
        )
    gemms = [r for r in res if r["section"] == "conv gemm" and r.get("pct_of_peak")]
    if gemms:
        out.append(
            "conv GEMMs: "
            + ", ".join(f"{r['name']} {r['kind']}: {r['pct_of_peak']:.0f}%" for r in gemms)
            + " of the measured matmul peak"
        )
    return out


def markdown(data) -> str:
    m = data["machine"]
    res = data["results"]
    lines = [
        "# npcnn vs TensorFlow benchmarks",
        "",
        f"Command: `{data['command']}`  ",
        f"Created {data['created_utc']}, {data['duration_s']} s.",
        "",
        "## Machine",
        "",
        f"- device: {m['device']}; CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs; "
        f"load average (1, 5, 15 min) at start {m.get('load_average_at_start')}, "
        f"at end {data.get('load_average_at_end')}",
        f"- Python {m['python']}, NumPy {m['numpy_version']}; BLAS: {_blas_line(m['blas'])}",
    ]
    tfi = m["tensorflow"]
    if tfi.get("available"):
        lines.append(
            f"- TensorFlow {tfi['version']}; oneDNN: {tfi['TF_ENABLE_ONEDNN_OPTS']}; "
            f"TF32: {tfi.get('tf32_enabled')}; intra/inter-op threads "
            f"{tfi['intra_op_threads']}/{tfi['inter_op_threads']} (0 = all cores); "
            f"GPUs seen by TF: {tfi['gpus'] or 'none'}"
        )
    else:
        lines.append("- TensorFlow: not available")
    if "gpu" in m:
        g = m["gpu"]
        lines.append(
            f"- GPU: {g['name']} (cc {g['compute_capability']}, {g['memory_gib']} GiB), "
            f"nvidia-smi: {g.get('nvidia_smi')}; CUDA driver API {g['cuda_driver_api_version']}, "
            f"runtime {g['cuda_runtime_version']}, cuDNN {g.get('cudnn_version')}, "
            f"CuPy {g['cupy_version']}, CUPY_TF32={g['CUPY_TF32']}"
        )
    s = data["settings"]
    lines += [
        f"- timing: {s['warmup']} warm-up calls, {s['rounds']} interleaved rounds per group "
        f"(headline {s['headline_rounds']}), each round ~{s['block_s']} s of calls, "
        f"{s['pause_s']} s pause between NumPy and TF; medians, min-max over rounds",
        "- matmul peak (best median over sizes): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in data["matmul_peak_gflops"].items()),
    ]
    for note in data["notes"]:
        lines.append(f"- note: {note}")
    lines += [
        "",
        "Ratios are times: npcnn / other, so below 1 means npcnn is faster. GFLOP/s only for",
        "the GEMM-bound rows (conv, dense, whole network); pooling, ReLU, softmax and Adam are",
        "memory-bound. Training FLOPs: forward + dW + dX of every layer except conv1's dX",
        "(82.1 MFLOP per image); inference: 27.8 MFLOP per image.",
        "",
    ]
    tlines = targets(data)
    if tlines:
        lines += ["## Targets", ""] + [f"- {t}" for t in tlines] + [""]
    titles = {
        "headline": "Headline: training step and inference",
        "matmul": "Matmul peak",
        "conv gemm": "The convolutions' GEMMs alone",
        "train step": "Training step vs batch size",
        "adam": "Adam update (all parameters)",
        "inference": "Inference vs batch size",
        "op": "Per op",
    }
    for section, title in titles.items():
        rows = [r for r in res if r["section"] == section]
        if rows:
            lines += [f"## {title}", ""] + _table(rows) + [""]
        if section == "inference" or section == "headline":
            inf = [r for r in rows if r["kind"] == "inference"]
            if inf:
                lines += [
                    "Images per second: "
                    + ", ".join(
                        f"{r['impl']} N={r['batch']}: {r['batch'] / r['median_s']:,.0f}"
                        for r in inf
                    ),
                    "",
                ]
    return "\n".join(lines) + "\n"


def _blas_line(blas):
    if blas.get("source") == "threadpoolctl":
        return (
            ", ".join(
                f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
                f"{p.get('architecture')})"
                for p in blas["pools"]
            )
            or "none found"
        )
    return str(blas)


def plots(data, out_dir) -> list[str]:
    """PNG plots; returns the files written ([] with a note when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        data["notes"].append("plots skipped: matplotlib is not installed")
        return []
    res = data["results"]
    written = []

    # 1. per-op time ratio npcnn / TF at the headline batch
    ops = [
        r
        for r in res
        if r["section"] == "op"
        and r["impl"].startswith("npcnn")
        and r["impl"] != "npcnn naive"
        and r.get("ratios")
    ]
    batches = sorted({r["batch"] for r in ops})
    if ops:
        want = data["settings"].get("headline_batch")
        batch = want if want in batches else batches[-1]
        ops = [r for r in ops if r["batch"] == batch]
        others = sorted({k.split(" / ")[1] for r in ops for k in r["ratios"]})
        fig, ax = plt.subplots(figsize=(11, 4.5))
        width = 0.8 / max(len(others), 1)
        labels = [f"{r['name']}\n{r['kind'].replace('forward+backward', 'fwd+bwd')}" for r in ops]
        for k, other in enumerate(others):
            vals = [r["ratios"].get(f"{r['impl']} / {other}", float("nan")) for r in ops]
            ax.bar([i + k * width for i in range(len(ops))], vals, width, label=f"vs {other}")
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks([i + width * (len(others) - 1) / 2 for i in range(len(ops))])
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("time ratio npcnn / TF (log; < 1: npcnn faster)")
        ax.set_title(f"Per-op time ratio, batch {batch}, float32")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = f"{out_dir}/op_ratios.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    # 2. time vs batch size: forward+backward of each op, train step, inference
    panels = [
        ("op", name, "forward+backward")
        for name in dict.fromkeys(r["name"] for r in res if r["section"] == "op")
    ]
    panels += [("train step", "seed cnn", "train step"), ("inference", "seed cnn", "inference")]
    panels = [p for p in panels if any(r["section"] == p[0] and r["name"] == p[1] for r in res)]
    if panels:
        cols = 4
        nrows = (len(panels) + cols - 1) // cols
        fig, axes = plt.subplots(nrows, cols, figsize=(14, 3.2 * nrows), squeeze=False)
        # one colour per implementation in every panel
        colors, palette = {}, itertools.cycle(plt.rcParams["axes.prop_cycle"].by_key()["color"])
        for ax, (section, name, kind) in zip(axes.flat, panels):
            rows = [
                r
                for r in res
                if r["section"] == section
                and r["name"] == name
                and r["kind"] == kind
                and r["dtype"] == "float32"
            ]
            for impl in dict.fromkeys(r["impl"] for r in rows):
                pts = sorted((r["batch"], r["median_s"] * 1e3) for r in rows if r["impl"] == impl)
                x, y = [p[0] for p in pts], [p[1] for p in pts]
                if impl not in colors:
                    colors[impl] = next(palette)
                ax.plot(x, y, "o-", ms=3, label=impl, color=colors[impl])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{name} {kind}", fontsize=9)
            ax.set_xlabel("batch size", fontsize=8)
            ax.set_ylabel("ms", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.legend(fontsize=6)
        for ax in list(axes.flat)[len(panels) :]:
            ax.axis("off")
        fig.suptitle("Time vs batch size (median, float32)")
        fig.tight_layout()
        path = f"{out_dir}/time_vs_batch.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
