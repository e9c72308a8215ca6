"""The one report writer: GFLOP/s as % of the matmul peak of the same run, ratios,
the Markdown report of a results folder, its figures, and the tables published
into README.md and benchmarks/RESULTS.md.

A results folder holds one JSON file per section (the latest run of each), so
running one section refreshes its part and the report is rebuilt from them all.
"""

from __future__ import annotations

import glob
import json
import os
import re
from collections import defaultdict

from .workloads import forward_flops, train_flops

ORDER = ["npcnn", "npcnn old", "npcnn naive", "tf eager", "tf function", "torch eager",
         "torch compile", "jax jit", "mygrad"]  # fmt: skip
FRAMEWORKS = ["tf function", "torch eager", "torch compile", "jax jit"]  # "the fastest framework"
TARGETS = {  # what the fast tier aims at: (comparison, bound)
    "step": ("<=", 1.0),
    "step one": ("<=", 1.0),
    "inference": (">=", 0.9),
    "inference one": (">=", 0.9),
    "peak": (">=", 50.0),
    "speedup": (">=", 1.8),
    "f64": ("<=", 1.6),
    "memory": ("<=", 1.0),
}


# ---------------------------------------------------------------- numbers
def matmul_peaks(results) -> dict:
    """{(cores, 'numpy float32'): best median GFLOP/s over the matmul sizes}."""
    peaks = {}
    for r in results:
        if r["section"] == "matmul":
            key = (r.get("cores", "all"), f"{r['impl']} {r['dtype']}")
            peaks[key] = max(peaks.get(key, 0.0), r["gflops_per_s"])
    return peaks


def annotate(data) -> None:
    """Add pct_of_peak to every row with GFLOP/s (against the peak measured on the same
    cores, same dtype, same device) and data['matmul_peak_gflops'], in place."""
    peaks = matmul_peaks(data["results"])
    device = "cupy" if data["machine"]["device"] == "gpu" else "numpy"
    data["matmul_peak_gflops"] = {
        f"{'1 core' if c == 'one' else 'all cores'}, {k}": v for (c, k), v in peaks.items()
    }
    for r in data["results"]:
        peak = peaks.get((r.get("cores", "all"), f"{device} {r['dtype']}"))
        gf = r.get("gflops_per_s")
        r["pct_of_peak"] = 100.0 * gf / peak if gf and peak else None


def find(results, section, impl, kind=None, batch=None, cores="all", dtype="float32"):
    for r in results:
        if (r["section"] == section and r["impl"] == impl and r.get("cores", "all") == cores
                and r["dtype"] == dtype and (kind is None or r["kind"] == kind)
                and (batch is None or r["batch"] == batch)):  # fmt: skip
            return r
    return None


def fastest(results, section, kind, cores, systems=FRAMEWORKS):
    rows = [find(results, section, s, kind, cores=cores) for s in systems]
    rows = [r for r in rows if r]
    return min(rows, key=lambda r: r["median_s"]) if rows else None


def label(system, versions) -> str:
    v = versions or {}
    names = {
        "npcnn": "npcnn (fast tier)",
        "npcnn old": "npcnn (other checkout)",
        "tf eager": f"TensorFlow {v.get('tensorflow', '')} eager",
        "tf function": f"TensorFlow {v.get('tensorflow', '')} `tf.function`",
        "torch eager": f"PyTorch {v.get('torch', '')} eager",
        "torch compile": f"PyTorch {v.get('torch', '')} `torch.compile`",
        "jax jit": f"JAX {v.get('jax', '')} `jit`",
        "mygrad": f"MyGrad {v.get('mygrad', '')}",
    }
    return re.sub(r"\s+", " ", names.get(system, system))


def _ms(s):
    return "-" if s is None else (f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.1f}")


def _pct(r):
    return f" ({r['pct_of_peak']:.0f}%)" if r and r.get("pct_of_peak") else ""


def _step_cell(r):
    return "-" if r is None else f"{_ms(r['median_s'])} ms{_pct(r)}"


def _inference_cell(r):
    return "-" if r is None else f"{r['batch'] / r['median_s']:,.0f} img/s{_pct(r)}"


# ---------------------------------------------------------------- tables
def peers_table(data) -> list[str]:
    """Every system: step (headline batch) and inference, all cores and one core,
    % of the matmul peak of the same cores in brackets; a missing system says why."""
    res = data["results"]
    versions = data["machine"].get("peers", {})
    threads = data["machine"].get("threads", "all")
    step_n = next((r["batch"] for r in res if r["section"] == "headline"
                   and r["kind"] == "train step"), 50)  # fmt: skip
    inf_n = next((r["batch"] for r in res if r["section"] == "headline"
                  and r["kind"] == "inference"), 1000)  # fmt: skip
    lines = [
        f"| system | step, batch {step_n}, {threads} cores | step, 1 core | inference, "
        f"batch {inf_n}, {threads} cores | inference, 1 core |",
        "|---|---|---|---|---|",
    ]
    seen = {r["impl"] for r in res if r["section"] == "headline"}
    for system in [s for s in ORDER if s in seen]:
        cells = [
            _step_cell(find(res, "headline", system, "train step", cores="all")),
            _step_cell(find(res, "headline", system, "train step", cores="one")),
            _inference_cell(find(res, "headline", system, "inference", cores="all")),
            _inference_cell(find(res, "headline", system, "inference", cores="one")),
        ]
        lines.append(f"| {label(system, versions)} | " + " | ".join(cells) + " |")
    for system, reason in data.get("missing", {}).items():
        lines.append(f"| {system} | no rows: {reason} | | | |")
    return lines


def targets_rows(data) -> list[tuple[str, str, str]]:
    """(what, measured, target) for each target that the results can answer."""
    res, rows = data["results"], []
    versions = data["machine"].get("peers", {})

    def check(key, value):
        op, bound = TARGETS[key]
        met = value <= bound if op == "<=" else value >= bound
        return f"{op} {bound:g}{'%' if key == 'peak' else 'x'} ({'met' if met else 'not met'})"

    for kind, key in (("train step", "step"), ("inference", "inference")):
        for cores, suffix in (("all", ""), ("one", " one")):
            npc = find(res, "headline", "npcnn", kind, cores=cores)
            best = fastest(res, "headline", kind, cores)
            if not (npc and best):
                continue
            # step: time ratio (< 1: npcnn faster); inference: throughput ratio (> 1: faster)
            ratio = (npc["median_s"] / best["median_s"] if kind == "train step"
                     else best["median_s"] / npc["median_s"])  # fmt: skip
            what = (f"{kind}, batch {npc['batch']}, npcnn vs the fastest framework "
                    f"({label(best['impl'], versions)}), "
                    f"{'one core' if cores == 'one' else 'all cores'}"
                    f"{' (time)' if kind == 'train step' else ' (throughput)'}")  # fmt: skip
            rows.append((what, f"{ratio:.2f}x", check(key + suffix, ratio)))
    npc = find(res, "headline", "npcnn", "train step")
    if npc and npc.get("pct_of_peak"):
        rows.append(("training step as % of the measured matmul peak (all cores)",
                     f"{npc['pct_of_peak']:.0f}%", check("peak", npc["pct_of_peak"])))  # fmt: skip
    one = find(res, "headline", "npcnn", "train step", cores="one")
    if npc and one:
        speedup = one["median_s"] / npc["median_s"]
        rows.append((f"npcnn's step, one core -> {npc.get('threads', 'all')} cores",
                     f"{speedup:.2f}x", check("speedup", speedup)))  # fmt: skip
    f32 = find(res, "float64", "npcnn", dtype="float32")
    f64 = find(res, "float64", "npcnn", dtype="float64")
    if f32 and f64:
        r = f64["median_s"] / f32["median_s"]
        rows.append(("float64 / float32 training step", f"{r:.2f}x", check("f64", r)))
    mem = defaultdict(dict)
    for r in res:
        if r["section"] == "memory":
            mem[str(r["batch_size"])][r["impl"]] = r
    for size, pair in mem.items():
        if "npcnn" in pair and "tf predict" in pair:
            a, b = pair["npcnn"]["peak_bytes"], pair["tf predict"]["peak_bytes"]
            n = pair["npcnn"]["batch"]
            rows.append((f"peak memory of predict on {n:,} images, batch_size={size}",
                         f"npcnn {a / 1e6:,.0f} MB, TF {b / 1e6:,.0f} MB ({a / max(b, 1):.2f}x)",
                         check("memory", a / max(b, 1))))  # fmt: skip
    return rows


def targets_table(data) -> list[str]:
    rows = targets_rows(data)
    if not rows:
        return []
    return ["| what | measured | target |", "|---|---|---|"] + [
        f"| {a} | {b} | {c} |" for a, b, c in rows
    ]


def sweep_table(res, section, kind, cores, versions) -> list[str]:
    """Systems x batch sizes of ``section``, with the headline batch's row added."""
    rows = [r for r in res if r["section"] in (section, "headline") and r["kind"] == kind
            and r.get("cores", "all") == cores and r["dtype"] == "float32"]  # fmt: skip
    if not any(r["section"] == section for r in rows):
        return []
    batches = sorted({r["batch"] for r in rows})
    systems = [s for s in ORDER if any(r["impl"] == s for r in rows)]
    unit = "ms per step" if kind == "train step" else "images/s"
    lines = [f"| {unit}, {cores} cores | " + " | ".join(f"N={b}" for b in batches) + " |",
             "|---|" + "---|" * len(batches)]  # fmt: skip
    for s in systems:
        cells = []
        for b in batches:
            r = find(res, section, s, kind, b, cores) or find(res, "headline", s, kind, b, cores)
            cells.append(_step_cell(r) if kind == "train step" else _inference_cell(r))
        lines.append(f"| {label(s, versions)} | " + " | ".join(cells) + " |")
    return lines


def ops_table(res, versions) -> list[str]:
    rows = [r for r in res if r["section"] == "op"]
    if not rows:
        return []
    systems = [s for s in ORDER if any(r["impl"] == s for r in rows)]
    lines = ["| op | kind | N | " + " | ".join(label(s, versions) for s in systems) + " |",
             "|---|---|---|" + "---|" * len(systems)]  # fmt: skip
    keys = list(dict.fromkeys((r["name"], r["kind"], r["batch"]) for r in rows))
    for name, kind, n in keys:
        cells = []
        for s in systems:
            r = next((x for x in rows if (x["name"], x["kind"], x["batch"], x["impl"])
                      == (name, kind, n, s)), None)  # fmt: skip
            cells.append("-" if r is None else f"{_ms(r['median_s'])}{_pct(r)}")
        lines.append(f"| {name} | {kind} | {n} | " + " | ".join(cells) + " |")
    return lines


def generic_table(rows) -> list[str]:
    lines = ["| what | kind | N | dtype | system | cores | median ms | min-max ms | GFLOP/s "
             "| % peak |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        gf = f"{r['gflops_per_s']:.1f}" if r.get("gflops_per_s") else "-"
        pct = f"{r['pct_of_peak']:.0f}%" if r.get("pct_of_peak") else "-"
        lines.append(
            f"| {r['name']} | {r['kind']} | {r['batch']} | {r['dtype']} | {r['impl']} | "
            f"{r.get('cores', 'all')} | {_ms(r['median_s'])} | {_ms(r['min_s'])}-"
            f"{_ms(r['max_s'])} | {gf} | {pct} |"
        )
    return lines


def breakdown_table(res) -> list[str]:
    rows = [r for r in res if r["section"] == "breakdown"]
    if not rows:
        return []
    systems = list(dict.fromkeys(r["impl"] for r in rows))
    groups = defaultdict(lambda: defaultdict(float))
    for r in rows:
        groups[r["group"]][r["impl"]] += r["median_s"]
    lines = ["| part of the step | " + " | ".join(f"{s} ms" for s in systems) + " |",
             "|---|" + "---|" * len(systems)]  # fmt: skip
    step = groups.pop("step", {})
    other = {s: step[s] - sum(per.get(s, 0.0) for per in groups.values()) for s in step}
    for group, per in [*groups.items(), ("other", other), ("step", step)]:
        lines.append(f"| {group} | " + " | ".join(
            f"{per[s] * 1e3:.2f}" if s in per else "-" for s in systems) + " |")  # fmt: skip
    return lines


def machine_lines(data) -> list[str]:
    m = data["machine"]
    peaks = data.get("matmul_peak_gflops", {})
    lines = [
        f"- CPU: {m['cpu_model']}, {m['logical_cpus']} logical CPUs ({_isa()}), "
        f"{m.get('threads')} threads on all cores; load average at start "
        f"{_load(m.get('load_average_at_start'))}, at end {_load(data.get('load_average_at_end'))}",
        f"- Python {m['python']}, NumPy {m['numpy_version']} ({_blas_line(m['blas'])}); "
        + ", ".join(f"{k} {v}" for k, v in m.get("peers", {}).items()),
    ]
    if peaks:
        lines.append("- matmul peak (best median over sizes, same run): "
                     + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))  # fmt: skip
    if "gpu" in m:
        g = m["gpu"]
        lines.append(f"- GPU: {g['name']} ({g['memory_gib']} GiB), CUDA runtime "
                     f"{g['cuda_runtime_version']}, CuPy {g['cupy_version']}")  # fmt: skip
    return lines


def _load(avg):
    return "-" if not avg else "/".join(f"{x:.2f}" for x in avg)


def _isa() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return "?"
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"


def _blas_line(blas):
    if blas.get("source") == "threadpoolctl":
        return ", ".join(f"{p.get('internal_api')} {p.get('version')} "
                         f"{p.get('architecture')}" for p in blas["pools"]
                         if p.get("user_api") == "blas") or "BLAS"  # fmt: skip
    return "BLAS"


# ---------------------------------------------------------------- the folder
def section_file(out, section) -> str:
    return os.path.join(out, section.replace(" ", "-") + ".json")


def save(data, out) -> list[str]:
    """One JSON per section of this run (rows of both core settings), replacing the
    previous run's file of that section; returns the paths written."""
    os.makedirs(out, exist_ok=True)
    written = []
    for section in data["sections"]:
        part = {k: v for k, v in data.items() if k != "results"}
        part["results"] = [r for r in data["results"] if r["section"] == section]
        path = section_file(out, section)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(part, f, indent=1, default=str)
        os.replace(tmp, path)  # a crash never leaves half a file
        written.append(path)
    return written


def load(out) -> dict | None:
    """Every section file of a results folder merged into one data dict (machine and
    settings from the newest), or None when the folder holds none."""
    parts = []
    for path in sorted(glob.glob(os.path.join(out, "*.json"))):
        with open(path) as f:
            parts.append(json.load(f))
    if not parts:
        return None
    parts.sort(key=lambda p: p["created_utc"])
    data = dict(parts[-1])
    data["results"] = [r for p in parts for r in p["results"]]
    data["missing"] = {k: v for p in parts for k, v in p.get("missing", {}).items()}
    runs = {(p["command"], p["created_utc"]): (p["sections"], p["command"], p["created_utc"],
                                                p.get("duration_s")) for p in parts}  # fmt: skip
    data["runs"] = list(runs.values())
    data["notes"] = list(dict.fromkeys(n for p in parts for n in p.get("notes", [])))
    with_peak = [p for p in parts if "matmul" in p["sections"]]  # the latest matmul run
    data["matmul_peak_gflops"] = with_peak[-1].get("matmul_peak_gflops", {}) if with_peak else {}
    return data


def markdown(data) -> str:
    res = data["results"]
    versions = data["machine"].get("peers", {})
    lines = ["# Benchmark results", "", "Machine:", "", *machine_lines(data), "", "Runs:", ""]
    lines += [f"- `{cmd}` ({created}, {dur} s): {', '.join(secs)}"
              for secs, cmd, created, dur in data.get("runs", [])]  # fmt: skip
    lines += ["", "Medians of interleaved rounds; % of the matmul peak measured in the same run "
              "on the same cores in brackets. One core: `taskset -c 0`, one thread everywhere.",
              ""]  # fmt: skip
    blocks = [
        ("Every system: training step and inference", peers_table(data)
         if any(r["section"] == "headline" for r in res) else []),
        ("Targets", targets_table(data)),
        ("Training step vs batch size", sweep_table(res, "train step", "train step", "all",
                                                    versions)),
        ("Training step vs batch size, one core",
         sweep_table(res, "train step", "train step", "one", versions)),
        ("Inference vs batch size", sweep_table(res, "inference", "inference", "all", versions)),
        ("Inference vs batch size, one core",
         sweep_table(res, "inference", "inference", "one", versions)),
        ("Per op (ms)", ops_table(res, versions)),
        ("Where the training step's time goes (batch 50, medians)", breakdown_table(res)),
    ]  # fmt: skip
    for title, table in blocks:
        if table:
            lines += [f"## {title}", "", *table, ""]
    titles = {"matmul": "Matmul peak", "conv gemm": "The convolutions' GEMMs alone",
              "float64": "float64 and float32 step", "adam": "Adam update (all parameters)",
              "kernels": "Fused CUDA kernels"}  # fmt: skip
    for section, title in titles.items():
        rows = [r for r in res if r["section"] == section]
        if rows:
            lines += [f"## {title}", "", *generic_table(rows), ""]
    mem = [r for r in res if r["section"] == "memory"]
    if mem:
        lines += ["## Peak memory of predict", "", "| system | images | batch_size | peak MB |",
                  "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {r['impl']} | {r['batch']:,} | {r['batch_size']} | "
                  f"{r['peak_bytes'] / 1e6:,.0f} |" for r in mem] + [""]  # fmt: skip
    lev = [r for r in res if r["section"] == "levers"]
    if lev:
        lines += ["## Levers", "", "| lever | variant | median ms | gain |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['impl']} | {_ms(r['median_s'])} | {r['gain']:.2f}x |"
                  for r in lev] + [""]  # fmt: skip
    if data.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    return "\n".join(lines)


def figure(data, path) -> bool:
    """Step time and inference throughput per system, all cores and one core, with
    what the matmul peak would give as a line; False without matplotlib or rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    res = data["results"]
    head = [r for r in res if r["section"] == "headline"]
    if not head:
        return False
    versions = data["machine"].get("peers", {})
    systems = [s for s in ORDER if any(r["impl"] == s for r in head)]
    peaks = matmul_peaks(res)
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(systems) + 2.2))
    for ax, kind in zip(axes, ("train step", "inference")):
        for k, (cores, color) in enumerate((("all", "tab:blue"), ("one", "tab:orange"))):
            vals = []
            for s in systems:
                r = find(res, "headline", s, kind, cores=cores)
                if r is None:
                    vals.append(0)
                elif kind == "train step":
                    vals.append(r["median_s"] * 1e3)
                else:
                    vals.append(r["batch"] / r["median_s"])
            n = next((r["batch"] for r in head if r["kind"] == kind), 0)
            what = "cores" if cores == "all" else "core"
            count = data["machine"].get("threads") if cores == "all" else 1
            ys = [i + (k - 0.5) * 0.38 for i in range(len(systems))]
            ax.barh(ys, vals, 0.38, color=color, label=f"{count} {what}")
            for y, v in zip(ys, vals):
                if v:
                    ax.text(v, y, f" {v:,.0f}" if v >= 100 else f" {v:.1f}", va="center",
                            fontsize=7)  # fmt: skip
            peak = peaks.get((cores, "numpy float32"))
            if peak:  # the time (throughput) the network would take (reach) at the peak
                x = (train_flops(n) / (peak * 1e9) * 1e3 if kind == "train step"
                     else peak * 1e9 / forward_flops(1))  # fmt: skip
                ax.axvline(
                    x,
                    color=color,
                    ls="--",
                    lw=1,
                    label=f"at the matmul peak, {count} {what} ({peak:.0f} GFLOP/s)",
                )
        ax.set_yticks(range(len(systems)), [label(s, versions).replace("`", "")
                                            for s in systems], fontsize=8)  # fmt: skip
        ax.invert_yaxis()
        if kind == "train step":
            ax.set_xlabel(f"training step, batch {n}, ms (less is better)")
        else:
            ax.set_xlabel(f"inference, batch {n}, images/s (more is better)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    fig.suptitle(f"The seed CNN, float32, on {data['machine']['cpu_model']} ({_isa()})",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def breakdown_figure(data, path) -> bool:
    """One stacked bar per system: the step's parts, forward dark, backward light."""
    rows = [r for r in data["results"] if r["section"] == "breakdown"]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(dict.fromkeys(r["impl"] for r in rows))
    parts = defaultdict(lambda: defaultdict(float))
    for r in rows:
        parts[r["impl"]][r["group"]] += r["median_s"] * 1e3
    groups = [g for g in dict.fromkeys(r["group"] for r in rows) if g != "step"]
    tab = plt.get_cmap("tab20").colors
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.6 * len(systems)))
    for row, system in enumerate(systems):
        left = 0.0
        for k, group in enumerate(groups):
            width = parts[system].get(group, 0.0)
            ax.barh(row, width, left=left, color=tab[k % 20], edgecolor="white",
                    label=group if row == 0 else None)  # fmt: skip
            left += width
        step = parts[system].get("step")
        if step:
            ax.text(left + 0.5, row, f"step {step:.1f} ms", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_yticks(range(len(systems)), systems)
    n = rows[0]["batch"]
    ax.set_xlabel(f"training step, batch {n}, float32: the parts (ms)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.3))
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write(out, plots=True) -> list[str]:
    """Rebuild ``report.md``, ``peers.png`` and ``breakdown.png`` of a results folder
    from its JSON files."""
    data = load(out)
    if data is None:
        return []
    written = [os.path.join(out, "report.md")]
    with open(written[0], "w") as f:
        f.write(markdown(data))
    if plots and figure(data, os.path.join(out, "peers.png")):
        written.append(os.path.join(out, "peers.png"))
    if plots and breakdown_figure(data, os.path.join(out, "breakdown.png")):
        written.append(os.path.join(out, "breakdown.png"))
    return written


# ---------------------------------------------------------------- publishing
BEGIN, END = "<!-- benchmarks: {name} -->", "<!-- /benchmarks: {name} -->"


def replace_block(text, name, body) -> str:
    """``text`` with what lies between the markers of block ``name`` replaced by ``body``."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise ValueError(f"no block {begin} ... {end}")
    return pattern.sub(lambda _: f"{begin}\n{body}\n{end}", text)


def publish(out, files) -> list[str]:
    """Rewrite the marked blocks of ``files`` (README.md, RESULTS.md) from the results
    folder ``out``: 'peers' (the table), 'machine' and 'targets'. Returns the files changed."""
    data = load(out)
    if data is None:
        raise ValueError(f"{out} holds no results")
    runs = sorted(data.get("runs", []), key=lambda run: run[2])  # the latest headline run
    command = next((cmd for secs, cmd, _, _ in reversed(runs) if "headline" in secs), "")
    machine = machine_lines(data) + [f"- command: `{command}`"]
    blocks = {"peers": "\n".join(peers_table(data)), "machine": "\n".join(machine),
              "targets": "\n".join(targets_table(data))}  # fmt: skip
    changed = []
    for path in files:
        with open(path) as f:
            text = f.read()
        new = text
        for name, body in blocks.items():
            if BEGIN.format(name=name) in new:
                new = replace_block(new, name, body)
        if new != text:
            with open(path + ".tmp", "w") as f:
                f.write(new)
            os.replace(path + ".tmp", path)
            changed.append(path)
    return changed
