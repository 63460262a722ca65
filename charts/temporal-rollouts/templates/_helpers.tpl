{{/* The name prefix of every object: fullnameOverride, else the release name (plus the chart name
unless the release name already contains it), cut to 52 characters so suffixes fit in 63. */}}
{{- define "tr.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tr.worker" -}}{{ include "tr.fullname" . }}-worker{{- end -}}
{{- define "tr.controller" -}}{{ include "tr.fullname" . }}-controller{{- end -}}
{{- define "tr.config" -}}{{ include "tr.fullname" . }}-temporal{{- end -}}

{{- define "tr.workerServiceAccount" -}}
{{- default (include "tr.worker" .) .Values.worker.serviceAccount.name -}}
{{- end -}}

{{- define "tr.controllerServiceAccount" -}}
{{- default (include "tr.controller" .) .Values.controller.serviceAccount.name -}}
{{- end -}}

{{/* Labels of every object; "component" is worker or controller. */}}
{{- define "tr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "tr.selector" . }}
{{- end -}}

{{- define "tr.selector" -}}
app.kubernetes.io/name: {{ include "tr.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tr.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* The namespaces the worker may act in, checked once for every template that needs them. */}}
{{- define "tr.namespaces" -}}
{{- if and (not .Values.rbac.clusterWide) (empty .Values.rbac.namespaces) -}}
{{- fail "rbac.namespaces is empty: list the namespaces whose Deployments the worker may roll out, or set rbac.clusterWide=true" -}}
{{- end -}}
{{- join "," .Values.rbac.namespaces -}}
{{- end -}}

{{/* The worker's rules: exactly what the engine uses (deploy/rbac.yaml explains each). */}}
{{- define "tr.workerRules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "update"]
- apiGroups: ["apps"]
  resources: ["replicasets"]
  verbs: ["get", "list", "watch", "create", "update"]
{{- if .Values.rbac.traffic }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "create", "update", "delete"]
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create", "update", "delete"]
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "update"]
{{- end }}
{{- with .Values.rbac.analysisSecrets }}
# Web metric header values from these Secrets (args[].valueFrom.secretKeyRef), read when measuring.
- apiGroups: [""]
  resources: ["secrets"]
  resourceNames: {{ toJson . }}
  verbs: ["get"]
{{- end }}
{{- if .Values.controller.enabled }}
# Declarative mode: the worker is the one writer of a running rollout's Rollout.status.
- apiGroups: ["rollouts.kruise.io"]
  resources: ["rollouts"]
  verbs: ["get"]
- apiGroups: ["rollouts.kruise.io"]
  resources: ["rollouts/status"]
  verbs: ["update"]
{{- end }}
{{- end -}}

{{/* The Temporal TLS files that are mounted: key in the Secret -> file name and variable. */}}
{{- define "tr.tlsFiles" -}}
{{- $tls := .Values.temporal.tls -}}
{{- if $tls.certKey }}
- {key: {{ $tls.certKey | quote }}, path: tls.crt, env: TEMPORAL_TLS_CERT}
{{- end }}
{{- if $tls.keyKey }}
- {key: {{ $tls.keyKey | quote }}, path: tls.key, env: TEMPORAL_TLS_KEY}
{{- end }}
{{- if $tls.caKey }}
- {key: {{ $tls.caKey | quote }}, path: ca.crt, env: TEMPORAL_TLS_CA}
{{- end }}
{{- end -}}

{{/* The Temporal connection of a container (the ConfigMap, the API key and the TLS file variables) and
its extra variables; call with (dict "ctx" $ "extra" LIST). */}}
{{- define "tr.env" -}}
{{- $v := .ctx.Values -}}
{{- $env := list -}}
{{- with $v.temporal.apiKey.existingSecret -}}
{{- $ref := dict "name" . "key" $v.temporal.apiKey.key -}}
{{- $env = append $env (dict "name" "TEMPORAL_API_KEY" "valueFrom" (dict "secretKeyRef" $ref)) -}}
{{- end -}}
{{- if $v.temporal.tls.existingSecret -}}
{{- range include "tr.tlsFiles" .ctx | fromYamlArray -}}
{{- $env = append $env (dict "name" .env "value" (printf "/etc/temporal-tls/%s" .path)) -}}
{{- end -}}
{{- end -}}
{{- $env = concat $env (.extra | default list) -}}
envFrom:
  - configMapRef:
      name: {{ include "tr.config" .ctx }}
{{- with $env }}
env:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The volumes of a pod: /tmp for the read-only root filesystem, the Temporal TLS Secret if any. */}}
{{- define "tr.volumes" -}}
volumes:
  - name: tmp
    emptyDir: {}
  {{- if .Values.temporal.tls.existingSecret }}
  {{- if empty (include "tr.tlsFiles" . | fromYamlArray) }}
  {{- fail "temporal.tls.existingSecret is set but certKey, keyKey and caKey are all empty: name at least one key" }}
  {{- end }}
  - name: temporal-tls
    secret:
      secretName: {{ .Values.temporal.tls.existingSecret }}
      items:
        {{- range include "tr.tlsFiles" . | fromYamlArray }}
        - key: {{ .key }}
          path: {{ .path }}
        {{- end }}
  {{- end }}
{{- end -}}

{{- define "tr.volumeMounts" -}}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.temporal.tls.existingSecret }}
  - name: temporal-tls
    mountPath: /etc/temporal-tls
    readOnly: true
  {{- end }}
{{- end -}}
