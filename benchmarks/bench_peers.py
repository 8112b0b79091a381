"""AttendNeXt against the paper's peers (Wong et al. 2022, Figure 3), on this machine, in one run.

Every model (AttendNeXt base/small/micro; MobileNetV3-Large/Small, MobileNetV2, EfficientNet-B0, MobileViT-XS,
MobileOne-S1, FBNet-C) is built with random weights, profiled (parameters, MACs), converted with the same settings to
float32 and int8 (post-training quantization) TFLite, checked for XNNPACK partitions and timed with LiteRT at each
thread count, interleaved so that machine noise hits all models alike. Writes peers.json (every number, and the
command, machine and versions from `provenance.machine_info()`), peers.md (tables, speed/size ratios, a verdict on
each of the paper's claims), peers.png (relative throughput and size, normalised to FBNet-C, the paper's baseline)
and, with --accuracies, pareto.png, each written atomically.

This script is `attendnext benchmark` (attendnext_keras/cli.py; the library is attendnext_keras.experiments.benchmark
and .benchmark_report) with the results written to benchmarks/results unless --out says otherwise; every flag of
`attendnext benchmark` works here (--help lists them).

    python benchmarks/bench_peers.py                                   # everything (conversions: ~15-30 min)
    python benchmarks/bench_peers.py --models attendnext_base mobilenet_v3_large fbnet_c --runs 50
    python benchmarks/bench_peers.py --accuracies results/accuracy.json --data path/to/images
    python benchmarks/bench_peers.py --from-json results/peers.json --accuracies results/accuracy.json
"""

from __future__ import annotations

import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing


def main(argv=None) -> int:
    from attendnext_keras import cli

    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(arg == "--out" or arg.startswith("--out=") for arg in argv):
        argv += ["--out", os.path.relpath(HERE / "results")]
    verbose = [arg for arg in argv if arg == "--verbose"]  # a flag of `attendnext` itself, before the command
    argv = [arg for arg in argv if arg != "--verbose"]
    return cli.main([*verbose, "benchmark", *argv])


if __name__ == "__main__":
    sys.exit(main())
