{{/* Name of the chart, overridable. */}}
{{- define "ts3gw.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified app name; the StatefulSet and so the pods (<fullname>-N) carry it. */}}
{{- define "ts3gw.fullname" -}}
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

{{/* The headless Service that gives every pod a stable DNS name. */}}
{{- define "ts3gw.headless" -}}
{{- printf "%s-headless" (include "ts3gw.fullname" .) -}}
{{- end -}}

{{- define "ts3gw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "ts3gw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "ts3gw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ts3gw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ts3gw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ts3gw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ts3gw.secretName" -}}
{{- default (include "ts3gw.fullname" .) .Values.auth.existingSecret -}}
{{- end -}}

{{/*
The pod count that founded the cluster. It is read back from the release's bootstrap ConfigMap on
upgrades, so raising `replicas` later does not change the founding peer list (nor the cluster id
every founder derives from it). At first install (and in `helm template`) it is `founders` when
set (to recreate a lost bootstrap ConfigMap), else `replicas`.
*/}}
{{- define "ts3gw.founders" -}}
{{- $cm := lookup "v1" "ConfigMap" .Release.Namespace (printf "%s-bootstrap" (include "ts3gw.fullname" .)) -}}
{{- $stored := "" -}}
{{- if and $cm $cm.data (index $cm.data "founders") -}}
{{- $stored = index $cm.data "founders" -}}
{{- end -}}
{{- if and $stored .Values.founders (ne (int $stored) (int .Values.founders)) -}}
{{- fail (printf "founders %d differs from the %s this cluster was founded with: the founding peer list can never change" (int .Values.founders) $stored) -}}
{{- end -}}
{{- if $stored -}}
{{- $stored -}}
{{- else if .Values.founders -}}
{{- .Values.founders -}}
{{- else -}}
{{- .Values.replicas -}}
{{- end -}}
{{- end -}}

{{/* Stable DNS name of pod N: <fullname>-N.<headless>.<namespace>.svc.<clusterDomain>. */}}
{{- define "ts3gw.podHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "ts3gw.fullname" .root) (int .ordinal) (include "ts3gw.headless" .root) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* TS3GW_PEERS of the founders: node id = ordinal + 1 (TS3GW_NODE_ID=ordinal). */}}
{{- define "ts3gw.peers" -}}
{{- $peers := list -}}
{{- range $i := until (int (include "ts3gw.founders" .)) -}}
{{- $peers = append $peers (printf "%d@%s:%d" (add $i 1) (include "ts3gw.podHost" (dict "root" $ "ordinal" $i)) (int $.Values.ports.raft)) -}}
{{- end -}}
{{- join "," $peers -}}
{{- end -}}

{{/*
A value of the release's Secret: the given one, else the one stored by an earlier install, else
a new random one (upper-case with `upper`, as AWS access key ids are). Arguments: root, key
(Secret key), given (value from values.yaml), length, upper.
*/}}
{{- define "ts3gw.secretValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace (include "ts3gw.fullname" .root) -}}
{{- if .given -}}
{{- .given -}}
{{- else if and $existing $existing.data (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else if .upper -}}
{{- randAlphaNum (int .length) | upper -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}
