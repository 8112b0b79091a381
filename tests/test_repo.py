"""The README's promises about the repository itself."""

import re
import subprocess
import sys

import pytest

from conftest import REPO


def readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (REPO / "README.md").read_text())


def test_readme_opens_with_two_commands_and_ci_runs_the_second():
    text = (REPO / "README.md").read_text()
    assert text.startswith("# attendnext_keras\n\n```bash\n")
    main_job, tests = readme_commands()[:2]
    assert "attendnext" in main_job and "pytest" in tests
    assert tests in (REPO / ".ci" / "run").read_text()


def test_import_is_quick_and_lazy():
    """Importing the package builds nothing and does not import TensorFlow."""
    code = "import sys, attendnext_keras; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"]


def test_notebooks_are_generated_clean_and_run_by_ci():
    """notebooks/*.ipynb are what tools/make_notebooks.py writes: no outputs, a Colab badge, a Colab-only install."""
    nbformat = pytest.importorskip("nbformat")
    check = subprocess.run([sys.executable, "tools/make_notebooks.py", "--check"], capture_output=True, text=True,
                           cwd=REPO)
    assert check.returncode == 0, check.stderr
    paths = sorted((REPO / "notebooks").glob("*.ipynb"))
    assert [p.name[:3] for p in paths] == ["01_", "02_", "03_", "04_"]
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(not cell.outputs and cell.execution_count is None for cell in code), path.name
        assert f"colab.research.google.com/github/attendnext/attendnext_keras/blob/main/notebooks/{path.name}" \
            in nb.cells[0].source
        assert '"google.colab" in sys.modules' in code[0].source
    assert ".venv/bin/python tools/run_notebooks.py" in (REPO / ".ci" / "run").read_text()


def test_the_install_is_pinned_by_a_constraints_lock():
    """constraints.txt pins an exact version of every requirement (and the dev extras) that setup.py asks for, the
    README's commands and CI install through it, and its header says when and how it was refreshed."""
    import ast

    lock = (REPO / "constraints.txt").read_text()
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in lock.splitlines()
              if line and not line.startswith("#")}
    assert all("==" in line for line in lock.splitlines() if line and not line.startswith("#"))
    tree = ast.parse((REPO / "setup.py").read_text())
    requirements = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and re.match(r"^[A-Za-z][\w.-]*\s*(>=|<=|==|~=|!=|<|>)", node.value)]
    names = {re.split(r"[<>=~!\[ ]", r)[0].lower().replace("_", "-") for r in requirements}
    assert {"tensorflow", "tflite-micro", "optuna", "pytest"} <= names
    missing = names - pinned
    assert not missing, f"constraints.txt is stale: no pin for {sorted(missing)} (refresh it as its header says)"
    assert re.search(r"Last refreshed: 20\d\d-\d\d-\d\d", lock)
    for command in readme_commands()[:2]:
        assert "-c constraints.txt" in command
    assert "-c constraints.txt" in (REPO / ".ci" / "run").read_text()
