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
import statistics
from collections import defaultdict

from .breakdown import PARTS
from .machine import load_text
from .workloads import forward_flops, train_flops

ORDER = ["npcnn", "npcnn-old", "npcnn-ops", "npcnn-naive", "tf-eager", "tf-function",
         "torch-eager", "torch-compile", "jax-jit", "mygrad"]  # fmt: skip
FRAMEWORKS = ["tf-function", "torch-eager", "torch-compile", "jax-jit"]  # "the fastest framework"
TARGETS = {  # the fast tier's targets: (comparison, must, aim)
    "step": ("<=", 1.2, 1.0),  # step, all quiet cores, vs the fastest framework (time)
    "step one": ("<=", 1.3, 1.0),  # step, one core, vs the fastest framework
    "step one torch-eager": ("<=", 1.1, 1.0),  # step, one core, vs PyTorch eager
    "step busy": ("<=", 1.0, 0.8),  # all cores + a CPU burner, vs TF tf.function, same load
    "inference": (">=", 0.6, 0.75),  # throughput, all cores, vs the fastest framework
    "f64": ("<=", 2.0, 1.8),  # float64 step / float32 step
    "memory": ("<=", 1.0, 1.0),  # predict's peak memory / TF's
}
CORES = {"all": "all cores", "one": "1 core", "busy": "all cores + 1 CPU-burning process"}


# ---------------------------------------------------------------- numbers
def matmul_peaks(results) -> dict:
    """{(cores, dtype): best median GFLOP/s over the matmul sizes}."""
    peaks = {}
    for r in results:
        if r["section"] == "matmul" and r.get("gflops_per_s"):
            key = (r["cores"], r["dtype"])
            peaks[key] = max(peaks.get(key, 0.0), r["gflops_per_s"])
    return peaks


def annotate(data) -> None:
    """Add pct_of_peak to every row with GFLOP/s (against the peak measured on the same
    cores, same dtype; the busy machine's against all cores') and
    data['matmul_peak_gflops'], in place."""
    peaks = matmul_peaks(data["results"])
    data["matmul_peak_gflops"] = {f"{CORES[c]}, {d}": v for (c, d), v in peaks.items()}
    for r in data["results"]:
        cores = "all" if r["cores"] == "busy" else r["cores"]
        peak, gf = peaks.get((cores, r["dtype"])), r.get("gflops_per_s")
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
    rows = [r for r in rows if r and r["median_s"]]
    return min(rows, key=lambda r: r["median_s"]) if rows else None


def systems_in(rows) -> list[str]:
    """The systems of ``rows``: the registry's in its order, then any other (a plug-in)."""
    seen = list(dict.fromkeys(r["impl"] for r in rows))
    return [s for s in ORDER if s in seen] + [s for s in seen if s not in ORDER]


def label(system, versions) -> str:
    v = versions or {}
    names = {
        "npcnn": "npcnn (fast tier)",
        "npcnn-ops": "npcnn (readable ops)",
        "npcnn-old": "npcnn (other checkout)",
        "tf-eager": f"TensorFlow {v.get('tensorflow', '')} eager",
        "tf-function": f"TensorFlow {v.get('tensorflow', '')} `tf.function`",
        "torch-eager": f"PyTorch {v.get('torch', '')} eager",
        "torch-compile": f"PyTorch {v.get('torch', '')} `torch.compile`",
        "jax-jit": f"JAX {v.get('jax', '')} `jit`",
        "mygrad": f"MyGrad {v.get('mygrad', '')}",
    }
    return re.sub(r"\s+", " ", names.get(system, system))


def _ms(s):
    return "-" if s is None else (f"{s * 1e3:.3f}" if s < 0.01 else f"{s * 1e3:.1f}")


def _pct(r):
    return f" ({r['pct_of_peak']:.0f}%)" if r and r.get("pct_of_peak") else ""


def _why(r):
    """A failed row's reason, without the path of this machine's log."""
    return re.sub(r"; log: [^)]*", "", r["error"])


def _step_cell(r):
    if r is None or r.get("error"):
        return "-" if r is None else _why(r)
    return f"{_ms(r['median_s'])} ms{_pct(r)}"


def _inference_cell(r):
    if r is None or r.get("error"):
        return "-" if r is None else _why(r)
    return f"{r['batch'] / r['median_s']:,.0f} img/s{_pct(r)}"


# ---------------------------------------------------------------- tables
def peers_table(data) -> list[str]:
    """Every system: the step (headline batch) on all cores, one core, all cores with
    a CPU-burning process, and inference on all cores and one core; % of the matmul
    peak of the same cores in brackets; a missing or failing system says why."""
    res = data["results"]
    versions = data["machine"].get("versions", {})
    n = data["machine"].get("logical_cpus", "all")
    head = [r for r in res if r["section"] == "headline"]
    step_n = next((r["batch"] for r in head if r["kind"] == "train step"), 50)
    inf_n = next((r["batch"] for r in head if r["kind"] == "inference"), 1000)
    columns = [("train step", "all", f"step, batch {step_n}, {n} cores"),
               ("train step", "one", "step, 1 core"),
               ("train step", "busy", f"step, {n} cores + 1 CPU-burning process"),
               ("inference", "all", f"inference, batch {inf_n}, {n} cores"),
               ("inference", "one", "inference, 1 core")]  # fmt: skip
    columns = [c for c in columns if any((r["kind"], r["cores"]) == c[:2] for r in head)]
    lines = ["| system | " + " | ".join(c[2] for c in columns) + " |",
             "|---|" + "---|" * len(columns)]  # fmt: skip
    for system in systems_in(head):
        cells = [
            (_step_cell if kind == "train step" else _inference_cell)(
                find(res, "headline", system, kind, cores=cores)
            )
            for kind, cores, _ in columns
        ]
        lines.append(f"| {label(system, versions)} | " + " | ".join(cells) + " |")
    for system, reason in data.get("missing", {}).items():
        lines.append(f"| {system} | no rows: {reason} |" + " |" * (len(columns) - 1))
    return lines


def target_values(data) -> list[tuple[str, str, str, float, str | None]]:
    """(target, row id, what, value, text or None) for each target the results can
    answer: ``TARGETS[target]`` holds its bounds, the row id names the row across runs."""
    res, values = data["results"], []
    versions = data["machine"].get("versions", {})

    def ratio(kind, cores, rival):
        npc = find(res, "headline", "npcnn", kind, cores=cores)
        if not (npc and rival and npc["median_s"] and rival["median_s"]):
            return None
        # step: time ratio (< 1: npcnn faster); inference: throughput ratio (> 1: faster)
        a, b = npc["median_s"], rival["median_s"]
        return a / b if kind == "train step" else b / a

    for key, kind, cores, rival_name in (
        ("step", "train step", "all", None),
        ("step one", "train step", "one", None),
        ("step one torch-eager", "train step", "one", "torch-eager"),
        ("step busy", "train step", "busy", "tf-function"),
        ("inference", "inference", "all", None),
    ):
        rival = (find(res, "headline", rival_name, kind, cores=cores) if rival_name
                 else fastest(res, "headline", kind, cores))  # fmt: skip
        value = ratio(kind, cores, rival)
        if value is not None:
            what = (
                f"{kind}, batch {rival['batch']}, {CORES[cores]}: npcnn vs "
                f"{'the fastest, ' if not rival_name else ''}{label(rival['impl'], versions)}"
            )
            values.append((key, key, what, value, None))
    f32 = find(res, "float64", "npcnn", dtype="float32")
    f64 = find(res, "float64", "npcnn", dtype="float64")
    if f32 and f64 and f32["median_s"] and f64["median_s"]:
        values.append(("f64", "f64", "float64 / float32 training step",
                       f64["median_s"] / f32["median_s"], None))  # fmt: skip
    for size, pair in _memory_pairs(res).items():
        a, b = pair["npcnn"]["peak_bytes"], pair["tf-function"]["peak_bytes"]
        text = f"npcnn {a / 1e6:,.0f} MB, TF {b / 1e6:,.0f} MB ({a / max(b, 1):.2f}x)"
        what = f"peak memory of predict on {pair['npcnn']['batch']:,} images, batch_size={size}"
        values.append(("memory", f"memory {size}", what, a / max(b, 1), text))
    return values


def targets_rows(data) -> list[tuple[str, str, str, str]]:
    """(what, measured, must, aim) for each target the results can answer. When the
    run was repeated (``--repeat``: ``data["target_runs"]``, each run's values), a
    target is judged on the median of the runs, each run's value shown beside it."""
    rows, runs = [], data.get("target_runs") or []
    for key, row_id, what, value, text in target_values(data):
        seen = [run[row_id] for run in runs if row_id in run]
        if len(seen) > 1:
            value = statistics.median(seen)
            each, median = ", ".join(f"{v:.2f}" for v in seen), f"the median of {len(seen)} runs"
            text = (f"{value:.2f}x, {median} ({each})" if text is None
                    else f"{text}; {median} {value:.2f}x ({each})")  # fmt: skip
        op, *bounds = TARGETS[key]
        marks = [f"{op} {b:g}x ({'met' if (value <= b if op == '<=' else value >= b) else 'not'})"
                 for b in bounds]  # fmt: skip
        rows.append((what, text or f"{value:.2f}x", *marks))
    npc = find(data["results"], "headline", "npcnn", "train step")
    if npc and npc.get("pct_of_peak"):  # how far from what OpenBLAS's matmul reaches
        rows.append(("training step as % of the measured matmul peak (all cores)",
                     f"{npc['pct_of_peak']:.0f}%", "-", "-"))  # fmt: skip
    return rows


def breakdown_rows(res) -> dict:
    """{dtype: {part: row}} of the breakdown section (``breakdown.PARTS``), for the
    dtypes that have a row for every part."""
    rows = defaultdict(dict)
    for r in res:
        if r["section"] == "breakdown" and r.get("median_s"):
            rows[r["dtype"]][r["name"]] = r
    return {d: rows[d] for d in ("float32", "float64") if set(PARTS) <= set(rows[d])}


def breakdown_table(data) -> list[str]:
    """npcnn's step on one core in its three parts (``breakdown.py``), per dtype, then
    what the one-core target leaves for the rest once the products and Adam have run."""
    res, versions = data["results"], data["machine"].get("versions", {})
    parts = breakdown_rows(res)
    if not parts:
        return []
    lines = ["| dtype | the step (sum) | its matrix products | Adam's update | the rest |",
             "|---|---|---|---|---|"]  # fmt: skip
    for d, rows in parts.items():
        products, adam, rest = (rows[p] for p in PARTS)
        total = sum(rows[p]["median_s"] for p in PARTS)
        rate, pct = products.get("gflops_per_s"), products.get("pct_of_peak")
        speed = f", {pct:.0f}% of the peak" if pct else ""
        speed = f" ({rate:.0f} GFLOP/s{speed})" if rate else ""
        lines.append(f"| {d} | {_ms(total)} ms | {_ms(products['median_s'])} ms{speed} | "
                     f"{_ms(adam['median_s'])} ms | {_ms(rest['median_s'])} ms |")  # fmt: skip
    rival = fastest(res, "headline", "train step", "one")
    if rival and "float32" in parts:
        products, adam, rest = (parts["float32"][p]["median_s"] for p in PARTS)
        must, theirs = TARGETS["step one"][1], rival["median_s"]
        lines += ["", f"float32: the products and Adam alone take "
                  f"{(products + adam) / theirs:.2f}x the whole one-core step of "
                  f"{label(rival['impl'], versions)} ({_ms(theirs)} ms); {must:g}x of it leaves "
                  f"{_ms(must * theirs - products - adam)} ms for the rest, which took "
                  f"{_ms(rest)} ms."]  # fmt: skip
    return lines


def _memory_pairs(res) -> dict:
    """{batch_size: {"npcnn": row, "tf-function": row}} of the memory section."""
    mem = defaultdict(dict)
    for r in res:
        if r["section"] == "memory" and r.get("peak_bytes"):
            mem[str(r["batch_size"])][r["impl"]] = r
    return {k: v for k, v in mem.items() if "npcnn" in v and "tf-function" in v}


def targets_table(data) -> list[str]:
    rows = targets_rows(data)
    if not rows:
        return []
    return ["| what | measured | must | aim |", "|---|---|---|---|"] + [
        f"| {' | '.join(row)} |" for row in rows
    ]


def sweep_table(res, section, kind, cores, versions) -> list[str]:
    """Systems x batch sizes of ``section``, with the headline batch's row added."""
    rows = [r for r in res if r["section"] in (section, "headline") and r["kind"] == kind
            and r.get("cores", "all") == cores and r["dtype"] == "float32"]  # fmt: skip
    if not any(r["section"] == section for r in rows):
        return []
    batches = sorted({r["batch"] for r in rows})
    systems = systems_in(rows)
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
    systems = systems_in(rows)
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
        what = f"{r['name']} {r.get('variant', '')}".strip()
        if r.get("error"):
            times = f"{_why(r)} | |"
        else:
            times = f"{_ms(r['median_s'])} | {_ms(r['min_s'])}-{_ms(r['max_s'])}"
        gf = f"{r['gflops_per_s']:.1f}" if r.get("gflops_per_s") else "-"
        pct = f"{r['pct_of_peak']:.0f}%" if r.get("pct_of_peak") else "-"
        lines.append(f"| {what} | {r['kind']} | {r['batch']} | {r['dtype']} | {r['impl']} | "
                     f"{r['cores']} | {times} | {gf} | {pct} |")  # fmt: skip
    return lines


def machine_lines(data) -> list[str]:
    """The machine block: CPU and vector extensions, BLAS and its kernel, versions,
    load averages and matmul peaks at the start and the end, --force if it was used."""
    m = data["machine"]
    blas = (m.get("numpy_worker") or {}).get("blas", {})
    peaks = data.get("matmul_peak_gflops", {})

    def gflops(x):
        return "-" if not x else f"{x:.0f}"

    lines = [
        f"- CPU: {m['cpu_model']} ({m['vector']}), {m['logical_cpus']} CPUs; "
        f"load average before {load_text(m.get('load_average_at_start'))}, "
        f"after {load_text(m.get('load_average_at_end'))}",
        f"- float32 matmul ({data.get('settings', {}).get('peak', '')}^3, all cores) at the "
        f"start {gflops(m.get('peak_start_gflops'))} GFLOP/s, at the end "
        f"{gflops(m.get('peak_end_gflops'))} GFLOP/s",
        f"- Python {m['python']}; {_blas_line(blas)}; "
        + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items()),
    ]
    env = m.get("blas_environment") or {}
    settings = ", ".join(f"{k}={v}" for k, v in env.items()) or "none set"
    lines.append(f"- BLAS environment: {settings}")
    if peaks:
        lines.append("- matmul peak (best median over sizes): "
                     + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in peaks.items()))  # fmt: skip
    if m.get("left_out"):
        left_out = "; ".join(m["left_out"])
        lines.append(f"- left out of the tables and the targets' medians: {left_out}")
    if m.get("forced"):
        lines.append(f"- published with --force on a busy machine: {'; '.join(m['forced'])}")
    return lines


def _blas_line(blas):
    pools = [p for p in blas.get("pools", []) if p.get("user_api") == "blas"]
    return ", ".join(f"{p.get('internal_api')} {p.get('version')} (kernel "
                     f"{p.get('architecture')}, {p.get('num_threads')} threads)"
                     for p in pools) or "BLAS unknown"  # fmt: skip


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
    annotate(data)
    return data


def markdown(data) -> str:
    res = data["results"]
    versions = data["machine"].get("versions", {})
    lines = ["# Benchmark results", "", "Machine:", "", *machine_lines(data), "", "Runs:", ""]
    lines += [f"- `{cmd}` ({created}, {dur} s): {', '.join(secs)}"
              for secs, cmd, created, dur in data.get("runs", [])]  # fmt: skip
    settle = data.get("settings", {}).get("settle", 0)
    lines += ["", "Each system in a process of its own; medians of rounds interleaved across "
              "them, each round's block of calls timed after "
              f"{settle} untimed one{'s' if settle != 1 else ''} (`--settle`); "
              "% of the matmul peak measured in the same run on the same cores in "
              "brackets. One core: every worker on one CPU (`taskset -c 0`), one thread.",
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
        ("Where npcnn's step goes, one core (`breakdown`)", breakdown_table(data)),
    ]  # fmt: skip
    for title, table in blocks:
        if table:
            lines += [f"## {title}", "", *table, ""]
    titles = {"matmul": "Matmul peak", "float64": "float64 and float32 step",
              "adam": "Adam update (all parameters)", "kernels": "Fused CUDA kernels",
              "explore": "npcnn explore: one drawing (every layer, one class's gradients)"
              }  # fmt: skip
    for section, title in titles.items():
        rows = [r for r in res if r["section"] == section]
        if rows:
            lines += [f"## {title}", "", *generic_table(rows), ""]
    mem = [r for r in res if r["section"] == "memory"]
    if mem:
        lines += ["## Peak memory of predict", "", "| system | images | batch_size | peak MB |",
                  "|---|---|---|---|"]  # fmt: skip
        lines += [
            f"| {r['impl']} | {r['batch']:,} | {r['batch_size']} | {r['peak_bytes'] / 1e6:,.0f} |"
            for r in mem
            if r.get("peak_bytes")
        ]
        lines.append("")
    if data.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in data["notes"]] + [""]
    return "\n".join(lines)


def figure(data, path) -> bool:
    """Step time and inference throughput per system on each core setting, with what
    the matmul peak would give as a line; False without matplotlib or rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, MaxNLocator
    except ImportError:
        return False
    res = data["results"]
    head = [r for r in res if r["section"] == "headline" and r.get("median_s")]
    if not head:
        return False
    versions = data["machine"].get("versions", {})
    systems = systems_in(head)
    peaks = matmul_peaks(res)
    colors = {"all": "tab:blue", "one": "tab:orange", "busy": "tab:red"}
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.6 * len(systems) + 2.2))
    for ax, kind in zip(axes, ("train step", "inference")):
        settings = [c for c in colors if any((r["kind"], r["cores"]) == (kind, c) for r in head)]
        width = 0.8 / max(len(settings), 1)
        n = next((r["batch"] for r in head if r["kind"] == kind), 0)
        for k, cores in enumerate(settings):
            rows = [find(head, "headline", s, kind, cores=cores) for s in systems]
            vals = [0 if r is None else r["median_s"] * 1e3 if kind == "train step"
                    else r["batch"] / r["median_s"] for r in rows]  # fmt: skip
            ys = [i + (k - (len(settings) - 1) / 2) * width for i in range(len(systems))]
            ax.barh(ys, vals, width, color=colors[cores], label=CORES[cores])
            for y, v in zip(ys, vals):
                if v:
                    ax.text(v, y, f" {v:,.0f}" if v >= 100 else f" {v:.1f}", va="center",
                            fontsize=7)  # fmt: skip
            peak = peaks.get((cores, "float32"))
            if peak:  # the time (throughput) the network would take (reach) at the peak
                x = (train_flops(n) / (peak * 1e9) * 1e3 if kind == "train step"
                     else peak * 1e9 / forward_flops(1))  # fmt: skip
                what = f"at the matmul peak, {CORES[cores]} ({peak:.0f} GFLOP/s)"
                ax.axvline(x, color=colors[cores], ls="--", lw=1, label=what)
        ax.set_yticks(range(len(systems)), [label(s, versions).replace("`", "")
                                            for s in systems], fontsize=8)  # fmt: skip
        ax.invert_yaxis()
        unit = "ms (less is better)" if kind == "train step" else "images/s (more is better)"
        ax.set_xlabel(f"{kind}, batch {n}, {unit}")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # thousands of images/s: few ticks,
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))  # with commas
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    m = data["machine"]
    fig.suptitle(f"The seed CNN, float32, on {m['cpu_model']} ({m['vector']}), "
                 f"{m['logical_cpus']} CPUs", fontsize=10)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def breakdown_figure(data, path) -> bool:
    """npcnn's one-core step as stacked bars (matrix products, Adam, the rest; float32
    and float64) above the fastest framework's whole one-core step, with the one-core
    bound as a line; False without matplotlib or the breakdown's rows."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    res, versions = data["results"], data["machine"].get("versions", {})
    parts = breakdown_rows(res)
    if not parts:
        return False
    # one (color, legend) per part, in PARTS' order
    styles = [("tab:blue", "its matrix products"), ("tab:orange", "Adam's update"),
              ("tab:gray", "the rest")]  # fmt: skip
    dtypes = list(parts)
    rival = fastest(res, "headline", "train step", "one")
    fig, ax = plt.subplots(figsize=(9, 0.7 * (len(dtypes) + bool(rival)) + 1.6))
    for y, d in enumerate(dtypes):
        left = 0.0
        for name, (color, text) in zip(PARTS, styles):
            ms = parts[d][name]["median_s"] * 1e3
            ax.barh(y, ms, left=left, color=color, label=text if y == 0 else None)
            ax.text(left + ms / 2, y, f"{ms:.1f}", ha="center", va="center", fontsize=8)
            left += ms
    labels = [f"npcnn, {d}" for d in dtypes]
    if rival:
        theirs, must = rival["median_s"] * 1e3, TARGETS["step one"][1]
        ax.barh(len(dtypes), theirs, color="tab:green")
        ax.text(theirs / 2, len(dtypes), f"{theirs:.1f}", ha="center", va="center", fontsize=8)
        ax.axvline(must * theirs, color="tab:red", ls="--", lw=1,
                   label=f"the one-core bound, {must:g}x its step")  # fmt: skip
        labels.append(f"{label(rival['impl'], versions).replace('`', '')}, float32: the step")
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("ms per training step, batch 50, one core")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=4)
    ax.set_title("Where npcnn's one-core step goes", fontsize=10)
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
    for name, draw in (("peers.png", figure), ("breakdown.png", breakdown_figure)):
        if plots and draw(data, os.path.join(out, name)):
            written.append(os.path.join(out, name))
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
    """Rewrite the marked blocks of ``files`` (README.md, RESULTS.md, the guide) from
    the results folder ``out``: 'peers' (the table), 'figure' (the figure, linked
    relative to each file), 'machine', 'targets' and 'breakdown'. Returns the files
    changed."""
    data = load(out)
    if data is None:
        raise ValueError(f"{out} holds no results")
    runs = sorted(data.get("runs", []), key=lambda run: run[2])  # the latest headline run
    command = next((cmd for secs, cmd, _, _ in reversed(runs) if "headline" in secs), "")
    machine = machine_lines(data) + [f"- command: `{command}`"]
    blocks = {"peers": "\n".join(peers_table(data)), "machine": "\n".join(machine),
              "targets": "\n".join(targets_table(data)),
              "breakdown": "\n".join(breakdown_table(data))}  # fmt: skip
    changed = []
    for path in files:
        with open(path) as f:
            text = f.read()
        folder = os.path.relpath(out, os.path.dirname(os.path.abspath(path)))
        name = os.path.basename(out)
        picture = (f"![step time and inference throughput per system]({folder}/peers.png)\n\n"
                   f"Every table of the run: [{name}/report.md]({folder}/report.md)")  # fmt: skip
        here = {**blocks, "figure": picture}
        if os.path.exists(os.path.join(out, "breakdown.png")) and blocks["breakdown"]:
            here["breakdown"] += (f"\n\n![where npcnn's one-core step goes]"
                                  f"({folder}/breakdown.png)")  # fmt: skip
        new = text
        for name, body in here.items():
            if BEGIN.format(name=name) in new:
                new = replace_block(new, name, body)
        if new != text:
            with open(path + ".tmp", "w") as f:
                f.write(new)
            os.replace(path + ".tmp", path)
            changed.append(path)
    return changed
