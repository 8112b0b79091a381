"""Arm Ethos-U estimates from Vela: AttendNeXt against MobileNetV3 and MobileNetV2 on the NPU, and where the cycles go.

Every AttendNeXt registry variant and the study's MobileNet peers (MobileNetV3-Large/Small at 1.0 and 0.75,
MobileNetV2 at 1.0/0.75/0.5/0.35) are built by
`attendnext_keras.registry.create_model` (random weights, 1000 classes, logits) at 224 px (microcontroller variants at
their own size), converted to int8 by post-training quantization calibrated on uniform noise
(`attendnext_keras.data.calibration_images(None, ...)`: latency and memory do not depend on the pixels), and compiled by
Vela (`attendnext_keras.deploy.vela.compile_for_npu`) for each accelerator at Vela's default system configuration.
AttendNeXt models are compiled with the Ethos-U lowering of DC-AC's upsampling (`vela.for_target`: one
RESIZE_NEAREST_NEIGHBOR) and, for comparison, with the XNNPACK lowering (CONCATENATION + DEPTH_TO_SPACE, whose
DEPTH_TO_SPACE ops fall back to the CPU). Vela's per-layer estimates (`--verbose-performance`) on the first accelerator
say where the cycles go: by TFLite op type for every model, by AttendNeXt module for the AttendNeXt variants.

    python benchmarks/bench_vela.py                              # ~10 min on 2 cores (the conversions)
    python benchmarks/bench_vela.py --markdown-only              # rewrite results/vela.md from results/vela.json

Writes results/vela.json and results/vela.md atomically, with the command, date and machine
(`attendnext_keras.provenance.machine_info()`) and Vela's version. Vela's figures are estimates of the NPU part
(cycles at the configuration's NPU clock, SRAM and flash use), not measurements on a board; CPU fallbacks are counted,
not timed.
"""

from __future__ import annotations

import argparse
import collections
import os
import pathlib
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

# Every MobileNet of the study's front (config.FRONT_MODELS), so that the study can draw its fronts on the NPU too.
PEERS = ("mobilenet_v3_large", "mobilenet_v3_large_075", "mobilenet_v3_small", "mobilenet_v3_small_075",
         "mobilenet_v2", "mobilenet_v2_075", "mobilenet_v2_050", "mobilenet_v2_035")
ACCELERATORS = ("ethos-u55-128", "ethos-u65-256")
CALIBRATION_IMAGES = 32
ZERO_MAC_OPS = ("Add", "Mul", "Sub", "MaxPool", "AvgPool", "Concat", "ResizeNearestNeighbor", "ResizeBilinear",
                "HardSwish", "Sigmoid", "Mean", "Quantize", "Rescale", "MemoryCopy", "Reshape", "Transpose")
"""Vela's op names of ops that do no multiply-accumulates worth counting: elementwise ops, pooling, copies."""
MODULES = (  # AttendNeXt layer name → module; the first match wins
    ("DC-AC condense (max-pool)", r"_dcac_condense$"),
    ("DC-AC depthwise embeddings", r"_dcac_(attention|feature)_dw"),
    ("DC-AC 1×1 embed + expand convs", r"_dcac_(attention|feature)_(embed|relu|expand)"),
    ("DC-AC sigmoid", r"_dcac_sigmoid$"),
    ("DC-AC attend (A ⊙ B)", r"_dcac_attend$"),
    ("DC-AC upsample", r"_dcac_upsample$"),
    ("DC-AC residual add", r"_dcac_residual$"),
    ("AADS downsampling (max-pool + blur)", r"_down_"),
    ("block depthwise k×k", r"_block\d+_dw"),
    ("block pointwise 1×1", r"_block\d+_pw"),
    ("block residual add", r"_block\d+_add$"),
    ("column merge", r"_merge$"),
    ("stem conv", r"^stem_"),
    ("input rescaling", r"^rescaling"),
    ("head (pool, classifier)", r"^(head_|predictions)"),
)


def models_to_run(registry):
    """[(name, input size, target whose lowering it is built with)]: AttendNeXt twice, peers once."""
    runs = []
    for name in registry.list_models(family="attendnext"):
        size = registry.model_info(name).benchmark_size or 224
        runs += [(name, size, "ethos-u55-128"), (name, size, "xnnpack")]
    return runs + [(name, 224, "ethos-u55-128") for name in PEERS]


def measure(name, size, target, accelerators):
    """Converts one model (int8 PTQ on noise) and compiles it for every accelerator; per-layer rows on the first."""
    from attendnext_keras import data, registry
    from attendnext_keras.deploy import vela
    from attendnext_keras.deploy.conversion import to_tflite

    model = vela.for_target(registry.create_model(name, input_size=size, classes=1000), target)
    started = time.time()
    blob = to_tflite(model, "int8-ptq", representative_data=data.calibration_images(None, size, CALIBRATION_IMAGES))
    result = {"model": name, "input_size": size, "lowering": vela.LOWERING[target], "params": model.count_params(),
              "int8_bytes": len(blob), "convert_s": time.time() - started, "vela": {}}
    for i, accelerator in enumerate(accelerators):
        report = vela.compile_for_npu(blob, accelerator, model=model, per_layer=i == 0)
        figures = report.as_dict()
        rows = figures.pop("per_layer")
        if rows is not None:
            figures.update(per_layer_summary(rows, name.startswith("attendnext")))
        result["vela"][accelerator] = figures
        print(f"{name} {size}px {vela.LOWERING[target]} {accelerator}: {report.inference_ms:.2f} ms, "
              f"{len(report.cpu_ops)} CPU op(s)", file=sys.stderr)
    return result


def per_layer_summary(rows, attendnext) -> dict:
    """What the per-layer rows say, small enough to commit: cycles and MACs by op type, by what bounds them
    (compute or a memory), by AttendNeXt module, in the classifier head, and the costliest layers."""
    head = max((i for i, row in enumerate(rows) if row["op"] == "Mean"), default=len(rows))  # global pool (SE: before)
    return {"by_op": _totals(rows, lambda row: row["op"]),
            "by_bound": _totals(rows, lambda row: row["bound_by"]),
            "by_op_bound": _totals(rows, lambda row: f"{row['op']} / {row['bound_by']}"),
            "by_module": _totals(rows, module_of) if attendnext else None,
            "head": _totals(rows[head:], lambda row: "head")["head"],
            "head_layers": sorted({row["layer"] for row in rows[head:]}),
            "top_layers": [{k: row[k] for k in ("layer", "op", "cycles", "macs", "bound_by")}
                           for row in sorted(rows, key=lambda row: -row["cycles"])[:12]]}


def _totals(rows, key) -> dict:
    """{key(row): {"cycles", "macs"}}, most cycles first."""
    totals = collections.defaultdict(lambda: {"cycles": 0, "macs": 0})
    for row in rows:
        totals[key(row)]["cycles"] += row["cycles"]
        totals[key(row)]["macs"] += row["macs"]
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]["cycles"]))


def module_of(row) -> str:
    return next((label for label, pattern in MODULES if re.search(pattern, row["layer"])), "other")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accelerators", nargs="+", default=list(ACCELERATORS),
                        help=f"Vela accelerator configurations; per-layer estimates on the first (default: "
                             f"{' '.join(ACCELERATORS)}).")
    parser.add_argument("--out", default=str(HERE / "results"), help="Output folder (default: benchmarks/results).")
    parser.add_argument("--markdown-only", action="store_true", help="Rewrite vela.md from an existing vela.json.")
    args = parser.parse_args(argv)

    from attendnext_keras import _io, provenance, registry
    from attendnext_keras.deploy import vela

    out = pathlib.Path(args.out)
    if args.markdown_only:
        result = _io.read_json(out / "vela.json", "Vela result")
    else:
        for accelerator in args.accelerators:
            if accelerator not in vela.ETHOS_U:
                parser.error(f"unknown accelerator {accelerator!r}; known: {', '.join(vela.ETHOS_U)}")
        version = vela.require_vela()
        _io.check_writable(out / "vela.json")  # before minutes of conversions
        command = provenance.command_line(["benchmarks/bench_vela.py", *(sys.argv[1:] if argv is None else argv)])
        info = provenance.machine_info(command)
        info["versions"]["ethos-u-vela"] = version
        started = time.time()
        runs = [measure(name, size, target, args.accelerators) for name, size, target in models_to_run(registry)]
        info["load_average_after"] = provenance.load_average()
        result = {"machine": info, "accelerators": args.accelerators, "calibration_images": CALIBRATION_IMAGES,
                  "display_names": {r["model"]: registry.display_name(r["model"]) for r in runs},
                  "runs": runs, "seconds": time.time() - started}
        _io.write_json(out / "vela.json", result)
    text = markdown(result)
    _io.write_atomic(out / "vela.md", text)
    print(text)
    print(f"\nwrote {out / 'vela.json'} and {out / 'vela.md'}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------------------------
# Report

BOUNDS = {"npu": "compute", "sram_access": "SRAM", "dram_access": "DRAM", "on_chip_flash_access": "on-chip flash",
          "off_chip_flash_access": "off-chip flash"}


def markdown(result) -> str:
    from attendnext_keras.experiments.reports import provenance_lines

    first = result["accelerators"][0]
    lines = ["# Arm Ethos-U estimates (Vela)", "", *provenance_lines(result["machine"]),
             f"{result['seconds'] / 60:.0f} min. Random weights, 1000 classes, logits; int8 post-training quantization "
             f"calibrated on {result['calibration_images']} noise images; Vela "
             f"{result['machine']['versions']['ethos-u-vela']} at its default system configuration per accelerator. "
             f"Vela's figures are estimates of the NPU part, not measurements; ops on the CPU are counted, not timed.",
             ""]
    for part in (summary_table, bound_table, op_table, module_table, layer_table, findings):
        lines += part(result, first) + [""]
    return "\n".join(lines).rstrip() + "\n"


def _run(result, name):
    """The run of `name` built for the NPU (AttendNeXt with the resize lowering; peers have nothing to lower)."""
    return next((r for r in result["runs"] if r["model"] == name and r["lowering"] == "resize"), None)


def _npu_runs(result, size=224):
    return [r for r in result["runs"] if r["lowering"] == "resize" and r["input_size"] == size]


def _name(result, run):
    return result["display_names"][run["model"]]


def summary_table(result, _) -> list:
    accelerators = result["accelerators"]
    head = "| model | px | DC-AC upsampling | params | MACs | NPU ops | CPU ops | " + " | ".join(
        f"{a} ms | {a} SRAM KiB | {a} off-chip KiB" for a in accelerators) + " |"
    lines = ["## Per model", "", head, "|---" * (7 + 3 * len(accelerators)) + "|"]
    for run in result["runs"]:
        v = run["vela"][accelerators[0]]
        lowering = run["lowering"] if run["model"].startswith("attendnext") else "—"
        cells = [f"{run['vela'][a]['inference_ms']:.2f} | {run['vela'][a]['sram_bytes'] / 1024:.0f} | "
                 f"{(run['vela'][a]['flash_bytes'] + run['vela'][a]['dram_bytes']) / 1024:.0f}" for a in accelerators]
        lines.append(f"| {_name(result, run)} | {run['input_size']} | {lowering} | {run['params'] / 1e6:.2f} M | "
                     f"{v['macs'] / 1e6:.0f} M | {sum(v['npu_ops'].values())} | {len(v['cpu_ops'])} | "
                     + " | ".join(cells) + " |")
    lines += ["", "MACs as Vela counts them (NPU part). resize: DC-AC's upsampling as one RESIZE_NEAREST_NEIGHBOR "
                  "(what `attendnext export --target ethos-u…` builds); depth_to_space: the XNNPACK graph, whose "
                  "DEPTH_TO_SPACE ops run on the CPU and split the NPU graph (their CPU time is not in the estimate). "
                  "Vela's default systems:"]
    for a in accelerators:
        v = result["runs"][0]["vela"][a]
        lines.append(f"* {a}: {v['system_config']}, {v['memory_mode']}, NPU at {v['clock_mhz']:g} MHz; weights in "
                     f"{v['weights_area']}, activations in {v['feature_map_area']} (off-chip KiB: flash + DRAM).")
    return lines


def bound_table(result, accelerator) -> list:
    """Per model: which unit bounds the cycles (an op takes the largest of its compute and memory-access cycles),
    the classifier head's share, MAC utilisation."""
    macs_per_cycle = int(accelerator.rsplit("-", 1)[1])
    bounds = list(dict.fromkeys(b for r in _npu_runs(result) for b in r["vela"][accelerator]["by_bound"]))
    lines = [f"## What bounds the cycles ({accelerator}, per-layer estimates)", "",
             "| model | ms | MACs | MAC utilisation | " + " | ".join(f"% cycles bound by {BOUNDS[b]}" for b in bounds)
             + " | classifier head % cycles (layers) |", "|---" * (5 + len(bounds)) + "|"]
    for run in _npu_runs(result):
        v = run["vela"][accelerator]
        cells = [f"{v['by_bound'].get(b, {'cycles': 0})['cycles'] / v['cycles']:.0%}" for b in bounds]
        lines.append(f"| {_name(result, run)} | {v['inference_ms']:.2f} | {v['macs'] / 1e6:.0f} M | "
                     f"{v['macs'] / (v['cycles'] * macs_per_cycle):.0%} | " + " | ".join(cells) +
                     f" | {v['head']['cycles'] / v['cycles']:.0%} ({', '.join(v['head_layers'])}) |")
    lines += ["", f"MAC utilisation: MACs / (cycles × {macs_per_cycle} MACs per cycle). Classifier head: the "
                  "global pool and everything after it."]
    return lines


def op_table(result, accelerator) -> list:
    """Cycle share, MAC share and MAC utilisation per op type, side by side for the 224-px models."""
    runs = _npu_runs(result)
    macs_per_cycle = int(accelerator.rsplit("-", 1)[1])
    ops = list(dict.fromkeys(op for r in runs for op in r["vela"][accelerator]["by_op"]))
    lines = [f"## Where the cycles go, by op type ({accelerator})", "",
             "| op (Vela) | " + " | ".join(f"{_name(result, r)} % cycles (% MACs, util)" for r in runs) + " |",
             "|---" * (1 + len(runs)) + "|"]
    lines += _share_rows(runs, accelerator, "by_op", ops,
                         lambda entry: f", {_utilisation(entry, macs_per_cycle)}")
    lines += ["", "util: MACs / (cycles × MACs per cycle) of that op type; \"—\": the model has no such op."]
    return lines


def _utilisation(entry, macs_per_cycle) -> str:
    return f"{entry['macs'] / (entry['cycles'] * macs_per_cycle):.0%}" if entry["macs"] else "no MACs"


def module_table(result, accelerator) -> list:
    runs = [r for r in result["runs"] if r["model"].startswith("attendnext") and r["lowering"] == "resize"]
    modules = list(dict.fromkeys(m for r in runs for m in r["vela"][accelerator]["by_module"]))
    lines = [f"## AttendNeXt by module ({accelerator})", "",
             "| module | " + " | ".join(f"{_name(result, r)} ({r['input_size']} px) % cycles (% MACs)" for r in runs)
             + " |", "|---" * (1 + len(runs)) + "|"]
    return lines + _share_rows(runs, accelerator, "by_module", modules, lambda entry: "")


def _share_rows(runs, accelerator, key, names, extra) -> list:
    """One markdown row per op type or module: its share of each run's cycles (and MACs, then `extra(entry)`)."""
    rows = []
    for name in names:
        cells = []
        for r in runs:
            v = r["vela"][accelerator]
            entry = v[key].get(name)
            cells.append("—" if entry is None else
                         f"{entry['cycles'] / v['cycles']:.1%} ({entry['macs'] / v['macs']:.0%}{extra(entry)})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def layer_table(result, accelerator) -> list:
    lines = []
    for name in ("attendnext_base", "mobilenet_v3_large"):
        run = _run(result, name)
        if run is None:
            continue
        v = run["vela"][accelerator]
        lines += [f"## Costliest layers of {_name(result, run)} ({accelerator})", "",
                  "| layer | op | % cycles | MACs | bound by |", "|---|---|---|---|---|"]
        lines += [f"| {row['layer']} | {row['op']} | {row['cycles'] / v['cycles']:.1%} | {row['macs'] / 1e6:.2f} M | "
                  f"{BOUNDS[row['bound_by']]} |" for row in v["top_layers"][:8]] + [""]
    return lines[:-1]


def _share(v, ops) -> float:
    return sum(e["cycles"] for op, e in v["by_op"].items() if op in ops) / v["cycles"]


def findings(result, accelerator) -> list:
    """The per-layer findings, every number computed from this run."""
    runs = {key: _run(result, name) for key, name in (("base", "attendnext_base"), ("large", "mobilenet_v3_large"),
                                                      ("small", "mobilenet_v3_small"))}
    if None in runs.values():
        return []
    v = {key: run["vela"][accelerator] for key, run in runs.items()}
    off_chip = {k: sum(e["cycles"] for b, e in x["by_bound"].items() if b not in ("npu", "sram_access"))
                / x["cycles"] for k, x in v.items()}
    image = {k: x["flash_bytes"] + x["dram_bytes"] for k, x in v.items()}
    zero = {k: _share(x, ZERO_MAC_OPS) for k, x in v.items()}
    module = {k: m["cycles"] / v["base"]["cycles"] for k, m in v["base"]["by_module"].items()}
    dcac = sum(share for k, share in module.items() if k.startswith("DC-AC"))
    ratio = lambda key, a, b="base": v[a][key] / v[b][key]  # noqa: E731
    ms = lambda key, share: share * v[key]["inference_ms"]  # noqa: E731
    condensed = sum(share for k, share in module.items()
                    if k.startswith("DC-AC") and any(w in k for w in ("embed", "sigmoid", "attend")))
    return [
        f"## Findings ({accelerator})", "",
        f"* **Why base's lead over MobileNetV3-Large shrinks on the NPU.** Base does "
        f"{ratio('macs', 'large'):.1f}× fewer MACs and is estimated {ratio('inference_ms', 'large'):.2f}× faster "
        f"({v['base']['inference_ms']:.2f} vs "
        f"{v['large']['inference_ms']:.2f} ms). The MAC array is rarely the limit: ops bound by reading weights from "
        f"off-chip memory take {off_chip['base']:.0%} of base's cycles ({ms('base', off_chip['base']):.1f} ms) and "
        f"{off_chip['large']:.0%} of MobileNetV3-Large's ({ms('large', off_chip['large']):.1f} ms), and base's "
        f"off-chip image is only {image['large'] / image['base']:.2f}× smaller ({image['base'] / 1024:.0f} vs "
        f"{image['large'] / 1024:.0f} KiB): closer to the time ratio than the MAC ratio is. On the CPU, MobileNetV3 "
        f"also pays for hard-swish leaving XNNPACK (22 int8 partitions, results/peers.md); Vela fuses hard-swish into "
        f"the convolutions, so that handicap is gone here.",
        f"* **The classifier head.** Base's head ({', '.join(v['base']['head_layers'])}) takes "
        f"{v['base']['head']['cycles'] / v['base']['cycles']:.0%} of its cycles "
        f"({ms('base', v['base']['head']['cycles'] / v['base']['cycles']):.1f} ms) for "
        f"{v['base']['head']['macs'] / v['base']['macs']:.0%} of its MACs: the fully connected weights are read from "
        f"off-chip flash once per inference, one MAC per weight byte. MobileNetV3-Large's head takes "
        f"{v['large']['head']['cycles'] / v['large']['cycles']:.0%}, MobileNetV3-Small's "
        f"{v['small']['head']['cycles'] / v['small']['cycles']:.0%}.",
        f"* **Ops without MACs** (Add, Mul, max-pool, concatenation, resize, sigmoid/hard-swish, mean) take "
        f"{zero['base']:.0%} of base's cycles ({ms('base', zero['base']):.1f} ms) against {zero['large']:.0%} for "
        f"MobileNetV3-Large and {zero['small']:.0%} for MobileNetV3-Small ({ms('small', zero['small']):.1f} ms): each "
        f"is one pass over a whole tensor, and base runs many at high resolution — AADS max-pool + blur "
        f"{module.get('AADS downsampling (max-pool + blur)', 0):.0%}, DC-AC residual adds "
        f"{module.get('DC-AC residual add', 0):.0%}, input rescaling {module.get('input rescaling', 0):.0%}, block "
        f"residual adds {module.get('block residual add', 0):.0%}, column merges {module.get('column merge', 0):.0%}. "
        f"They account for {ms('base', zero['base']) - ms('small', zero['small']):.1f} of the "
        f"{v['base']['inference_ms'] - v['small']['inference_ms']:.1f} ms by which base trails MobileNetV3-Small "
        f"(base has {image['base'] / image['small']:.2f}× its off-chip bytes and "
        f"{ratio('macs', 'base', 'small'):.2f}× its MACs).",
        f"* **DC-AC** costs {dcac:.0%} of base's cycles in all, mostly in full-resolution passes: residual add "
        f"{module.get('DC-AC residual add', 0):.0%}, upsample {module.get('DC-AC upsample', 0):.0%}, condense max-pool "
        f"{module.get('DC-AC condense (max-pool)', 0):.0%}; its convolutions, sigmoid and product run at the condensed "
        f"resolution ({condensed:.0%}). Depthwise convolutions take {_share(v['base'], ('DepthwiseConv2D',)):.0%} of "
        f"base's cycles ({_share(v['large'], ('DepthwiseConv2D',)):.0%} for MobileNetV3-Large); base's 1×1 "
        f"convolutions keep the MAC array busier than MobileNetV3's (op table).",
    ] + lowering_finding(result)


def lowering_finding(result) -> list:
    """What the Ethos-U lowering changes, per AttendNeXt variant and accelerator."""
    cells, counts = [], {}
    for name in dict.fromkeys(r["model"] for r in result["runs"] if r["model"].startswith("attendnext")):
        npu = _run(result, name)
        xnn = next(r for r in result["runs"] if r["model"] == name and r["lowering"] == "depth_to_space")
        cells += [f"{_name(result, npu)} {a} {xnn['vela'][a]['inference_ms']:.2f} → "
                  f"{npu['vela'][a]['inference_ms']:.2f} ms" for a in result["accelerators"]]
        counts.setdefault(len(xnn["vela"][result["accelerators"][0]]["cpu_ops"]), []).append(_name(result, npu))
    moved = "; ".join(f"{n} in {', '.join(names)} (one command stream instead of {n + 1})"
                      for n, names in sorted(counts.items()))
    return [f"* **The Ethos-U lowering** moves the DEPTH_TO_SPACE ops back onto the NPU — {moved} — with no CPU time, "
            f"which the estimates leave out, and changes the NPU estimate as follows: " + "; ".join(cells) + "."]


if __name__ == "__main__":
    main()
