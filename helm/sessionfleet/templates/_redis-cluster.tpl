{{/* Redis Cluster mode (redis.mode: cluster): one StatefulSet per shard, the shared headless
Service, the bootstrap hook Job. Sentinel mode uses none of these. */}}

{{/* "true" when this release runs its own Redis Cluster, else empty. */}}
{{- define "sessionfleet.redisCluster" -}}
{{- if and .Values.redis.enabled (eq .Values.redis.mode "cluster") }}true{{ end }}
{{- end }}

{{/* StatefulSet of shard N: <fullname>-redis-shard-N (51 characters at most, within the 52
a StatefulSet name may have). */}}
{{- define "sessionfleet.redisShardName" -}}
{{- printf "%s-shard-%d" (include "sessionfleet.redisName" .ctx) (int .shard) }}
{{- end }}

{{- define "sessionfleet.redisShardLabel" -}}
sessionfleet.io/redis-shard: {{ .shard | quote }}
{{- end }}

{{/* Pod labels of shard N: the Redis component's labels plus the shard, which is also in the
StatefulSet's selector (two StatefulSets must never select each other's pods). */}}
{{- define "sessionfleet.redisShardSelectorLabels" -}}
{{ include "sessionfleet.selectorLabels" (dict "ctx" .ctx "component" "redis") }}
{{ include "sessionfleet.redisShardLabel" . }}
{{- end }}

{{/* DNS name of pod `index` of shard `shard`, the name it announces to the cluster
(cluster-announce-hostname) and the app connects to. Not absolute (no trailing dot): it is
also the name a TLS certificate would carry; with its five dots the resolver tries it as
given first (ndots 5) anyway. */}}
{{- define "sessionfleet.redisClusterHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "sessionfleet.redisShardName" .) (int .index) (include "sessionfleet.redisHeadless" .ctx) .ctx.Release.Namespace (trimSuffix "." .ctx.Values.clusterDomain) }}
{{- end }}

{{/* Every cluster pod as host:port, shard by shard: shards separated by `shardSep`, the pods
of one shard (pod 0 first) by `podSep`. */}}
{{- define "sessionfleet.redisClusterNodes" -}}
{{- $ctx := .ctx }}
{{- $cluster := $ctx.Values.redis.cluster }}
{{- $shards := list }}
{{- range $shard := until (int $cluster.shards) }}
{{- $pods := list }}
{{- range $index := until (int (add1 $cluster.replicasPerShard)) }}
{{- $pods = append $pods (printf "%s:%d" (include "sessionfleet.redisClusterHost" (dict "ctx" $ctx "shard" $shard "index" $index)) (int $ctx.Values.redis.port)) }}
{{- end }}
{{- $shards = append $shards (join $.podSep $pods) }}
{{- end }}
{{- join .shardSep $shards }}
{{- end }}

{{/* Refusals that need the live cluster (`lookup`; an offline render sees nothing and passes):
fewer shards than StatefulSets exist, and a switch between modes. Either would delete
StatefulSets holding sessions before any hook could object. */}}
{{- define "sessionfleet.redisModeGuard" -}}
{{- if .Values.redis.enabled }}
{{- $redisName := include "sessionfleet.redisName" . }}
{{- $prefix := printf "%s-shard-" $redisName }}
{{- $found := lookup "apps/v1" "StatefulSet" .Release.Namespace "" }}
{{- range $set := (get $found "items" | default list) }}
{{- $name := $set.metadata.name }}
{{- if eq $.Values.redis.mode "cluster" }}
{{- if eq $name $redisName }}
{{- fail (printf "redis.mode is cluster, but this release runs Redis in Sentinel mode (StatefulSet %s): switching modes would delete it and its sessions. Keep redis.mode=sentinel, or move the data and install a new release." $name) }}
{{- end }}
{{- if and (hasPrefix $prefix $name) (regexMatch "^[0-9]+$" (trimPrefix $prefix $name)) }}
{{- if ge (atoi (trimPrefix $prefix $name)) (int $.Values.redis.cluster.shards) }}
{{- fail (printf "redis.cluster.shards is %d, but shard StatefulSet %s exists: shrinking a Redis Cluster is not supported (the removed shards' slots and sessions would be lost). Set redis.cluster.shards back to %d or more." (int $.Values.redis.cluster.shards) $name (add1 (atoi (trimPrefix $prefix $name)))) }}
{{- end }}
{{- end }}
{{- else if and (hasPrefix $prefix $name) (regexMatch "^[0-9]+$" (trimPrefix $prefix $name)) }}
{{- fail (printf "redis.mode is sentinel, but this release runs a Redis Cluster (StatefulSet %s): switching modes would delete it and its sessions. Keep redis.mode=cluster, or move the data and install a new release." $name) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of the cluster-mode scripts (files/cluster/cluster-lib.sh lists them). */}}
{{- define "sessionfleet.redisClusterEnv" -}}
{{- $ctx := .ctx }}
{{- $redis := $ctx.Values.redis }}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
- name: SF_POD_IP
  valueFrom: {fieldRef: {fieldPath: status.podIP}}
- name: SF_ANNOUNCE_HOST
  value: "$(POD_NAME).{{ include "sessionfleet.redisHeadless" $ctx }}.{{ $ctx.Release.Namespace }}.svc.{{ trimSuffix "." $ctx.Values.clusterDomain }}"
- name: SF_REDIS_PORT
  value: {{ $redis.port | quote }}
- name: SF_BIND
  value: "* -::*"
- name: SF_CONFIG_DIR
  value: /config
- name: SF_DATA_DIR
  value: /data
- name: SF_REDIS_PASSWORD_FILE
  value: /secrets/redis-password
- name: SF_REDIS_PASSWORD_ACCEPTED_FILE
  value: /secrets/redis-password-accepted
- name: SF_PERSISTENCE
  value: {{ ternary "yes" "no" $redis.persistence.enabled | quote }}
- name: SF_MAXMEMORY
  value: {{ $redis.maxmemory | quote }}
- name: SF_CLUSTER_NODE_TIMEOUT
  value: {{ $redis.cluster.nodeTimeoutMs | quote }}
{{- /* Room for a second election: Redis lets a replica that lost one stand again only
     4 x node-timeout later. */}}
- name: SF_HANDOVER_SECONDS
  value: {{ max (int $redis.handoverSeconds) (add (div (mul 4 (int $redis.cluster.nodeTimeoutMs)) 1000) 8) | quote }}
{{- end }}
