"""`twinops --help` must answer at once: the CLI module imports typer and nothing heavy.

Checked by what gets imported, not by a clock (machines here are shared and noisy).
"""

from __future__ import annotations

import subprocess
import sys

#: typer itself uses pydantic (its type coercion), so pydantic is not on this list.
HEAVY = ("pydantic_settings", "features.settings", "prefect", "torch", "lightning",
         "mlflow", "feast", "evidently", "bentoml", "dvc", "pandas", "numpy", "rich")


def _modules_after(code: str) -> set[str]:
    code += "\nimport sys; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return set(out.split())


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "pipelines.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("simulate", "ingest", "features", "train", "evaluate", "promote", "serve",
                    "feedback", "monitor", "benchmark", "review", "run", "assets", "fleet",
                    "recommend"):
        assert f"  {command} " in out, command


def test_importing_the_cli_loads_no_heavy_library():
    loaded = _modules_after("import pipelines.cli")
    assert not [m for m in HEAVY if m in loaded]


def test_help_renders_without_heavy_libraries():
    loaded = _modules_after(
        "import sys\nfrom pipelines.cli import app\nsys.argv = ['twinops', 'review', '--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    assert not [m for m in HEAVY if m in loaded]
