#!/usr/bin/env bash
# System packages zeroforge needs besides its Python environment: bubblewrap, the
# OS-level boundary of the render sandbox (retrieval/render). Installs it with apt
# when it is missing and we may (root, or passwordless sudo); otherwise says so and
# exits 0: renders then fail closed (Python programs refused, SVG rasterised with
# rlimits only; `python -c "import retrieval.render as r; print(r.isolation_level())"`).
# Called by scripts/setup.sh and .ci/run; safe to re-run.
set -uo pipefail

if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system_deps: bubblewrap (bwrap) missing and no apt-get here; install it to run Python renders"
  exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo -n"
if ! $SUDO true 2>/dev/null; then
  echo "system_deps: bubblewrap (bwrap) missing and no root; renders will fail closed (no Python programs)"
  exit 0
fi
if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap >/dev/null; then
  echo "system_deps: installed bubblewrap $(bwrap --version 2>/dev/null | cut -d' ' -f2)"
else
  echo "system_deps: could not install bubblewrap; renders will fail closed (no Python programs)"
fi
exit 0
