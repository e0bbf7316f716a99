#!/usr/bin/env bash
# Set up zeroforge on a fresh machine: one virtualenv for the project (.venv)
# and one for DVC (.venv/dvc), both pinned. Re-running is a fast no-op while
# pyproject.toml, the requirement files and this script are unchanged.
#
# Why two environments: dagster needs antlr4-python3-runtime 4.13; dvc (via
# hydra-core 1.3 / omegaconf 2.3) pins 4.9, and with 4.9 dagster's asset
# selection parser crashes. DVC writes only through its CLI anyway, so it
# lives in its own environment and zeroforge drives it as a command.
#
# Why torch first: `torch==2.13.0` resolves to the CPU build where one is
# available locally (pip find-links); any other torch request pulls several GB
# of CUDA packages. The constraints file then pins it for everything else.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${ZEROFORGE_VENV:-.venv}
STAMP="$VENV/.zeroforge-setup"
want=$(cat pyproject.toml requirements/constraints.txt requirements/dvc.txt scripts/setup.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "zeroforge: environment $VENV is up to date"
    exit 0
fi

start=$(date +%s)
bash scripts/system_deps.sh  # bubblewrap for the render sandbox; never fails the set-up
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
torch_pin=$(grep -E '^torch==' requirements/constraints.txt)
$pip install "$torch_pin"
$pip install -c requirements/constraints.txt -e ".[dev]"

[ -x "$VENV/dvc/bin/python" ] || "$PYTHON" -m venv "$VENV/dvc"
"$VENV/dvc/bin/python" -m pip --disable-pip-version-check -q install -r requirements/dvc.txt

# Fail the set-up, not the first run, if the stack does not import.
"$VENV/bin/python" -c "import models.compat; import torchvision, transformers, trl, dagster, lancedb, webdataset, open_clip, great_expectations"
"$VENV/dvc/bin/python" -m dvc --version >/dev/null

echo "$want" > "$STAMP"
echo "zeroforge: set up $VENV in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
