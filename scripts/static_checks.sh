#!/usr/bin/env bash
# The static gates that `make test` (scripts/test.sh) runs before the suite, each failing the run:
# ruff's lint and format check, mypy and import-linter's layer contracts (docs/architecture.md),
# all configured in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m ruff check .
python -m ruff format --check .
# mypy and import-linter read folders, so they check the package as it is installed: the stage
# folders linked under jointspace/ in .cache/package-view (scripts/package_view.py).
python scripts/package_view.py >/dev/null
python -m mypy
# import-linter puts the working directory first on the import path: run it from the view.
# (Through this python rather than the lint-imports script, which pyenv may not have on PATH yet.)
(cd .cache/package-view && python -c "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())" \
  ../../pyproject.toml --no-cache)
