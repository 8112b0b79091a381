"""Executes the notebooks in notebooks/ (what CI does) and fails when a cell fails.

    python tools/run_notebooks.py                         # all notebooks, small settings (ATTENDNEXT_SMALL=1)
    python tools/run_notebooks.py 03_qat_to_int8_tflite   # some of them (names with or without .ipynb)
    python tools/run_notebooks.py --full                  # full settings (a GPU runtime, downloads data)
    python tools/run_notebooks.py --save-dir /tmp/nb      # also keep the executed copies, outputs included

Each notebook runs in a fresh Jupyter kernel of this Python interpreter (a kernel spec pointing at sys.executable is
written to a temporary JUPYTER_PATH, so another `python3` kernel installed on the machine cannot take over), with
notebooks/ as working directory, a 600 s limit per cell, and the repository root on PYTHONPATH. The notebook files
themselves are never written: they stay without outputs. Exit status 1 names each failing notebook and cell.
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
KERNEL = "python3"


def write_kernel_spec(folder: pathlib.Path) -> None:
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.executable})", "language": "python"}))


def failing_cell(nb):
    """(1-based cell number, first line of its source, 'Error: message') of the first cell with an error output."""
    for number, cell in enumerate(nb.cells, 1):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = next((line for line in cell.source.splitlines() if line.strip()), "")
                return number, first, f"{output.get('ename')}: {output.get('evalue')}"
    return None


def run_notebook(path: pathlib.Path, timeout: int, save_dir: pathlib.Path | None):
    """Executes one notebook; returns (seconds, None) or (seconds, description of the failure)."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.perf_counter()
    failure = None
    try:
        client.execute()
    except CellExecutionError:
        cell = failing_cell(nb)
        failure = (f"cell {cell[0]} ({cell[1]!r}) raised {cell[2]}" if cell else "a cell raised an error")
    except CellTimeoutError:
        failure = f"a cell ran longer than {timeout} s"
    except DeadKernelError as error:
        failure = f"the kernel died: {error}"
    seconds = time.perf_counter() - started
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, save_dir / path.name)
    return seconds, failure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebooks to run (default: all of notebooks/*.ipynb)")
    parser.add_argument("--full", action="store_true", help="full settings (no ATTENDNEXT_SMALL=1)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    parser.add_argument("--save-dir", type=pathlib.Path, help="write the executed notebooks here")
    args = parser.parse_args(argv)

    available = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.names:
        wanted = [name if name.endswith(".ipynb") else name + ".ipynb" for name in args.names]
        unknown = [name for name in wanted if not (NOTEBOOKS / name).exists()]
        if unknown:
            parser.error(f"no such notebook in notebooks/: {', '.join(unknown)}")
        paths = [NOTEBOOKS / name for name in wanted]
    else:
        paths = available
    if not paths:
        parser.error("notebooks/ holds no notebook")

    if args.full:
        os.environ.pop("ATTENDNEXT_SMALL", None)
    else:
        os.environ["ATTENDNEXT_SMALL"] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # a debugpy warning on every kernel start

    failures = []
    with tempfile.TemporaryDirectory(prefix="attendnext-kernels-") as jupyter_path:
        write_kernel_spec(pathlib.Path(jupyter_path))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(
            [jupyter_path] + [p for p in [os.environ.get("JUPYTER_PATH")] if p])
        settings = "full" if args.full else "small"
        for path in paths:
            print(f"{path.name}: running ({settings} settings) ...", flush=True)
            seconds, failure = run_notebook(path, args.timeout, args.save_dir)
            print(f"{path.name}: {'FAILED' if failure else 'ok'} in {seconds:.0f} s"
                  + (f": {failure}" if failure else ""), flush=True)
            if failure:
                failures.append(f"{path.name}: {failure}")
    if failures:
        print("\nFailed notebooks:\n  " + "\n  ".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
