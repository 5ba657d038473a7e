{{/* polder-registry: names and labels (ADR 0022 §4). */}}

{{- define "polder-registry.fullname" -}}
{{- .Values.fullnameOverride | default "registry" | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "polder-registry.selectorLabels" -}}
app.kubernetes.io/name: polder-registry
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "polder-registry.labels" -}}
{{ include "polder-registry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: registry
app.kubernetes.io/part-of: polder
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "polder-registry.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
