#!/usr/bin/env bash
# Build tools/bin/helm (`make helm`) from the Go module proxy: helm.sh/helm/v4's cmd/helm at the version
# pinned in go.mod (go.sum checks it). Never a downloaded binary. Every failure is one line on stderr and
# a non-zero exit; the compiler's own output goes to tools/helm/build.log. Go keeps its module and build
# caches in $(go env GOMODCACHE) and $(go env GOCACHE), so only the first build is slow.
set -uo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "helm: Go toolchain not found ('$GO' is not on PATH); install Go >= 1.26 to build helm for the chart tests" >&2
  exit 1
fi
mkdir -p ../bin
start=$(date +%s)
version=$(awk '$1 == "helm.sh/helm/v4" {print $2}' go.mod)
echo "building tools/bin/helm $version with $("$GO" version | cut -d' ' -f3) (first build: several minutes; log in tools/helm/build.log) ..."
# The version stamp helm's own Makefile sets, so `helm version` names the pinned release.
ldflags="-s -w -X helm.sh/helm/v4/internal/version.version=$version -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
if ! CGO_ENABLED=0 nice -n 10 "$GO" build -buildvcs=false -ldflags "$ldflags" -o ../bin/helm.tmp \
    helm.sh/helm/v4/cmd/helm >build.log 2>&1; then
  first=$(grep -m1 -E '\.go:[0-9]+|error|cannot|go: ' build.log | cut -c1-200)
  rm -f ../bin/helm.tmp
  echo "helm: go build failed: ${first:-see tools/helm/build.log} (full log: tools/helm/build.log)" >&2
  exit 1
fi
mv ../bin/helm.tmp ../bin/helm
echo "built tools/bin/helm ($(du -m ../bin/helm | cut -f1) MB) in $(( $(date +%s) - start )) s"
