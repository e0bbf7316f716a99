#!/usr/bin/env bash
# Download the wheels bench/gpu_check.py needs on the GPU device, which has torch, transformers, accelerate,
# peft, pandas and pyarrow but not trl or datasets and cannot reach a package registry.
#
#     bash bench/gpu_wheels.sh [DEST]        # default DEST: .whl (git-ignored), for the device tool's `carry`
#     DEVICE_PYTHON=3.12 bash bench/gpu_wheels.sh
#     GPU_WHEELS_FALLBACK='fsspec xxhash' bash bench/gpu_wheels.sh   # fewer fallbacks (pyarrow's is ~45 MiB)
#
# Versions are the project's pins (requirements/constraints.txt). DEST/ gets what the device lacks: trl,
# datasets and datasets' pure-Python dependencies dill and multiprocess (multiprocess ships one wheel per Python
# version, so it is fetched for the device's). DEST/fallback/ gets wheels of dependencies the device image
# already has in some version (fsspec, xxhash, huggingface_hub, pyarrow); bench/gpu_check.sh installs one of
# those only if the device's own version is missing or outside the range trl/datasets require. xxhash and
# pyarrow have C extensions: they are fetched as manylinux wheels for DEVICE_PYTHON (3.12, the device image's
# python3; bench/gpu_check.sh checks it matches). Everything stays well under the 64 MiB a device call carries.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PYV=${DEVICE_PYTHON:-3.12}
pin() { grep -iE "^$1==" requirements/constraints.txt | head -n1; }

rm -rf "$DEST" && mkdir -p "$DEST/fallback"
platform=(--only-binary=:all: --python-version "$PYV" --implementation cp
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
          --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
dl() { python3 -m pip download -q --disable-pip-version-check --no-deps "${platform[@]}" -d "$@"; }

dl "$DEST" "$(pin trl)" "$(pin datasets)" "$(pin dill)" "$(pin multiprocess)"
fallback=()
for name in ${GPU_WHEELS_FALLBACK:-fsspec xxhash huggingface_hub pyarrow}; do fallback+=("$(pin "$name")"); done
[ "${#fallback[@]}" -gt 0 ] && dl "$DEST/fallback" "${fallback[@]}"

ls -1 "$DEST" "$DEST/fallback"
mib=$(( $(du -sb "$DEST" | cut -f1) / 1048576 ))
echo "gpu_wheels: $mib MiB in $DEST (one device call carries at most 64 MiB, working tree included)"
if [ "$mib" -gt 58 ]; then
    echo "gpu_wheels: close to the limit; pyarrow is most of it: GPU_WHEELS_FALLBACK='fsspec xxhash huggingface_hub' leaves it out"
fi
