#!/usr/bin/env bash
# Set up zeroforge on a fresh machine: one virtualenv for the project (.venv)
# and one for DVC (.venv/dvc), both pinned. Re-running is a fast no-op while
# pyproject.toml, the requirement files and this script are unchanged.
#
#     bash scripts/setup.sh                          # uv when it can be had, else pip
#     ZEROFORGE_INSTALLER=pip bash scripts/setup.sh  # force pip
#
# Installer: uv (pinned below) resolves and installs the same pins several
# times faster than pip. It is used from PATH if present, else installed once
# with pip into a bootstrap folder outside the project (kept across clones:
# ${XDG_CACHE_HOME:-~/.cache}/zeroforge/uv-<version>). If neither works, the
# script falls back to pip, the same pins either way. uv does not read pip's
# configuration, so the machine's pip settings (find-links, index and extra
# index URLs, constraint file, certificate bundle) are handed to it.
#
# Why two environments: dagster needs antlr4-python3-runtime 4.13; dvc (via
# hydra-core 1.3 / omegaconf 2.3) pins 4.9, and with 4.9 dagster's asset
# selection parser crashes. DVC writes only through its CLI anyway, so it
# lives in its own environment and zeroforge drives it as a command.
#
# Why torch first: `torch==2.13.0` resolves to the CPU build where one is
# available locally (pip find-links); any other torch request pulls several GB
# of CUDA packages. With uv the local CPU wheel is named by its path, so no
# index is ever asked for torch; the constraints file then pins it for
# everything else, and the installed build is checked at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${ZEROFORGE_VENV:-.venv}
STAMP="$VENV/.zeroforge-setup"
UV_VERSION=0.13.8
UV_BOOTSTRAP=${ZEROFORGE_UV_BOOTSTRAP:-${XDG_CACHE_HOME:-$HOME/.cache}/zeroforge/uv-$UV_VERSION}
want=$(cat pyproject.toml requirements/constraints.txt requirements/dvc.txt scripts/setup.sh | sha256sum | cut -c1-16)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "zeroforge: environment $VENV is up to date"
    exit 0
fi

start=$(date +%s)

# --- System packages ----------------------------------------------------------------------------------------------
# bubblewrap for the render sandbox; never fails the set-up. apt is mostly network and dpkg, the Python
# install mostly download and unpack: on a fresh machine they overlap (about 30 s of apt, saved).
bash scripts/system_deps.sh &
system_deps=$!

# --- Installer ----------------------------------------------------------------------------------------------------
uv=""
if [ "${ZEROFORGE_INSTALLER:-uv}" != pip ]; then
    if command -v uv >/dev/null 2>&1 && uv --version >/dev/null 2>&1; then
        uv=$(command -v uv)
    elif [ -x "$UV_BOOTSTRAP/bin/uv" ]; then
        uv="$UV_BOOTSTRAP/bin/uv"
    elif "$PYTHON" -m pip install --disable-pip-version-check -q --target "$UV_BOOTSTRAP" "uv==$UV_VERSION" 2>/dev/null \
            && "$UV_BOOTSTRAP/bin/uv" --version >/dev/null 2>&1; then
        uv="$UV_BOOTSTRAP/bin/uv"
    else
        echo "zeroforge: uv unavailable, installing with pip (slower)"
    fi
fi

# pip's setting $1 (e.g. find-links): PIP_* variable first, then the install and global sections of pip's files.
pip_config=$("$PYTHON" -m pip config list 2>/dev/null || true)
pip_setting() {
    local env_name value
    env_name="PIP_$(echo "$1" | tr 'a-z-' 'A-Z_')"
    value=${!env_name:-}
    if [ -z "$value" ]; then
        value=$(printf '%s\n' "$pip_config" | sed -n "s/^install\.$1='\(.*\)'$/\1/p" | head -n1)
    fi
    if [ -z "$value" ]; then
        value=$(printf '%s\n' "$pip_config" | sed -n "s/^global\.$1='\(.*\)'$/\1/p" | head -n1)
    fi
    printf '%s' "$value"
}

torch_pin=$(grep -E '^torch==' requirements/constraints.txt)
find_links=$(pip_setting find-links)

if [ -n "$uv" ]; then
    # uv ignores pip's files: pass the same sources. Every requirement is pinned exactly, so taking the best
    # match across all of them (pip's rule) rather than uv's first-index rule picks the same files pip picks.
    uv_args=(--index-strategy unsafe-best-match)
    index_url=$(pip_setting index-url)
    [ -n "$index_url" ] && uv_args+=(--index-url "$index_url")
    for url in $(pip_setting extra-index-url); do uv_args+=(--extra-index-url "$url"); done
    for dir in $find_links; do uv_args+=(--find-links "$dir"); done
    for file in $(pip_setting constraint); do [ -f "$file" ] && uv_args+=(--constraint "$file"); done
    cert=$(pip_setting cert)
    if [ -n "$cert" ] && [ -z "${SSL_CERT_FILE:-}" ]; then export SSL_CERT_FILE="$cert"; fi
    export UV_NO_PROGRESS=1

    # The local CPU torch wheel, by path, where find-links has one for this Python.
    torch_version=${torch_pin#torch==}
    py_tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
    torch_req=$torch_pin
    for dir in $find_links; do
        dir=${dir#file://}
        for whl in "$dir"/torch-"$torch_version"+cpu-"$py_tag"-"$py_tag"-*linux*_x86_64.whl; do
            [ -f "$whl" ] && torch_req=$whl && break 2
        done
    done

    # DVC's environment installs in the background while the main one installs and is import-checked.
    [ -x "$VENV/bin/python" ] || "$uv" venv -q --seed --python "$PYTHON" "$VENV"
    [ -x "$VENV/dvc/bin/python" ] || "$uv" venv -q --seed --python "$PYTHON" "$VENV/dvc"
    "$uv" pip install -q --python "$VENV/dvc/bin/python" "${uv_args[@]}" -r requirements/dvc.txt &
    dvc_install=$!
    trap '[ -z "${dvc_install:-}" ] || kill "$dvc_install" 2>/dev/null || true' EXIT
    "$uv" pip install -q --python "$VENV/bin/python" "${uv_args[@]}" -c requirements/constraints.txt "$torch_req" -e ".[dev]"
else
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
    $pip install "$torch_pin"
    $pip install -c requirements/constraints.txt -e ".[dev]"

    [ -x "$VENV/dvc/bin/python" ] || "$PYTHON" -m venv "$VENV/dvc"
    "$VENV/dvc/bin/python" -m pip --disable-pip-version-check -q install -r requirements/dvc.txt
fi

# Fail the set-up, not the first run, if the stack does not import (the first import also writes the bytecode,
# which uv, unlike pip, does not compile at install time); and say so if a CUDA torch got in (several GB, and
# not what the CPU pins mean).
"$VENV/bin/python" - "$torch_pin" <<'EOF'
import models.compat  # noqa: F401  (the torchvision fallback)
import importlib.metadata as md
import sys

import dagster, great_expectations, lancedb, open_clip, torch, torchvision, transformers, trl, webdataset  # noqa: E401,F401

cuda = sorted(d.metadata["Name"] for d in md.distributions() if (d.metadata["Name"] or "").lower().startswith("nvidia-"))
if torch.__version__.split("+")[0] != sys.argv[1].split("==")[1] or torch.version.cuda or cuda:
    print(f"zeroforge: warning: torch {torch.__version__} (CUDA {torch.version.cuda}) with {len(cuda)} nvidia packages installed")
EOF
if [ -n "${dvc_install:-}" ]; then wait "$dvc_install"; dvc_install=""; fi
wait "$system_deps" || true
"$VENV/dvc/bin/python" -m dvc --version >/dev/null

echo "$want" > "$STAMP"
installer=pip; [ -n "$uv" ] && installer="uv $("$uv" --version | cut -d" " -f2)"
echo "zeroforge: set up $VENV with $installer in $(( $(date +%s) - start )) s ($(du -sh "$VENV" | cut -f1))"
