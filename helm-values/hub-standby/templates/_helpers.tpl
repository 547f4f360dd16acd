{{- /*
  The label that tells the standby's pods from the chart's hub pod. helm-values/ha.yaml
  names it too (the chart's hub pod avoids pods carrying it).
*/}}
{{- define "hub-standby.label" -}}
lsst-hub/standby
{{- end }}


{{- /*
  hub-standby.main: the main release's hub Deployment (YAML), picked out of
  .Values.hubDeployment and checked: one Deployment whose pods are labeled
  component: hub, running lsst-hub-ha, on no claim (sqlite), in this namespace.
*/}}
{{- define "hub-standby.main" -}}
{{- $text := required "hubDeployment: give the main release's rendered hub Deployment (--set-file hubDeployment=hub-deployment.yaml; docs/how-to/high-availability.md)" .Values.hubDeployment }}
{{- $found := list }}
{{- range $doc := regexSplit "(?m)^---.*$" $text -1 }}
  {{- $obj := fromYaml $doc }}
  {{- if hasKey $obj "Error" }}
    {{- fail (printf "hubDeployment: not YAML: %s" (get $obj "Error")) }}
  {{- end }}
  {{- if and (eq (get $obj "kind" | toString) "Deployment") (eq (dig "spec" "template" "metadata" "labels" "component" "" $obj | toString) "hub") }}
    {{- $found = append $found $obj }}
  {{- end }}
{{- end }}
{{- if ne (len $found) 1 }}
  {{- fail (printf "hubDeployment: %d Deployments with pods labeled component: hub, not one" (len $found)) }}
{{- end }}
{{- $main := first $found }}
{{- $namespace := dig "metadata" "namespace" "" $main }}
{{- if and $namespace (ne $namespace .Release.Namespace) }}
  {{- fail (printf "hubDeployment is in namespace %s, this release in %s: install the standby in the hub's namespace" $namespace .Release.Namespace) }}
{{- end }}
{{- $hub := dict }}
{{- range $main.spec.template.spec.containers }}
  {{- if eq .name "hub" }}{{ $hub = . }}{{ end }}
{{- end }}
{{- if not (has "lsst-hub-ha" ($hub.command | default list)) }}
  {{- fail "hubDeployment: its hub container does not run lsst-hub-ha: render it with helm-values/ha.yaml. A standby beside a hub that does not take part in the election would be a second active hub." }}
{{- end }}
{{- range $main.spec.template.spec.volumes }}
  {{- if hasKey . "persistentVolumeClaim" }}
    {{- fail (printf "hubDeployment: the hub mounts the claim %s (hub.db.type sqlite-pvc?): a standby needs the database on PostgreSQL (helm-values/db-postgres.yaml)" .persistentVolumeClaim.claimName) }}
  {{- end }}
{{- end }}
{{- $main | toYaml }}
{{- end }}


{{- /*
  hub-standby.lease: the Lease name the hub container's lsst-hub-ha campaigns for
  (--lease-name NAME or --lease-name=NAME before "--"; else the wrapper's default).
  A --lease-namespace other than this namespace is refused: the Role is made here.
*/}}
{{- define "hub-standby.lease" -}}
{{- $main := include "hub-standby.main" . | fromYaml }}
{{- $command := list }}
{{- range $main.spec.template.spec.containers }}
  {{- if eq .name "hub" }}{{ $command = concat (.command | default list) (.args | default list) }}{{ end }}
{{- end }}
{{- $name := "jupyterhub-hub" }}
{{- $namespace := .Release.Namespace }}
{{- $seen := false }}
{{- $done := false }}
{{- range $i, $arg := $command }}
  {{- if and $seen (not $done) }}
    {{- $next := "" }}
    {{- if lt (add1 $i) (len $command) }}{{ $next = index $command (add1 $i) }}{{ end }}
    {{- if eq $arg "--" }}{{ $done = true }}
    {{- else if hasPrefix "--lease-name=" $arg }}{{ $name = trimPrefix "--lease-name=" $arg }}
    {{- else if eq $arg "--lease-name" }}{{ $name = $next }}
    {{- else if hasPrefix "--lease-namespace=" $arg }}{{ $namespace = trimPrefix "--lease-namespace=" $arg }}
    {{- else if eq $arg "--lease-namespace" }}{{ $namespace = $next }}
    {{- end }}
  {{- end }}
  {{- if eq $arg "lsst-hub-ha" }}{{ $seen = true }}{{ end }}
{{- end }}
{{- if ne $namespace .Release.Namespace }}
  {{- fail (printf "the hub's lsst-hub-ha campaigns in namespace %s, this release is in %s: the Lease's Role is made here" $namespace .Release.Namespace) }}
{{- end }}
{{- $name }}
{{- end }}


{{- /*
  hub-standby.labels: labels of this chart's own objects (the Role and its binding).
*/}}
{{- define "hub-standby.labels" -}}
app.kubernetes.io/name: lsst-hub
app.kubernetes.io/component: standby-hub
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end }}
