#!/usr/bin/env bash
# Installs libfaas into a temporary prefix, builds examples/embed against it as an outside project would, and runs
# it. usage: test_embed_example.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/examples/embed" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" -j2 >/dev/null
output=$("$work/build/faas-embed-example" "$source_dir/examples/functions/calculadora" "$work/data" 2>&1)
echo "$output"
grep -q '"result":30' <<<"$output"
grep -q '6 \* 7 = 42' <<<"$output"
grep -q 'records kept: 2' <<<"$output"
echo "embed example: built against the installed library and ran"
