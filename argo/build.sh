#!/usr/bin/env bash
# Build the Argo Rollouts peer (`make argo`): argo/bin/rollouts-controller, argo/bin/kubectl-argo-rollouts
# and argo/bin/argo-probe (Argo's own condition evaluator behind a JSON-lines filter, argo/probe/main.go),
# from the Go module github.com/argoproj/argo-rollouts at the pinned version, built in the module's own
# source directory (its go.mod carries the replace directives). Go's module and build caches make a
# rebuild take seconds. Nothing is downloaded but Go modules; every failure is one line on stderr.
set -uo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
VERSION="$(cat VERSION)"
MODULE=github.com/argoproj/argo-rollouts
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "argo: Go toolchain not found ('$GO' is not on PATH); install Go to build the Argo Rollouts peer" >&2
  exit 1
fi
mkdir -p bin
here="$(pwd)"
start=$(date +%s)
src=$("$GO" mod download -json "$MODULE@$VERSION" 2>build.log | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -f "$src/go.mod" ]; then
  echo "argo: go mod download $MODULE@$VERSION failed (log: argo/build.log)" >&2
  exit 1
fi
echo "$src" > bin/source-dir
echo "building Argo Rollouts $VERSION with $("$GO" version | cut -d' ' -f3) from $src (first build: several minutes; log in argo/build.log) ..."
# The module cache is read-only and ships without the UI bundle the dashboard embeds: an overlay adds a
# placeholder page for it and our probe as a package of the module (so it builds against the module's
# own dependency graph).
overlay="$here/bin/overlay.json"
cat > "$overlay" <<JSON
{"Replace": {
  "$src/server/static/index.html": "$here/probe/index.html",
  "$src/cmd/temporal-rollouts-probe/main.go": "$here/probe/main.go"
}}
JSON
ldflags="-s -w -X $MODULE/utils/version.version=${VERSION#v}"
build() {  # build <package> <output>
  (cd "$src" && GOFLAGS=-mod=readonly nice -n 10 "$GO" build -buildvcs=false -overlay "$overlay" \
      -ldflags "$ldflags" -o "$here/bin/$2.tmp" "./$1") >>build.log 2>&1 || {
    first=$(grep -m1 -E '\.go:[0-9]+|error|cannot|go: ' build.log | cut -c1-200)
    rm -f "bin/$2.tmp"
    echo "argo: go build ./$1 failed: ${first:-see argo/build.log} (full log: argo/build.log)" >&2
    exit 1
  }
  mv "bin/$2.tmp" "bin/$2"
}
build cmd/temporal-rollouts-probe argo-probe
build cmd/rollouts-controller rollouts-controller
build cmd/kubectl-argo-rollouts kubectl-argo-rollouts
echo "built argo/bin/{rollouts-controller,kubectl-argo-rollouts,argo-probe} ($VERSION) in $(( $(date +%s) - start )) s"
