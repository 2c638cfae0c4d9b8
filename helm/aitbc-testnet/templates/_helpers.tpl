{{/*
Names and labels. Kubernetes names are DNS labels of at most 63 characters; every derived name
below is cut so that the whole name, suffix included, fits. Selectors never carry version labels
(a chart upgrade must not orphan pods).
*/}}

{{/* The chart name, overridable. */}}
{{- define "aitbc.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release-qualified base name (<= 63 characters). */}}
{{- define "aitbc.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The base name with a suffix, the base cut so that "<base>-<suffix>" fits in 63 characters.
Usage: include "aitbc.suffixedName" (list . "headless")
*/}}
{{- define "aitbc.suffixedName" -}}
{{- $ctx := index . 0 -}}
{{- $suffix := index . 1 -}}
{{- $room := int (sub 62 (len $suffix)) -}}
{{- printf "%s-%s" (include "aitbc.fullname" $ctx | trunc $room | trimSuffix "-") $suffix -}}
{{- end -}}

{{/*
The validators' StatefulSet. At most 52 characters: the controller adds the label
controller-revision-hash = "<name>-<10-character hash>", itself limited to 63.
*/}}
{{- define "aitbc.validatorsName" -}}
{{- include "aitbc.fullname" . | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "aitbc.headlessName" -}}
{{- include "aitbc.suffixedName" (list . "headless") -}}
{{- end -}}

{{- define "aitbc.configName" -}}
{{- include "aitbc.suffixedName" (list . "config") -}}
{{- end -}}

{{- define "aitbc.adminSecretName" -}}
{{- if .Values.admin.existingSecret -}}
{{- .Values.admin.existingSecret -}}
{{- else -}}
{{- include "aitbc.suffixedName" (list . "admin") -}}
{{- end -}}
{{- end -}}

{{- define "aitbc.adminSecretKey" -}}
{{- if .Values.admin.existingSecret -}}
{{- .Values.admin.existingSecretKey -}}
{{- else -}}
admin-token
{{- end -}}
{{- end -}}

{{- define "aitbc.loadgenMasterName" -}}
{{- include "aitbc.suffixedName" (list . "loadgen-master") -}}
{{- end -}}

{{- define "aitbc.loadgenWorkerName" -}}
{{- include "aitbc.suffixedName" (list . "loadgen-worker") -}}
{{- end -}}

{{- define "aitbc.prometheusName" -}}
{{- include "aitbc.suffixedName" (list . "prometheus") -}}
{{- end -}}

{{/* The chart label value: "<name>-<version>", '+' is not allowed in label values. */}}
{{- define "aitbc.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of one component: stable across upgrades, no version.
Usage: include "aitbc.selectorLabels" (list . "validator")
*/}}
{{- define "aitbc.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "aitbc.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* Labels every pod of this release carries, whatever its component. */}}
{{- define "aitbc.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "aitbc.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{/*
All labels of one component's objects: the selector labels plus chart and version.
Usage: include "aitbc.labels" (list . "validator")
*/}}
{{- define "aitbc.labels" -}}
{{- $ctx := index . 0 -}}
{{ include "aitbc.selectorLabels" . }}
app.kubernetes.io/part-of: aitbc-testnet
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
helm.sh/chart: {{ include "aitbc.chart" $ctx }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The validator image reference. */}}
{{- define "aitbc.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* The validators' gRPC DNS name template (the node substitutes {index}). */}}
{{- define "aitbc.peerTemplate" -}}
{{- printf "%s-{index}.%s.%s.svc.%s:%d" (include "aitbc.validatorsName" .) (include "aitbc.headlessName" .) .Release.Namespace .Values.clusterDomain (int .Values.ports.grpc) -}}
{{- end -}}

{{/* Comma-separated gRPC addresses of every validator pod, for the load generator. */}}
{{- define "aitbc.validatorTargets" -}}
{{- $sts := include "aitbc.validatorsName" . -}}
{{- $suffix := printf "%s.%s.svc.%s:%d" (include "aitbc.headlessName" .) .Release.Namespace .Values.clusterDomain (int .Values.ports.grpc) -}}
{{- $targets := list -}}
{{- range $i := until (int .Values.validators) -}}
{{- $targets = append $targets (printf "%s-%d.%s" $sts $i $suffix) -}}
{{- end -}}
{{- join "," $targets -}}
{{- end -}}

{{/* Resources of a validator: the entry for the mode, else the default entry. */}}
{{- define "aitbc.validatorResources" -}}
{{- $byMode := index .Values.resources .Values.mode -}}
{{- toYaml (default .Values.resources.default $byMode) -}}
{{- end -}}

{{/*
The PodDisruptionBudget's maxUnavailable: the largest count that stays strictly below a third
of the validators AND below a third of the authorities (a disruption may take only authorities,
and FAST mode counts authorities alone). floor((N-1)/3) == ceil(N/3)-1 for every N >= 1.
*/}}
{{- define "aitbc.pdbMaxUnavailable" -}}
{{- $byValidators := div (sub (int .Values.validators) 1) 3 -}}
{{- $byAuthorities := div (sub (int .Values.authorities) 1) 3 -}}
{{- min $byValidators $byAuthorities -}}
{{- end -}}

{{/*
Checks that values.schema.json cannot express (JSON Schema cannot compare two fields).
Rendered (as nothing) by configmap.yaml, which every install renders.
*/}}
{{- define "aitbc.validateValues" -}}
{{- $validators := int .Values.validators -}}
{{- if gt (int .Values.authorities) $validators -}}
{{- fail (printf "values: authorities (%d) must be <= validators (%d): every authority is one of the validators; lower authorities or raise validators" (int .Values.authorities) $validators) -}}
{{- end -}}
{{- if .Values.chaosMesh.enabled -}}
{{- range $exp := .Values.chaosMesh.experiments -}}
{{- range $i := concat ($exp.validators | default list) ($exp.targetValidators | default list) -}}
{{- if ge (int $i) $validators -}}
{{- fail (printf "values: chaosMesh.experiments[%s] names validator %d but validators is %d (indices are 0..%d); fix the experiment's validators/targetValidators" $exp.name (int $i) $validators (sub $validators 1)) -}}
{{- end -}}
{{- end -}}
{{- if and $exp.targetValidators (ne $exp.kind "NetworkChaos") -}}
{{- fail (printf "values: chaosMesh.experiments[%s] sets targetValidators, which only NetworkChaos supports; remove it or change kind" $exp.name) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The restricted pod security context shared by every pod of the chart (uid 10001). */}}
{{- define "aitbc.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "aitbc.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Chaos Mesh selector for validators by pod ordinal (all validators when the list is empty). */}}
{{- define "aitbc.chaosSelector" -}}
{{- $ctx := index . 0 -}}
{{- $ordinals := index . 1 -}}
namespaces:
  - {{ $ctx.Release.Namespace }}
labelSelectors:
  {{- include "aitbc.selectorLabels" (list $ctx "validator") | nindent 2 }}
{{- if $ordinals }}
expressionSelectors:
  - key: apps.kubernetes.io/pod-index
    operator: In
    values:
      {{- range $ordinals }}
      - {{ . | toString | quote }}
      {{- end }}
{{- end }}
{{- end -}}

{{/* Environment shared by the Locust master and workers. */}}
{{- define "aitbc.loadgenEnv" -}}
- name: HOME
  value: /tmp
- name: AITBC_CHAIN_ID
  value: {{ .Values.chainId | quote }}
# Per-pod gRPC targets: a single channel to the headless Service would pin one pod.
- name: AITBC_TARGETS
  value: {{ include "aitbc.validatorTargets" . | quote }}
{{- range $name, $value := .Values.loadgen.env }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{- define "aitbc.nightlyName" -}}
{{- include "aitbc.suffixedName" (list . "nightly") -}}
{{- end -}}

{{/* The claim holding the nightly's reports and history: an existing one, or the chart's. */}}
{{- define "aitbc.nightlyClaimName" -}}
{{- .Values.nightly.persistence.existingClaim | default (include "aitbc.nightlyName" .) -}}
{{- end -}}

{{/* The nightly campaign's image: nightly.image, else the chart's (node) image. */}}
{{- define "aitbc.nightlyImage" -}}
{{- $image := .Values.nightly.image -}}
{{- printf "%s:%s" ($image.repository | default .Values.image.repository) (toString ($image.tag | default .Values.image.tag)) -}}
{{- end -}}
