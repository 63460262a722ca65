#!/usr/bin/env bash
# Argo CD's own health check for Kruise's Rollout (`make argocd`), read by tests/conformance/test_argocd_health.py:
# the Go module github.com/argoproj/argo-cd/v3 at the version in tools/argocd/VERSION, fetched with
# `go mod download` like every other Go source here. Nothing is copied: tools/bin/argocd-source-dir names the
# module's directory in Go's module cache, where the tests read resource_customizations/. Warm: seconds.
set -uo pipefail
cd "$(dirname "$0")"
GO="${GO:-go}"
VERSION="$(cat VERSION)"
MODULE=github.com/argoproj/argo-cd/v3
CHECK=resource_customizations/rollouts.kruise.io/Rollout/health.lua
if ! command -v "$GO" >/dev/null 2>&1; then
  echo "argocd: Go toolchain not found ('$GO' is not on PATH); install Go to fetch Argo CD's health checks" >&2
  exit 1
fi
src=$("$GO" mod download -json "$MODULE@$VERSION" 2>download.log | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$src" ] || [ ! -f "$src/$CHECK" ]; then
  echo "argocd: go mod download $MODULE@$VERSION gave no $CHECK (log: tools/argocd/download.log)" >&2
  exit 1
fi
mkdir -p ../bin
echo "$src" > ../bin/argocd-source-dir
echo "Argo CD $VERSION's health checks: $src/resource_customizations"
