#!/bin/sh
# build.sh [OUT]: the production build of the front end into OUT (dist): a minified bundle and stylesheet under
# content-hashed names (assets/main-HASH.js, assets/main-HASH.css: cache them forever), index.html pointing at them
# (never cache it), and a gzip sibling of each file (FILE.gz, plus FILE.br where Debian's brotli is installed) for a
# server that sends precompressed files. React and ReactDOM come from Debian's node-react and node-react-dom under
# /usr/share/nodejs (NODE_PATH); esbuild needs no Node and no npm registry.
set -eu
out=${1:-dist}
cd "$(dirname "$0")"
rm -rf "$out"
mkdir -p "$out/assets"
NODE_PATH=${NODE_PATH:-/usr/share/nodejs} esbuild src/main.jsx --bundle --minify --jsx=automatic --target=es2020 \
  --define:process.env.NODE_ENV='"production"' --define:LIVE_RELOAD=false --legal-comments=none \
  --entry-names='[name]-[hash]' --outdir="$out/assets" --log-level=warning
js=$(cd "$out/assets" && ls main-*.js)
css=$(cd "$out/assets" && ls main-*.css)
# Everything else in public/ (healthz, images) is copied as it is.
find public -mindepth 1 -maxdepth 1 ! -name index.html ! -name assets -exec cp -R {} "$out/" \;
sed -e "s#/assets/main\.js#/assets/$js#" -e "s#/assets/main\.css#/assets/$css#" public/index.html >"$out/index.html"
grep -q "$js" "$out/index.html" && grep -q "$css" "$out/index.html" || { echo "build.sh: index.html does not name $js and $css" >&2; exit 1; }
for f in "$out/index.html" "$out/assets/$js" "$out/assets/$css"; do
  gzip -9 -n -k "$f"
  if command -v brotli >/dev/null; then brotli -q 11 -k "$f"; fi
done
