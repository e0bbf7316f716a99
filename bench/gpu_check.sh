#!/usr/bin/env bash
# Run bench/gpu_check.py on the GPU device, installing the carried wheels it lacks first.
#
#     bash bench/gpu_wheels.sh                 # here, once: fetch the wheels into .whl/
#     (device tool) run command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 600
#     bash bench/gpu_check.sh --dry-run        # here, on CPU: the same path with --device cpu --tiny (< 1 min)
#
# Any other arguments go to bench/gpu_check.py. The wheels in .whl/ are installed into a --target folder
# (/tmp/site, put first on PYTHONPATH) with no index and no dependency resolution, so the device's own torch,
# transformers and the rest stay as they are. A wheel from .whl/fallback/ is installed only when the device's
# version of that package is missing or outside what the carried trl/datasets require.
set -euo pipefail
cd "$(dirname "$0")/.."

dry=0
args=()
for a in "$@"; do
    case "$a" in
        --dry-run) dry=1 ;;
        *) args+=("$a") ;;
    esac
done
if [ "$dry" = 1 ]; then
    args=(--device cpu --tiny "${args[@]}")
    PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
fi
PY=${PYTHON:-python3}
WHEELS=${GPU_CHECK_WHEELS:-.whl}
SITE=${GPU_CHECK_SITE:-/tmp/site}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

if [ -d "$WHEELS" ]; then
    # Which carried wheels this Python needs (prints their paths); fails if a binary wheel is for another Python.
    mapfile -t needed < <("$PY" - "$WHEELS" <<'PYEOF'
import email.parser
import importlib.metadata as md
import pathlib
import sys
import zipfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

root = pathlib.Path(sys.argv[1])
tag = f"cp{sys.version_info[0]}{sys.version_info[1]}"
wheels = sorted(root.glob("*.whl")) + sorted((root / "fallback").glob("*.whl"))
info = {}
for w in wheels:
    name, version, _, tags = parse_wheel_filename(w.name)
    pys = {t.interpreter for t in tags}
    if not any(p.startswith("py3") or p == tag or p == f"py{sys.version_info[0]}{sys.version_info[1]}" for p in pys):
        sys.exit(f"gpu_check: {w.name} is for {sorted(pys)}, this Python is {tag}: rerun DEVICE_PYTHON="
                 f"{sys.version_info[0]}.{sys.version_info[1]} bash bench/gpu_wheels.sh")
    info[canonicalize_name(name)] = (w, version)

def requirements(wheel):
    """{name: [specifier, ...]} a wheel declares (no extras)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = email.parser.Parser().parsestr(z.read(meta).decode())
    out = {}
    for line in msg.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.setdefault(canonicalize_name(req.name), []).append(req.specifier)
    return out


def installed(name):
    try:
        return Version(md.version(name))
    except md.PackageNotFoundError:
        return None


# The wheels in the top folder are always installed; a fallback only where the version ranges that the
# installed set declares are not met by the device's own package (repeated until nothing changes).
chosen = {n for n, (w, _) in info.items() if w.parent == root}
while True:
    wanted = {}
    for n in chosen:
        for dep, specs in requirements(info[n][0]).items():
            wanted.setdefault(dep, []).extend(specs)
    extra = {n for n in info if n not in chosen and n in wanted
             and (installed(n) is None or not all(installed(n) in s for s in wanted[n]))}
    if not extra:
        break
    chosen |= extra
for name, (w, version) in sorted(info.items()):
    if name in chosen:
        print(w)
        have = installed(name)
        print(f"gpu_check: installing {w.name}" + (f" (device has {have})" if have else ""), file=sys.stderr)
    else:
        print(f"gpu_check: keeping the device's {name} {installed(name)}", file=sys.stderr)
missing = sorted(n for n in wanted if installed(n) is None and n not in chosen)
if missing:
    print(f"gpu_check: warning: needed but neither here nor carried: {', '.join(missing)}", file=sys.stderr)
PYEOF
    )
    if [ "${#needed[@]}" -gt 0 ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "${needed[@]}"
        export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    fi
elif [ "$dry" = 0 ]; then
    echo "gpu_check: no $WHEELS/ (run bash bench/gpu_wheels.sh here and carry .whl); trying without it"
fi

"$PY" -c "import torch; print('gpu_check: python', __import__('sys').version.split()[0], '| torch', torch.__version__, '| cuda', torch.cuda.is_available())"
if [ -n "${OUT:-}" ]; then
    set -o pipefail
    "$PY" bench/gpu_check.py "${args[@]}" 2>&1 | tee "$OUT/gpu_check.log"
else
    "$PY" bench/gpu_check.py "${args[@]}"
fi
