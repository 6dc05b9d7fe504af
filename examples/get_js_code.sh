#!/usr/bin/env bash
# The JavaScript code of the emergence study (docs/emergence.md), from npm packages at pinned
# versions: real, hand-written source (not bundles nor minified files).
#   DEST/code-train-js:   training code   (jquery src/, lodash's per-function modules, moment src/, three src/)
#   DEST/code-heldout-js: held-out code   (express lib/, axios lib/, commander lib/, async's modules)
# No package is installed and no install script runs: `npm pack` only downloads the tarballs.
# Usage: bash examples/get_js_code.sh DEST      (e.g. ../jscode, as examples/probe-emergence-*.json expect)
set -euo pipefail
dest=$(realpath -m "${1:?usage: get_js_code.sh DEST}")
mkdir -p "$dest/packs" "$dest/code-train-js" "$dest/code-heldout-js"
cd "$dest/packs"
unpack() {  # unpack NAME@VERSION: the tarball's package/ into packs/NAME-VERSION
  local spec=$1 dir=${1/@/-}
  [ -d "$dir" ] || { tar_name=$(npm pack "$spec" --silent | tail -1); mkdir "$dir"; tar xzf "$tar_name" -C "$dir" --strip-components=1; }
}
for spec in jquery@3.7.1 lodash@4.17.21 moment@2.30.1 three@0.160.0 express@4.21.2 axios@1.7.9 commander@12.1.0 async@3.2.6; do
  unpack "$spec"
done
train=$dest/code-train-js held=$dest/code-heldout-js
rm -rf "${train:?}"/* "${held:?}"/*
cp -r jquery-3.7.1/src "$train/jquery-3.7.1"
mkdir "$train/lodash-4.17.21"  # one module per function; the lodash.js / core.js bundles repeat them
find lodash-4.17.21 -maxdepth 1 -name '*.js' ! -name 'lodash*.js' ! -name 'core*.js' -exec cp {} "$train/lodash-4.17.21/" \;
cp -r moment-2.30.1/src "$train/moment-2.30.1"
cp -r three-0.160.0/src "$train/three-0.160.0"
cp -r express-4.21.2/lib "$held/express-4.21.2"
cp -r axios-1.7.9/lib "$held/axios-1.7.9"
cp -r commander-12.1.0/lib "$held/commander-12.1.0"
mkdir "$held/async-3.2.6"  # its modules; dist/ bundles them again
find async-3.2.6 -maxdepth 1 -name '*.js' -exec cp {} "$held/async-3.2.6/" \;
for d in "$train" "$held"; do echo "$d: $(find "$d" -name '*.js' | wc -l) .js files, $(du -sh "$d" | cut -f1)"; done
