#!/bin/sh
# Copy the dashboard's front-end libraries from ui/node_modules (npm ci of ui/package-lock.json)
# into api/ui/static/vendor, which is committed: serving the dashboard needs no Node and no
# network. The hooks module imports the bare name "preact"; it is pointed at the copy beside it,
# so the pages load without an import map (an inline script the CSP would have to allow).
set -eu
src=ui/node_modules
dst=api/ui/static/vendor
mkdir -p "$dst"
cp "$src/preact/dist/preact.module.js" "$dst/preact.module.js"
sed 's|from"preact"|from"./preact.module.js"|g' "$src/preact/hooks/dist/hooks.module.js" \
  > "$dst/hooks.module.js"
cp "$src/htm/dist/htm.module.js" "$dst/htm.module.js"
cp "$src/swagger-ui-dist/swagger-ui-bundle.js" "$src/swagger-ui-dist/swagger-ui.css" "$dst/"
cp "$src/swagger-ui-dist/favicon-32x32.png" "$dst/favicon.png"
{
  for pkg in preact htm swagger-ui-dist; do
    version=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$src/$pkg/package.json")
    printf '== %s %s ==\n\n' "$pkg" "$version"
    cat "$src/$pkg/LICENSE"
    printf '\n'
  done
} > "$dst/LICENSES.txt"
grep -q 'from"preact"' "$dst/hooks.module.js" && { echo "hooks still import preact"; exit 1; }
echo "vendored into $dst"
