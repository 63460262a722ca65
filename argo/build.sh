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
# The module cache is read-only (and Go refuses overlays there), and the module ships without the UI
# bundle the dashboard embeds: build from a copy of the module's source directory (argo/src, its go.mod
# and replace directives unchanged) with a placeholder page for the UI and our probe as one more command.
work="$here/src"
if [ "$(cat "$work/.version" 2>/dev/null)" != "$VERSION" ]; then
  rm -rf "$work" && cp -r "$src" "$work" && chmod -R u+w "$work" && echo "$VERSION" > "$work/.version" || {
    echo "argo: cannot copy $src to argo/src" >&2; exit 1; }
fi
mkdir -p "$work/server/static" "$work/cmd/temporal-rollouts-probe"
cp probe/index.html "$work/server/static/index.html"
cp probe/main.go "$work/cmd/temporal-rollouts-probe/main.go"
echo "building Argo Rollouts $VERSION with $("$GO" version | cut -d' ' -f3) in argo/src (first build: several minutes; log in argo/build.log) ..."
ldflags="-s -w -X $MODULE/utils/version.version=${VERSION#v}"
build() {  # build <package> <output>
  (cd "$work" && GOFLAGS=-mod=readonly nice -n "${NICE:-10}" "$GO" build -buildvcs=false \
      -ldflags "$ldflags" -o "$here/bin/$2.tmp" "./$1") >>build.log 2>&1 || {
    first=$(grep -m1 -E '\.go:[0-9]+|error|cannot|go: ' build.log | cut -c1-200)
    rm -f "bin/$2.tmp"
    echo "argo: go build ./$1 failed: ${first:-see argo/build.log} (full log: argo/build.log)" >&2
    exit 1
  }
  mv "bin/$2.tmp" "bin/$2"
}
# `argo/build.sh probe` builds the probe alone (seconds once warm); no argument builds all three.
targets="${*:-probe controller plugin}"
for t in $targets; do
  case "$t" in
    probe) build cmd/temporal-rollouts-probe argo-probe ;;
    controller) build cmd/rollouts-controller rollouts-controller ;;
    plugin) build cmd/kubectl-argo-rollouts kubectl-argo-rollouts ;;
    *) echo "argo: unknown target $t (want probe, controller or plugin)" >&2; exit 1 ;;
  esac
done
echo "built $targets of Argo Rollouts $VERSION in argo/bin in $(( $(date +%s) - start )) s"
