#!/usr/bin/env bash
# Re-create the vendored niivue viewer (src/mrisr/report/vendor/niivue/) from the npm registry.
#
#   bash scripts/vendor_niivue.sh
#
# Downloads the pinned @niivue/niivue release tarball, checks its sha256, and copies the
# single-file browser bundle (dist/niivue.umd.js: a UMD build that defines window.niivue, no
# imports, no network) next to the licence and a VERSION note. `mrisr report` inlines that
# bundle into every HTML report. To move to a new release, change VERSION and SHA256 (the
# sha256 of the .tgz that `npm pack @niivue/niivue@X.Y.Z` or the registry URL gives).
set -euo pipefail

VERSION=0.69.0
SHA256=6e9a6a471b428eb3b258a0086beca9187d95e43a781a39e8a519c6da246af485
URL="https://registry.npmjs.org/@niivue/niivue/-/niivue-${VERSION}.tgz"

cd "$(dirname "$0")/.."
DEST=src/mrisr/report/vendor/niivue
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

curl -sSfL "$URL" -o "$tmp/niivue.tgz"
echo "${SHA256}  $tmp/niivue.tgz" | sha256sum -c --quiet -
tar -xzf "$tmp/niivue.tgz" -C "$tmp"
grep -q "\"version\": \"${VERSION}\"" "$tmp/package/package.json"
grep -q '"license": "BSD-2-Clause"' "$tmp/package/package.json"

mkdir -p "$DEST"
cp "$tmp/package/dist/niivue.umd.js" "$DEST/niivue.umd.js"
# The npm tarball carries no licence file; this is the repository's LICENSE (BSD-2-Clause).
cat >"$DEST/LICENSE" <<'EOF'
BSD 2-Clause License

Copyright (c) 2021, Niivue
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT HOLDER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
EOF
bundle_sha=$(sha256sum "$DEST/niivue.umd.js" | cut -d' ' -f1)
cat >"$DEST/VERSION" <<EOF
@niivue/niivue ${VERSION} (BSD-2-Clause, https://github.com/niivue/niivue)
source: ${URL}
tarball sha256: ${SHA256}
file: dist/niivue.umd.js
niivue.umd.js sha256: ${bundle_sha}
bundled dependencies (by niivue's build): gl-matrix (MIT), fflate (MIT), nifti-reader-js
(MIT), zarrita (MIT), @lukeed/uuid (MIT), @ungap/structured-clone (ISC), array-equal (MIT)
re-create with: bash scripts/vendor_niivue.sh
EOF
echo "vendored @niivue/niivue ${VERSION} into ${DEST} (niivue.umd.js sha256 ${bundle_sha})"
