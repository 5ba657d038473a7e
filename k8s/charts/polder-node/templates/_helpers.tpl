{{/* polder-node: names, labels and the values derived from others (ADR 0022 §4). */}}

{{- define "polder-node.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-node" (required "peerId is required: this city's peer id in the federation directory" .Values.peerId) | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "polder-node.selectorLabels" -}}
app.kubernetes.io/name: polder-node
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "polder-node.labels" -}}
{{ include "polder-node.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: node
app.kubernetes.io/part-of: polder
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
polder.example/peer: {{ .Values.peerId }}
{{- end -}}

{{- define "polder-node.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/* The headless Service: the pods' DNS names, the replicas' internal port, the ops port. */}}
{{- define "polder-node.headless" -}}
{{ include "polder-node.fullname" . }}-pods
{{- end -}}

{{/*
An L4 Service keeping the client's address (externalTrafficPolicy: Local) for a listener with
per-source limits; a city that puts a proxy in front turns them off (perSourceLimits: false,
logged by the node at start) and may then use a ClusterIP Service behind its proxy.
*/}}
{{- define "polder-node.serviceType" -}}
{{- $name := index . 0 -}}
{{- $s := index . 1 -}}
{{- if and (eq $s.type "ClusterIP") $s.perSourceLimits -}}
{{- fail (printf "service.%s.type ClusterIP puts the listener behind a proxy: set service.%s.perSourceLimits to false (the node then logs that its per-source limits are off)" $name $name) -}}
{{- end -}}
type: {{ $s.type }}
{{- if ne $s.type "ClusterIP" }}
externalTrafficPolicy: Local
{{- end }}
{{- end -}}

{{- define "polder-node.ingestTrustDomain" -}}
{{ .Values.ingest.trustDomain | default (printf "%s-ingest" .Values.peerId) }}
{{- end -}}

{{- define "polder-node.ingestCaSecret" -}}
{{- if .Values.ingest.clientCa.certManager -}}
{{ include "polder-node.fullname" . }}-ingest-ca
{{- else -}}
{{ required "ingest.clientCa.secretName is required when ingest.clientCa.certManager is false" .Values.ingest.clientCa.secretName }}
{{- end -}}
{{- end -}}

{{/*
Memory (README "Memory"): request = 256 MiB
  + 2 x ingest.maxInflightBytes                       (requests being parsed + the producer's queue)
  + datasets x (federation.fanoutTailBytes + 3 x federation.sourcePrefetchBytes)   (shared tails)
  + federation.fanoutMaxCatchupReaders x 3 x federation.sourcePrefetchBytes        (catch-up readers)
  + subscriptions x (2 x federation.maxBatchBytes + 8 MiB)                          (mirror writers)
limit = request x 5/4. Each rounded up to a MiB. resources.memory.request/limit override.
*/}}
{{- define "polder-node.memoryRequestMiB" -}}
{{- $mib := 1048576 -}}
{{- $f := .Values.federation -}}
{{- $bytes := add (mul 256 $mib) (mul 2 (int64 .Values.ingest.limits.maxInflightBytes)) -}}
{{- $datasets := len .Values.datasets -}}
{{- $tail := add (int64 $f.limits.fanoutTailBytes) (mul 3 (int64 $f.limits.sourcePrefetchBytes)) -}}
{{- $bytes = add $bytes (mul $datasets $tail) -}}
{{- if $f.enabled -}}
{{- $bytes = add $bytes (mul (int64 $f.limits.fanoutMaxCatchupReaders) 3 (int64 $f.limits.sourcePrefetchBytes)) -}}
{{- $bytes = add $bytes (mul (len $f.subscriptions) (add (mul 2 (int64 $f.limits.maxBatchBytes)) (mul 8 $mib))) -}}
{{- end -}}
{{- div (add $bytes (sub $mib 1)) $mib -}}
{{- end -}}

{{- define "polder-node.memoryRequest" -}}
{{- .Values.resources.memory.request | default (printf "%dMi" (int64 (include "polder-node.memoryRequestMiB" .))) -}}
{{- end -}}

{{- define "polder-node.memoryLimit" -}}
{{- $req := int64 (include "polder-node.memoryRequestMiB" .) -}}
{{- .Values.resources.memory.limit | default (printf "%dMi" (div (add (mul $req 5) 3) 4)) -}}
{{- end -}}

{{- define "polder-node.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "polder-node.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
