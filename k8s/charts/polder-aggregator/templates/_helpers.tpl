{{/* polder-aggregator: names and labels (ADR 0022 §4). */}}

{{- define "polder-aggregator.fullname" -}}
{{- .Values.fullnameOverride | default "aggregator" | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "polder-aggregator.selectorLabels" -}}
app.kubernetes.io/name: polder-aggregator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "polder-aggregator.labels" -}}
{{ include "polder-aggregator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: aggregator
app.kubernetes.io/part-of: polder
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "polder-aggregator.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{/*
Memory (README "Memory"): 256 MiB + api.maxStreams x 64 KiB (a live stream's buffers)
  + api.maxConnections x 16 KiB (a connection's TLS and request state)
  + views x cities x 4 MiB (the windows of figures kept per view and city), unless set.
*/}}
{{- define "polder-aggregator.memory" -}}
{{- $a := .Values.api -}}
{{- $kib := add (mul 256 1024) (mul (int64 $a.maxStreams) 64) (mul (int64 $a.maxConnections) 16) -}}
{{- range .Values.national.views }}{{ $kib = add $kib (mul (len .cities) 4096) }}{{ end -}}
{{- .Values.resources.memory | default (printf "%dMi" (div (add $kib 1023) 1024)) -}}
{{- end -}}
