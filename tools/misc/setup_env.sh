#!/usr/bin/env bash
# Bootstrap (idempotently) the project-local virtualenv with the pinned OpenMMLab stack.
#
#   bash tools/misc/setup_env.sh [VENV_DIR]
#
# Steps, each skipped when already satisfied:
#   1. create VENV_DIR (default .venv) with python3 -m venv
#   2. torch: kept if the venv has one; else `pip install torch==$MMRVOS_TORCH` (default 2.13.0;
#      a CPU wheel on CPU-only machines that ship one, the CUDA build from PyPI elsewhere)
#   3. build requirements (setuptools<81 for mmcv's setup.py, ninja, numpy 2)
#   4. mmcv 2.1.0 compiled from source with its ops (MMCV_WITH_OPS=1; CUDA ops when nvcc and a
#      CUDA torch are present). The wheel is built once per (mmcv, torch, python, CUDA arch) into
#      ${XDG_CACHE_HOME:-~/.cache}/mmrvos/wheels/<key>/ and reused by every later checkout.
#   5. runtime + test requirements (mmengine, mmdet, mmpretrain, transformers<5, peft, ...),
#      constrained so that pip never replaces the torch or mmcv installed above
#   6. `pip install -e .` of mmrvos itself
set -euo pipefail

VENV=${1:-.venv}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TORCH_SPEC=${MMRVOS_TORCH:-2.13.0}
MMCV_VERSION=2.1.0
CACHE_ROOT=${MMRVOS_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmrvos/wheels}

log() { printf '[setup_env] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
export PATH="$(cd "$VENV/bin" && pwd):$PATH"
PIP=("$PY" -m pip --disable-pip-version-check)

if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  log "installing torch==$TORCH_SPEC"
  "${PIP[@]}" install -q "torch==$TORCH_SPEC"
fi
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null)
log "torch $TORCH_VERSION"

log "build requirements"
"${PIP[@]}" install -q -r "$ROOT/requirements/build.txt"

CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
printf 'torch==%s\nmmcv==%s\n' "$TORCH_VERSION" "$MMCV_VERSION" >"$CONSTRAINTS"

mmcv_ok() {
  "$PY" - <<EOF >/dev/null 2>&1
import mmcv, mmcv._ext  # noqa: F401  (the compiled ops)
assert mmcv.__version__ == "$MMCV_VERSION"
EOF
}

if ! mmcv_ok; then
  KEY=$("$PY" - <<EOF
import sys, torch
cuda = torch.version.cuda
if cuda and __import__('shutil').which('nvcc'):
    import os
    arch = os.environ.get('TORCH_CUDA_ARCH_LIST', 'native').replace(' ', '_').replace(';', '_')
    dev = f'cu{cuda}-{arch}'
else:
    dev = 'cpu'
print(f"mmcv-$MMCV_VERSION-torch{torch.__version__.replace('+', '_')}-py{sys.version_info.major}{sys.version_info.minor}-{dev}")
EOF
)
  WHEEL_DIR="$CACHE_ROOT/$KEY"
  if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with ops (one time per machine; ~16 min on 2 cores) -> $WHEEL_DIR"
    mkdir -p "$CACHE_ROOT"
    TMP_WHEEL=$(mktemp -d "$CACHE_ROOT/.build-XXXXXX")
    if "$PY" -c 'import torch,shutil,sys; sys.exit(0 if torch.version.cuda and shutil.which("nvcc") else 1)'; then
      export FORCE_CUDA=1
    fi
    MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} "${PIP[@]}" wheel -q --no-build-isolation --no-deps \
      --no-binary mmcv "mmcv==$MMCV_VERSION" -w "$TMP_WHEEL"
    mkdir -p "$WHEEL_DIR"
    mv "$TMP_WHEEL"/mmcv-*.whl "$WHEEL_DIR"/
    rmdir "$TMP_WHEEL" 2>/dev/null || true
  else
    log "reusing cached mmcv wheel from $WHEEL_DIR"
  fi
  "${PIP[@]}" install -q --no-deps --force-reinstall "$WHEEL_DIR"/mmcv-*.whl
fi

log "runtime and test requirements"
# mmcv's own pure-Python requirements (mmengine, opencv, addict, yapf) come with these
"${PIP[@]}" install -q -c "$CONSTRAINTS" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
  addict yapf
mmcv_ok || { echo "[setup_env] mmcv $MMCV_VERSION with its compiled ops failed to import" >&2; exit 1; }

log "mmrvos (editable)"
"${PIP[@]}" install -q --no-deps --no-build-isolation -e "$ROOT"

"$PY" -c 'import mmrvos, mmcv, mmdet, torch; print(f"[setup_env] ready: mmrvos {mmrvos.__version__}, mmdet {mmdet.__version__}, mmcv {mmcv.__version__}, torch {torch.__version__}")'
