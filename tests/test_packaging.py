"""What `pip install .` and `pipx install .` put on a machine: every module and data file
of the package, not only what an editable install happens to find in the clone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_wheel_holds_every_module_and_data_file(tmp_path: Path) -> None:
    # built from a copy of the files a clone has: a build/ left in the work tree by an
    # earlier build would hide a package the configuration leaves out
    source = tmp_path / "source"
    for name in ("pyproject.toml", "README.md"):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "confcall", source / "confcall",
                    ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
         str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("confcall-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "confcall"
    wanted = {str(path.relative_to(ROOT)) for path in package.rglob("*")
              if path.suffix in (".py", ".json", ".typed") and "__pycache__" not in path.parts}
    assert wanted - inside == set()
