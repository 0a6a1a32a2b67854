{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "sessionfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-qualified name, the prefix of every object. Capped at 36 characters so every
name made from it fits: "-redis-headless" Services (63), the StatefulSet (52: its pods'
controller-revision-hash label adds 11), pod names and their DNS labels (63). */}}
{{- define "sessionfleet.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 36 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 36 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sessionfleet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries; pass (dict "ctx" . "component" "app"). */}}
{{- define "sessionfleet.labels" -}}
helm.sh/chart: {{ include "sessionfleet.chart" .ctx }}
{{ include "sessionfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: sessionfleet
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The labels selectors match on. */}}
{{- define "sessionfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sessionfleet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sessionfleet.appName" -}}{{ include "sessionfleet.fullname" . }}-app{{- end }}
{{- define "sessionfleet.redisName" -}}{{ include "sessionfleet.fullname" . }}-redis{{- end }}
{{- define "sessionfleet.redisHeadless" -}}{{ include "sessionfleet.redisName" . }}-headless{{- end }}

{{/* A checksum of a Secret as the cluster holds it, for a pod annotation: a password change
rolls the pods on the next upgrade. Offline renders (helm template, GitOps tools) see no
cluster: a constant, so they never roll anything by themselves. */}}
{{- define "sessionfleet.secretChecksum" -}}
{{- $secret := lookup "v1" "Secret" .ctx.Release.Namespace .name }}
{{- if $secret }}{{ $secret.data | toJson | sha256sum }}{{ else }}not-looked-up{{ end }}
{{- end }}

{{/* Secret holding redis-password and sentinel-password. */}}
{{- define "sessionfleet.redisSecretName" -}}
{{- if .Values.redis.enabled }}
{{- default (printf "%s-auth" (include "sessionfleet.redisName" .)) .Values.redis.auth.existingSecret }}
{{- else }}
{{- .Values.externalRedis.existingSecret }}
{{- end }}
{{- end }}

{{- define "sessionfleet.loadtestSecretName" -}}
{{- default (printf "%s-loadtest" (include "sessionfleet.fullname" .)) .Values.loadtest.existingSecret }}
{{- end }}

{{/* Absolute name (trailing dot) of Redis pod N: stable across restarts (the headless
Service publishes it). Absolute, so the resolver asks for it once instead of walking the
pod's DNS search list first: Sentinel resolves on its only thread, and a name that fails
(a lost node's pod) would fail once per search domain. */}}
{{- define "sessionfleet.redisHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s." (include "sessionfleet.redisName" .ctx) .index (include "sessionfleet.redisHeadless" .ctx) .ctx.Release.Namespace (trimSuffix "." .ctx.Values.clusterDomain) }}
{{- end }}

{{/* Sentinels that must agree a master is down: a majority unless set. */}}
{{- define "sessionfleet.quorum" -}}
{{- default (add1 (div (int .Values.redis.replicas) 2)) .Values.redis.sentinel.quorum }}
{{- end }}

{{/* host:port of every Sentinel, space-separated (bootstrap) or comma-separated (app). */}}
{{- define "sessionfleet.sentinelList" -}}
{{- $ctx := .ctx }}
{{- $hosts := list }}
{{- range $i := until (int $ctx.Values.redis.replicas) }}
{{- $hosts = append $hosts (printf "%s:%d" (include "sessionfleet.redisHost" (dict "ctx" $ctx "index" $i)) (int $ctx.Values.redis.sentinel.port)) }}
{{- end }}
{{- join .sep $hosts }}
{{- end }}

{{- define "sessionfleet.redisList" -}}
{{- $ctx := .ctx }}
{{- $hosts := list }}
{{- range $i := until (int $ctx.Values.redis.replicas) }}
{{- $hosts = append $hosts (printf "%s:%d" (include "sessionfleet.redisHost" (dict "ctx" $ctx "index" $i)) (int $ctx.Values.redis.port)) }}
{{- end }}
{{- join .sep $hosts }}
{{- end }}

{{- define "sessionfleet.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "sessionfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sessionfleet.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Environment of the Redis and Sentinel bootstrap scripts (see files/bootstrap-lib.sh). */}}
{{- define "sessionfleet.redisEnv" -}}
{{- $ctx := .ctx }}
{{- $redis := $ctx.Values.redis }}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: SF_ANNOUNCE_HOST
  value: "$(POD_NAME).{{ include "sessionfleet.redisHeadless" $ctx }}.{{ $ctx.Release.Namespace }}.svc.{{ trimSuffix "." $ctx.Values.clusterDomain }}."
- name: SF_REDIS_PORT
  value: {{ $redis.port | quote }}
- name: SF_SENTINEL_PORT
  value: {{ $redis.sentinel.port | quote }}
- name: SF_BIND
  value: "* -::*"
- name: SF_MASTER_NAME
  value: {{ $redis.masterName | quote }}
- name: SF_QUORUM
  value: {{ include "sessionfleet.quorum" $ctx | quote }}
- name: SF_SENTINELS
  value: {{ include "sessionfleet.sentinelList" (dict "ctx" $ctx "sep" " ") | quote }}
- name: SF_REDIS_NODES
  value: {{ include "sessionfleet.redisList" (dict "ctx" $ctx "sep" " ") | quote }}
- name: SF_INITIAL_MASTER
  value: "{{ include "sessionfleet.redisHost" (dict "ctx" $ctx "index" 0) }}:{{ $redis.port }}"
- name: SF_CONFIG_DIR
  value: /config
- name: SF_DATA_DIR
  value: {{ .dataDir }}
- name: SF_REDIS_PASSWORD_FILE
  value: /secrets/redis-password
- name: SF_SENTINEL_PASSWORD_FILE
  value: /secrets/sentinel-password
- name: SF_REDIS_PASSWORD_ACCEPTED_FILE
  value: /secrets/redis-password-accepted
- name: SF_PERSISTENCE
  value: {{ ternary "yes" "no" $redis.persistence.enabled | quote }}
- name: SF_SENTINEL_KEEP_STATE
  value: {{ ternary "yes" "no" $redis.persistence.enabled | quote }}
- name: SF_MASTER_WAIT_SECONDS
  value: {{ $redis.emptyMasterWaitSeconds | quote }}
- name: SF_PRESTOP_SECONDS
  value: {{ $redis.handoverSeconds | quote }}
- name: SF_MAXMEMORY
  value: {{ $redis.maxmemory | quote }}
- name: SF_SENTINEL_EXTRA_CONFIG
  value: |
    sentinel down-after-milliseconds {{ $redis.masterName }} {{ $redis.sentinel.downAfterMilliseconds }}
    sentinel failover-timeout {{ $redis.masterName }} {{ $redis.sentinel.failoverTimeout }}
{{- end }}
