{{/* polder-kafka: names, labels, and the topics Polder's services use (ADR 0022 §4). */}}

{{- define "polder-kafka.cluster" -}}
{{ required "cluster.name is required: the Strimzi cluster's name, e.g. groningen-kafka" .Values.cluster.name }}
{{- end -}}

{{- define "polder-kafka.labels" -}}
app.kubernetes.io/name: polder-kafka
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: polder
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
strimzi.io/cluster: {{ include "polder-kafka.cluster" . }}
{{- end -}}

{{/* A Go duration such as 2160h, 90m, 1h30m or 45s in milliseconds. */}}
{{- define "polder-kafka.ms" -}}
{{- $total := 0 -}}
{{- range regexFindAll "[0-9]+(ms|h|m|s)" . -1 -}}
{{- $n := int64 (regexFind "^[0-9]+" .) -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" .) . -}}
{{- if eq $unit "h" }}{{ $total = add $total (mul $n 3600000) }}{{ end -}}
{{- if eq $unit "m" }}{{ $total = add $total (mul $n 60000) }}{{ end -}}
{{- if eq $unit "s" }}{{ $total = add $total (mul $n 1000) }}{{ end -}}
{{- if eq $unit "ms" }}{{ $total = add $total $n }}{{ end -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/* A KafkaTopic's object name: the topic name made a valid Kubernetes name. */}}
{{- define "polder-kafka.topicObject" -}}
{{- printf "%s-%s" .cluster (.topic | replace "_" "x-" | replace "." "-" | lower) | trunc 253 | trimSuffix "-" -}}
{{- end -}}

{{/*
The node's topics, by the node's own rules (services/node/topics.cc; `polder-node
--print_kafka_needs` prints them, and the charts' test compares the two): a YAML list of
{name, partitions, replicas, config, keep}. Mirrors are not here: the node creates them with its
provider's partition count.
*/}}
{{- define "polder-kafka.nodeTopics" -}}
{{- $n := .Values.node -}}
{{- $rf := int64 $n.internalReplicationFactor -}}
{{- $maxMessage := add (int64 $n.maxBatchBytes) 1024 -}}
{{- range $n.datasets }}
- name: {{ $n.peerId }}.{{ .id }}
  partitions: {{ .partitions }}
  replicas: {{ .replicationFactor | default 3 }}
  config:
    cleanup.policy: delete
    retention.ms: {{ include "polder-kafka.ms" (.retention | default "720h") }}
    max.message.bytes: {{ $maxMessage }}
    message.timestamp.type: CreateTime
{{- end }}
- name: _polder.ingest-keys.v2
  partitions: {{ $n.keysPartitions }}
  replicas: {{ $rf }}
  keep: true
  config:
    cleanup.policy: delete
    retention.ms: {{ mul 2 (include "polder-kafka.ms" $n.idempotencyWindow) }}
    max.message.bytes: {{ $maxMessage }}
- name: _polder.replicas
  partitions: 1
  replicas: {{ $rf }}
  config:
    cleanup.policy: compact
    max.message.bytes: {{ $maxMessage }}
- name: _polder.roles
  partitions: 64
  replicas: {{ $rf }}
  config:
    cleanup.policy: delete
    retention.ms: 3600000
    max.message.bytes: {{ $maxMessage }}
- name: _polder.feed-quality
  partitions: 1
  replicas: {{ $rf }}
  config:
    cleanup.policy: compact
    max.message.bytes: {{ $maxMessage }}
{{- range $n.views }}
{{- $set := . }}
{{- $ds := dict }}
{{- range $n.datasets }}{{ if eq .id $set.dataset }}{{ $ds = . }}{{ end }}{{ end }}
{{- if not $ds }}{{ fail (printf "node.views: %s is not one of node.datasets" $set.dataset) }}{{ end }}
{{- /* Every view set also computes feed quality's entities views (common/views/spec.h). */}}
{{- range (concat $set.ids (list "entities-hour" "entities-day") | uniq) }}
- name: {{ $n.peerId }}.{{ $set.dataset }}.view.{{ . }}
  partitions: 1
  replicas: {{ $ds.replicationFactor | default 3 }}
  config:
    cleanup.policy: delete
    retention.ms: {{ include "polder-kafka.ms" ($ds.retention | default "720h") }}
    max.message.bytes: {{ $maxMessage }}
    message.timestamp.type: CreateTime
{{- end }}
- name: _polder.views.{{ $set.dataset }}.changelog
  partitions: 1
  replicas: {{ $rf }}
  keep: true
  config:
    cleanup.policy: compact
    max.message.bytes: {{ $maxMessage }}
{{- end }}
{{- if $n.federation }}
- name: _polder.cursors
  partitions: 1
  replicas: {{ $rf }}
  keep: true
  config:
    cleanup.policy: compact
    max.message.bytes: {{ $maxMessage }}
- name: _polder.audit
  partitions: 1
  replicas: {{ $rf }}
  keep: true
  config:
    cleanup.policy: delete
    retention.ms: -1
    retention.bytes: -1
    max.message.bytes: {{ $maxMessage }}
- name: _polder.audit-index
  partitions: 1
  replicas: {{ $rf }}
  keep: true
  config:
    cleanup.policy: compact
    max.message.bytes: {{ $maxMessage }}
{{- end }}
{{- end -}}

{{/* The registry's one topic (services/registry/kafka_store.cc). */}}
{{- define "polder-kafka.registryTopics" -}}
- name: _polder.schemas
  partitions: 1
  replicas: {{ .Values.registry.replicationFactor }}
  keep: true
  config:
    cleanup.policy: compact
    min.compaction.lag.ms: 0
{{- end -}}

{{/* The aggregator's topics (services/aggregator/aggregator_server.cc). */}}
{{- define "polder-kafka.aggregatorTopics" -}}
{{- $a := .Values.aggregator -}}
{{- range $a.views }}
- name: national.{{ .dataset }}.view.{{ .view }}
  partitions: 1
  replicas: {{ $a.replicationFactor }}
  keep: true
  config:
    cleanup.policy: delete
    retention.ms: -1
{{- end }}
- name: _polder.aggregator.changelog
  partitions: 1
  replicas: {{ $a.replicationFactor }}
  keep: true
  config:
    cleanup.policy: compact
- name: _polder.aggregator.roles
  partitions: 8
  replicas: {{ $a.replicationFactor }}
  config:
    cleanup.policy: delete
    retention.ms: 3600000
{{- end -}}
