{{- define "coderemote.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "coderemote.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "coderemote.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "coderemote.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The server pods. */}}
{{- define "coderemote.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coderemote.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{/* The kernel pods the server starts carry these labels (and their owner's and kernel's). */}}
{{- define "coderemote.kernelSelectorLabels" -}}
app.kubernetes.io/name: {{ include "coderemote.name" . }}-kernel
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: kernel
{{- end -}}

{{- define "coderemote.kernelsNamespace" -}}
{{- .Values.kernels.namespace | default (printf "%s-kernels" .Release.Namespace) -}}
{{- end -}}

{{- define "coderemote.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
