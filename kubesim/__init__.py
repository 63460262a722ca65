"""kubesim: a local Kubernetes API server that kubectl and the kubernetes client use unchanged."""
