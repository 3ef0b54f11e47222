{{/*
Names and labels. The default release name "breakglass" gives the same object names as the
kustomize overlays (breakglass-web, breakglass-worker, …); tests/deploy keeps the two equal.
*/}}
{{- define "breakglass.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "breakglass.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Pods of one component of this release: {"ctx": $, "component": "web"}. */}}
{{- define "breakglass.selector" -}}
app.kubernetes.io/name: {{ .ctx.Chart.Name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Every pod of the bot (web and worker) of this release. */}}
{{- define "breakglass.botSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The in-cluster Redis: not app.kubernetes.io/name breakglass, so no bot policy selects it. */}}
{{- define "breakglass.redisSelector" -}}
app.kubernetes.io/name: redis
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: {{ .Chart.Name }}
{{- end -}}

{{- define "breakglass.redisLabels" -}}
{{ include "breakglass.redisSelector" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "breakglass.serviceAccountName" -}}
{{- include "breakglass.fullname" . -}}
{{- end -}}

{{- define "breakglass.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Where credentials: token grants get their ServiceAccount: the release namespace by default. */}}
{{- define "breakglass.grantNamespace" -}}
{{- .Values.tokenNamespace | default .Release.Namespace -}}
{{- end -}}

{{/* The roster in the values (its YAML text) as a dict, for the RBAC it implies. */}}
{{- define "breakglass.rosterDict" -}}
{{- $roster := fromYaml .Values.roster.content -}}
{{- if hasKey $roster "Error" -}}
{{- fail (printf "roster.content is not YAML: %s" (get $roster "Error")) -}}
{{- end -}}
{{- toYaml $roster -}}
{{- end -}}

{{- define "breakglass.rosterConfigMap" -}}
{{- .Values.roster.existingConfigMap | default (printf "%s-roster" (include "breakglass.fullname" .)) -}}
{{- end -}}

{{/*
The cluster roles the bot may bind, sorted and unique, as bot/deploy_rbac.py renders them: from the roster
in the values, or rbac.clusterRoles when the roster lives in an existing ConfigMap. A JSON list.
*/}}
{{- define "breakglass.clusterRoles" -}}
{{- $roles := list -}}
{{- if .Values.roster.existingConfigMap -}}
{{- $roles = .Values.rbac.clusterRoles -}}
{{- else -}}
{{- $roster := include "breakglass.rosterDict" . | fromYaml -}}
{{- range $name, $role := ($roster.roles | default dict) -}}
{{- if not (and (kindIs "map" $role) $role.cluster_role) -}}
{{- fail (printf "roster.content: role %s has no cluster_role" $name) -}}
{{- end -}}
{{- $roles = append $roles $role.cluster_role -}}
{{- end -}}
{{- end -}}
{{- range $roles -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9.:]{0,251}[a-z0-9])?$" .) -}}
{{- fail (printf "cluster role %q is not a valid Kubernetes name" .) -}}
{{- end -}}
{{- end -}}
{{- $roles | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* "true" when some roster cluster uses credentials: token (then the bot gets the grants Role). */}}
{{- define "breakglass.serviceAccountTokens" -}}
{{- if .Values.roster.existingConfigMap -}}
{{- .Values.rbac.serviceAccountTokens -}}
{{- else -}}
{{- $roster := include "breakglass.rosterDict" . | fromYaml -}}
{{- $token := false -}}
{{- range $name, $cluster := ($roster.clusters | default dict) -}}
{{- if and (kindIs "map" $cluster) (eq (toString $cluster.credentials) "token") -}}
{{- $token = true -}}
{{- end -}}
{{- end -}}
{{- $token -}}
{{- end -}}
{{- end -}}

{{/* Secret names: the chart's own when it creates one from values, else the existing one. */}}
{{- define "breakglass.slackSecret" -}}
{{- if .Values.slack.botToken -}}{{ include "breakglass.fullname" . }}-slack{{- else -}}{{ .Values.slack.existingSecret }}{{- end -}}
{{- end -}}
{{- define "breakglass.signingKeySecret" -}}
{{- if .Values.signingKey.value -}}{{ include "breakglass.fullname" . }}-signing-key{{- else -}}{{ .Values.signingKey.existingSecret }}{{- end -}}
{{- end -}}
{{- define "breakglass.redisSecret" -}}
{{- if or .Values.redis.url .Values.redis.inCluster.password -}}{{ include "breakglass.fullname" . }}-redis{{- else -}}{{ .Values.redis.existingSecret }}{{- end -}}
{{- end -}}
{{- define "breakglass.auditWebhookSecret" -}}
{{- if .Values.auditWebhook.token -}}{{ include "breakglass.fullname" . }}-audit-webhook{{- else -}}{{ .Values.auditWebhook.existingSecret }}{{- end -}}
{{- end -}}
{{- define "breakglass.kubeconfigSecret" -}}
{{- if .Values.kubeconfig.content -}}{{ include "breakglass.fullname" . }}-kubeconfig{{- else -}}{{ .Values.kubeconfig.existingSecret }}{{- end -}}
{{- end -}}

{{/* A checkov skip annotation value: "CKV_K8S_n=reason". */}}
{{- define "breakglass.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "breakglass.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop:
    - ALL
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Settings both processes read, as env entries. */}}
{{- define "breakglass.commonEnv" -}}
- name: BREAKGLASS_ROSTER
  value: /etc/breakglass/roster/{{ .Values.roster.key }}
- name: BREAKGLASS_TOKEN_NAMESPACE
  value: {{ include "breakglass.grantNamespace" . | quote }}
- name: BREAKGLASS_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "breakglass.redisSecret" . }}
      key: url
- name: SLACK_BOT_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "breakglass.slackSecret" . }}
      key: SLACK_BOT_TOKEN
- name: BREAKGLASS_SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "breakglass.signingKeySecret" . }}
      key: key
# Automated approvals (README, "Connect PagerDuty and Jira"), every key optional: Secret
# breakglass-integrations with pagerduty-token, pagerduty-api-url, pagerduty-from, jira-url,
# jira-user and jira-token. No Secret (or no key): that service is not used.
- name: BREAKGLASS_PAGERDUTY_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: pagerduty-token
      optional: true
- name: BREAKGLASS_PAGERDUTY_API_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: pagerduty-api-url
      optional: true
- name: BREAKGLASS_PAGERDUTY_FROM
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: pagerduty-from
      optional: true
- name: BREAKGLASS_JIRA_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: jira-url
      optional: true
- name: BREAKGLASS_JIRA_USER
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: jira-user
      optional: true
- name: BREAKGLASS_JIRA_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.integrations.existingSecret }}
      key: jira-token
      optional: true
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "breakglass.checksums" -}}
checksum/roster: {{ .Values.roster.content | sha256sum }}
{{- end -}}

{{- /* The roster's cluster roles as a CEL list body: 'view', 'admin' */ -}}
{{- define "breakglass.quotedRoles" -}}
{{- $quoted := list -}}
{{- range . -}}{{- $quoted = append $quoted (printf "'%s'" .) -}}{{- end -}}
{{- join ", " $quoted -}}
{{- end -}}
