#!/usr/bin/env bash
# Build realk8s/bin/realk8s (`make realk8s`). Every failure is one line on stderr and a non-zero exit;
# the compiler's own output goes to realk8s/build.log. Go keeps its module and build caches in
# $(go env GOMODCACHE) and $(go env GOCACHE), so only the first build is slow.
set -uo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "realk8s: Go toolchain not found ('$GO' is not on PATH); install Go >= 1.26 to build the real control plane" >&2
  exit 1
fi
mkdir -p bin
start=$(date +%s)
echo "building realk8s/bin/realk8s with $("$GO" version | cut -d' ' -f3) (first build: several minutes; log in realk8s/build.log) ..."
# The version stamps k8s's own build sets (kubectl version and /version show the real v1.37.x); the
# version comes from go.mod. No -trimpath: it would change every cached compile of the k8s tree.
kv=$(grep -E '^\s+k8s.io/kubernetes v' go.mod | awk '{print $2}')
minor=$(echo "$kv" | cut -d. -f2)
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp="$stamp -X $pkg.gitVersion=$kv -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  stamp="$stamp -X $pkg.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done
if ! nice -n 10 "$GO" build -buildvcs=false -ldflags "-s -w$stamp" -o bin/realk8s.tmp . >build.log 2>&1; then
  first=$(grep -m1 -E '\.go:[0-9]+|error|cannot|go: ' build.log | cut -c1-200)
  rm -f bin/realk8s.tmp
  echo "realk8s: go build failed: ${first:-see realk8s/build.log} (full log: realk8s/build.log)" >&2
  exit 1
fi
mv bin/realk8s.tmp bin/realk8s
echo "built realk8s/bin/realk8s ($(du -m bin/realk8s | cut -f1) MB) in $(( $(date +%s) - start )) s"
