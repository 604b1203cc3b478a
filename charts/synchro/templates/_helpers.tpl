{{/* Object names: <release>-synchro unless the release name already says synchro. */}}
{{- define "synchro.fullname" -}}
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
The pod's name label is fixed: the NetworkPolicy of every managed Redis admits pods labelled
app.kubernetes.io/name=synchro-operator (synchro.redis.managed.OPERATOR_POD_LABELS), so the
operator can ping its Redis.
*/}}
{{- define "synchro.selectorLabels" -}}
app.kubernetes.io/name: synchro-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "synchro.image" -}}
{{ printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) | quote }}
{{- end -}}

{{- define "synchro.labels" -}}
{{ include "synchro.selectorLabels" . }}
app.kubernetes.io/part-of: synchro
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
RBAC rules, written once and used by the ClusterRoles (every namespace) or by a Role in each of
.Values.watchNamespaces. docs/install.md explains each rule; manifests/base/ carries the same rules,
and tests/integration/test_chart.py fails when the two differ.
*/}}

{{/* kopf, namespaced: SyncClusters feed the daemons and indexes (list, watch); kopf writes its
finalizer and progress annotations on them (patch). */}}
{{- define "synchro.kopfRules" -}}
- apiGroups: [synchro.dev]
  resources: [syncclusters]
  verbs: [list, watch, patch]
{{- end -}}

{{/* kopf, cluster-scoped: CRD watch for runtime discovery; with -n, namespace list/watch. */}}
{{- define "synchro.kopfClusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}

{{/* Leader election (operator/synchro/elector.py): read, create and renew its Lease. */}}
{{- define "synchro.leaderElectionRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end -}}

{{/* What Synchro's code does: operator/synchro/{handlers,reconcile,kube}.py. It deletes only a frozen Redis master's pod, a managed Redis's one-pod Deployment once its replicas took over, and its StatefulSet once it moved back to one pod. */}}
{{- define "synchro.appRules" -}}
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [configmaps, services, persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [networking.k8s.io]
  resources: [networkpolicies]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
- apiGroups: [synchro.dev]
  resources: [syncclusters/status]
  verbs: [patch]
- apiGroups: [synchro.dev]
  resources: [syncclusters/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}
