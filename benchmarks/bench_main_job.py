"""The main job, recorded: runs `attendnext run` (the README's first command) and commits what it writes.

    python benchmarks/bench_main_job.py                       # the defaults: micro at 64 px on the embedded photos
    python benchmarks/bench_main_job.py --config attendnext_keras/configs/flowers160_micro96.yaml --name flowers160

The run's own summary.json / summary.md (accuracy of every format, size, latency, partitions, TFLM arena and
agreement, with command, date and machine) are copied to benchmarks/results/main_job[_NAME].{json,md}; the trained
models stay in --out (git-ignored).
"""

import argparse
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="A run config (default: the main job's defaults).")
    parser.add_argument("--name", default=None, help="Suffix of the result files (main_job_NAME.json).")
    parser.add_argument("--out", default="runs/main_job", help="Where the run writes its models (default: %(default)s).")
    args = parser.parse_args(argv)

    from attendnext_keras import _io
    from attendnext_keras.cli import main as attendnext

    command = ["run", "--out", args.out, "--overwrite"] + (["--config", args.config] if args.config else [])
    code = attendnext(command)
    if code:
        return code
    stem = "main_job" + (f"_{args.name}" if args.name else "")
    results = HERE / "results"
    for suffix in ("json", "md"):
        source = pathlib.Path(args.out) / f"summary.{suffix}"
        _io.write_atomic(results / f"{stem}.{suffix}", source.read_bytes())
        print(f"wrote {results / f'{stem}.{suffix}'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
