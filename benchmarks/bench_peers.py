"""AttendNeXt against the paper's peers (Wong et al. 2022, Figure 3), on this machine, in one run.

Every model (AttendNeXt base/small/micro; MobileNetV3-Large/Small, MobileNetV2, EfficientNet-B0, MobileViT-XS,
MobileOne-S1, FBNet-C) is built with random weights, profiled (parameters, MACs), converted with the same settings to
float32 and int8 (post-training quantization) TFLite, checked for XNNPACK partitions and timed with LiteRT at each
thread count, interleaved so that machine noise hits all models alike. Writes peers.json (every number, machine and
versions), peers.md (tables, speed/size ratios, a verdict on each of the paper's claims), peers.png (relative
throughput and size, normalised to FBNet-C, the paper's baseline) and, with --accuracies, pareto.png. The library is
attendnext_keras.benchmark.

    python benchmarks/bench_peers.py                                   # everything (conversions: ~15-30 min)
    python benchmarks/bench_peers.py --models attendnext_base mobilenet_v3_large fbnet_c --runs 50
    python benchmarks/bench_peers.py --accuracies results/accuracy.json --data path/to/images
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing


def main(argv=None):
    from attendnext_keras import benchmark

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchmark.add_arguments(parser, default_out=os.path.relpath(HERE / "results"))
    args = parser.parse_args(argv)
    try:
        benchmark.run_from_args(args)
    except (ValueError, FileNotFoundError) as error:
        parser.error(str(error))


if __name__ == "__main__":
    main()
