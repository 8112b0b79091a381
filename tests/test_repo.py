"""The README's promises about the repository itself."""

import re
import subprocess
import sys

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
