//! Upstream's defaulting (`pkg/apis/*/v1/defaults.go` and the declarative `+default` markers of
//! v1.33), applied to every decoded object of a kind: request bodies, patched objects, and again
//! after a strategy prepared an object for storage (upstream also defaults what it reads back
//! from etcd, which is how a Job's generated template labels reach its own labels).
//!
//! Why: clients read the defaulted fields back (`kubectl get -o yaml`, `kubectl diff`,
//! controllers that compare specs), and validation is written against defaulted objects. Only
//! defaults that are on in a v1.33 server with default feature gates are applied.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Set `obj[key]` to `v` when it is absent or null.
fn default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut() {
        match m.get(key) {
            Some(x) if !x.is_null() => {}
            _ => {
                m.insert(key.to_string(), v);
            }
        }
    }
}

/// Like [`default`], also replacing an empty string.
fn default_str(obj: &mut Value, key: &str, v: &str) {
    if obj.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
        if let Some(m) = obj.as_object_mut() {
            m.insert(key.to_string(), json!(v));
        }
    }
}

/// `obj[key]` as an object, created when absent (only if `obj` is an object).
fn child<'a>(obj: &'a mut Value, key: &str) -> Option<&'a mut Value> {
    let m = obj.as_object_mut()?;
    let v = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    v.is_object().then_some(v)
}

fn each<'a>(obj: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    obj.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten()
}

/// The zero value of a kind's status as upstream serializes it, for the kinds with a status
/// subresource: Go decodes every object into a struct whose `status` is never absent, and
/// writes the status fields without `omitempty` even when they are zero (`replicas: 0`).
/// `None` for kinds without a status. HorizontalPodAutoscalers differ by version.
pub fn zero_status(group: &str, kind: &str, api_version: &str) -> Option<Value> {
    Some(match (group, kind) {
        ("", "Node") => {
            let info = ["machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"];
            json!({
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
                "nodeInfo": info.iter().map(|f| (f.to_string(), json!(""))).collect::<Map<String, Value>>(),
            })
        }
        ("", "ReplicationController") | ("apps", "ReplicaSet") => json!({"replicas": 0}),
        ("", "Service") | ("networking.k8s.io", "Ingress") => json!({"loadBalancer": {}}),
        ("apps", "StatefulSet") => json!({"replicas": 0, "availableReplicas": 0}),
        ("apps", "DaemonSet") => json!({"currentNumberScheduled": 0, "numberMisscheduled": 0,
            "desiredNumberScheduled": 0, "numberReady": 0}),
        ("autoscaling", "HorizontalPodAutoscaler") if api_version == "autoscaling/v1" => {
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        }
        ("autoscaling", "HorizontalPodAutoscaler") => json!({"desiredReplicas": 0, "currentMetrics": null}),
        ("policy", "PodDisruptionBudget") => json!({"disruptionsAllowed": 0, "currentHealthy": 0,
            "desiredHealthy": 0, "expectedPods": 0}),
        ("storage.k8s.io", "VolumeAttachment") => json!({"attached": false}),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": null})
        }
        // Statuses whose fields are all `omitempty` (phases are defaulted per kind below).
        ("", "Namespace" | "PersistentVolumeClaim" | "PersistentVolume" | "Pod" | "ResourceQuota")
        | ("apps", "Deployment")
        | ("batch", "Job" | "CronJob")
        | ("certificates.k8s.io", "CertificateSigningRequest")
        | ("networking.k8s.io", "ServiceCIDR")
        | ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy")
        | ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration")
        | ("apiregistration.k8s.io", "APIService") => json!({}),
        _ => return None,
    })
}

/// Fill what `zero` has and `v` lacks, recursing into objects both have.
fn fill_zero(v: &mut Value, zero: Value) {
    match (v, zero) {
        (v, zero) if v.is_null() => *v = zero,
        (Value::Object(m), Value::Object(z)) => {
            for (k, zv) in z {
                match m.get_mut(&k) {
                    Some(x) => fill_zero(x, zv),
                    None => {
                        m.insert(k, zv);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Apply the defaults of `group`/`kind` to `obj` in place.
pub fn apply(group: &str, kind: &str, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    if let Some(zero) = zero_status(group, kind, api_version) {
        let status = obj.as_object_mut().map(|m| m.entry("status").or_insert(Value::Null));
        if let Some(status) = status {
            fill_zero(status, zero);
        }
    }
    match (group, kind) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                pod_spec(spec);
                pod_only(spec);
            }
        }
        ("", "PodTemplate") => template(obj.get_mut("template")),
        ("", "ReplicationController") => replication_controller(obj),
        ("", "Service") => service(obj),
        ("", "Secret") => secret(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Endpoints") => {
            for subset in each(obj, "subsets") {
                for p in each(subset, "ports") {
                    default_str(p, "protocol", "TCP");
                }
            }
        }
        ("", "PersistentVolumeClaim") => pvc(obj),
        ("", "PersistentVolume") => {
            if let Some(spec) = child(obj, "spec") {
                default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
                default_str(spec, "volumeMode", "Filesystem");
            }
            if let Some(status) = child(obj, "status") {
                default_str(status, "phase", "Pending");
            }
        }
        ("", "LimitRange") => {
            if let Some(spec) = obj.get_mut("spec") {
                for item in each(spec, "limits") {
                    limit_range_item(item);
                }
            }
        }
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "replicas", json!(1));
                template(spec.get_mut("template"));
            }
        }
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("autoscaling", "HorizontalPodAutoscaler") if obj["apiVersion"] == "autoscaling/v1" => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "minReplicas", json!(1));
            }
        }
        ("autoscaling", "HorizontalPodAutoscaler") => hpa(obj),
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            for s in each(obj, "subjects") {
                let api_group = match s["kind"].as_str() {
                    Some("ServiceAccount") => "",
                    Some("User" | "Group") => "rbac.authorization.k8s.io",
                    _ => continue,
                };
                if s.get("apiGroup").is_none_or(Value::is_null) {
                    s["apiGroup"] = json!(api_group);
                }
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default_str(obj, "reclaimPolicy", "Delete");
            default_str(obj, "volumeBindingMode", "Immediate");
        }
        ("storage.k8s.io", "CSIDriver") => {
            if let Some(spec) = child(obj, "spec") {
                default(spec, "attachRequired", json!(true));
                default(spec, "podInfoOnMount", json!(false));
                default(spec, "storageCapacity", json!(false));
                default(spec, "fsGroupPolicy", json!("ReadWriteOnceWithFSType"));
                default(spec, "requiresRepublish", json!(false));
                default(spec, "volumeLifecycleModes", json!(["Persistent"]));
                default(spec, "seLinuxMount", json!(false));
            }
        }
        ("scheduling.k8s.io", "PriorityClass") => default_str(obj, "preemptionPolicy", "PreemptLowerPriority"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            for w in each(obj, "webhooks") {
                webhook(w, false);
            }
        }
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            for w in each(obj, "webhooks") {
                webhook(w, true);
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if let Some(spec) = child(obj, "spec") {
                if let Some(conv) = child(spec, "conversion") {
                    default_str(conv, "strategy", "None");
                }
            }
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            for p in each(obj, "ports") {
                default_str(p, "protocol", "TCP");
                default(p, "name", json!(""));
            }
        }
        _ => {}
    }
}

// ---- core ----

/// `SetDefaults_PodSpec` and the defaults of everything inside a pod spec; used for pods and
/// every pod template.
pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default(spec, "securityContext", json!({}));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default_str(spec, "schedulerName", "default-scheduler");
    // The deprecated `serviceAccount` mirrors `serviceAccountName` (v1 conversion).
    let sa = spec["serviceAccountName"].as_str().filter(|s| !s.is_empty()).map(String::from);
    let legacy = spec["serviceAccount"].as_str().filter(|s| !s.is_empty()).map(String::from);
    if let Some(name) = sa.or(legacy) {
        spec["serviceAccountName"] = json!(name);
        spec["serviceAccount"] = json!(name);
    }
    for key in ["containers", "initContainers", "ephemeralContainers"] {
        for c in each(spec, key) {
            container(c);
        }
    }
    for v in each(spec, "volumes") {
        volume(v);
    }
}

/// `SetDefaults_Pod`: what only a Pod (not a template) gets.
fn pod_only(spec: &mut Value) {
    default(spec, "enableServiceLinks", json!(true));
    let host_network = spec["hostNetwork"].as_bool() == Some(true);
    for key in ["containers", "initContainers"] {
        for c in each(spec, key) {
            // Requests default to limits.
            if let Some(limits) = c["resources"]["limits"].as_object().cloned() {
                if let Some(requests) = child(&mut c["resources"], "requests").and_then(Value::as_object_mut) {
                    for (k, v) in limits {
                        requests.entry(k).or_insert(v);
                    }
                }
            }
            if host_network {
                for p in each(c, "ports") {
                    if p["hostPort"].as_i64().unwrap_or(0) == 0 {
                        p["hostPort"] = p["containerPort"].clone();
                    }
                }
            }
        }
    }
}

/// The image pull policy upstream picks for an image reference: `Always` for `:latest` or no
/// tag (and no digest), `IfNotPresent` otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let tag = name[last_slash..].rsplit_once(':').map(|(_, t)| t);
    match tag {
        Some("latest") => "Always",
        Some(_) => "IfNotPresent",
        None if digest => "IfNotPresent",
        None => "Always",
    }
}

fn container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if c["imagePullPolicy"].as_str().is_none_or(str::is_empty) {
        let policy = default_pull_policy(c["image"].as_str().unwrap_or(""));
        c["imagePullPolicy"] = json!(policy);
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // ResourceRequirements is a struct in Go: it always serializes, as `{}` when empty.
    default(c, "resources", json!({}));
    for p in each(c, "ports") {
        default_str(p, "protocol", "TCP");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            for (k, v) in [("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1), ("failureThreshold", 3)] {
                if p[k].as_i64().unwrap_or(0) == 0 {
                    p[k] = json!(v);
                }
            }
            handler(p);
            if let Some(g) = p.get_mut("grpc").filter(|g| g.is_object()) {
                default(g, "service", json!(""));
            }
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).filter(|h| h.is_object()) {
                handler(h);
            }
        }
    }
    for e in each(c, "env") {
        if let Some(fr) = e.get_mut("valueFrom").and_then(|v| v.get_mut("fieldRef")).filter(|f| f.is_object()) {
            default_str(fr, "apiVersion", "v1");
        }
    }
}

/// `SetDefaults_HTTPGetAction` inside a probe or lifecycle handler.
fn handler(h: &mut Value) {
    if let Some(g) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        default_str(g, "path", "/");
        default_str(g, "scheme", "HTTP");
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image",
];

fn volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if !VOLUME_SOURCES.iter().any(|s| v.get(*s).is_some_and(|x| !x.is_null())) {
        v["emptyDir"] = json!({});
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).filter(|s| s.is_object()) {
            default(s, "defaultMode", json!(420));
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").filter(|s| s.is_object()) {
        downward_items(d);
    }
    if let Some(p) = v.get_mut("projected").filter(|s| s.is_object()) {
        for source in each(p, "sources") {
            if let Some(t) = source.get_mut("serviceAccountToken").filter(|s| s.is_object()) {
                default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = source.get_mut("downwardAPI").filter(|s| s.is_object()) {
                downward_items(d);
            }
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|s| s.is_object()) {
        default(h, "type", json!(""));
    }
    if let Some(i) = v.get_mut("iscsi").filter(|s| s.is_object()) {
        default_str(i, "iscsiInterface", "default");
    }
    if let Some(r) = v.get_mut("rbd").filter(|s| s.is_object()) {
        default_str(r, "pool", "rbd");
        default_str(r, "user", "admin");
        default_str(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = v.get_mut("azureDisk").filter(|s| s.is_object()) {
        default(a, "cachingMode", json!("ReadWrite"));
        default(a, "kind", json!("Shared"));
        default(a, "fsType", json!("ext4"));
        default(a, "readOnly", json!(false));
    }
    if let Some(s) = v.get_mut("scaleIO").filter(|s| s.is_object()) {
        default_str(s, "storageMode", "ThinProvisioned");
        default_str(s, "fsType", "xfs");
    }
    if let Some(spec) = v.get_mut("ephemeral").and_then(|e| e.get_mut("volumeClaimTemplate")).and_then(|t| t.get_mut("spec")) {
        if spec.is_object() {
            default_str(spec, "volumeMode", "Filesystem");
        }
    }
}

fn downward_items(d: &mut Value) {
    for item in each(d, "items") {
        if let Some(fr) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
            default_str(fr, "apiVersion", "v1");
        }
    }
}

/// Defaults of a `PodTemplateSpec` (its pod spec).
fn template(t: Option<&mut Value>) {
    if let Some(spec) = t.and_then(|t| t.get_mut("spec")) {
        pod_spec(spec);
    }
}

fn replication_controller(obj: &mut Value) {
    let labels = obj["spec"]["template"]["metadata"]["labels"].as_object().cloned();
    if let Some(labels) = labels {
        if obj["spec"]["selector"].as_object().is_none_or(Map::is_empty) {
            obj["spec"]["selector"] = Value::Object(labels.clone());
        }
        if obj["metadata"]["labels"].as_object().is_none_or(Map::is_empty) {
            obj["metadata"]["labels"] = Value::Object(labels);
        }
    }
    if let Some(spec) = child(obj, "spec") {
        default(spec, "replicas", json!(1));
        template(spec.get_mut("template"));
    }
}

fn service(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    default_str(spec, "sessionAffinity", "None");
    match spec["sessionAffinity"].as_str() {
        Some("None") => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        Some("ClientIP") => {
            if spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"].is_null() {
                spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for p in each(spec, "ports") {
        default_str(p, "protocol", "TCP");
        let unset = match &p["targetPort"] {
            Value::Null => true,
            Value::Number(n) => n.as_i64() == Some(0),
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if unset {
            p["targetPort"] = p["port"].clone();
        }
    }
    let ty = spec["type"].as_str().unwrap_or("").to_string();
    let has_external_ips = spec["externalIPs"].as_array().is_some_and(|a| !a.is_empty());
    let externally_accessible =
        ty == "LoadBalancer" || ty == "NodePort" || (ty == "ClusterIP" && has_external_ips);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // ServiceStatus.LoadBalancer is a struct in Go: it always serializes.
    if let Some(status) = child(obj, "status") {
        default(status, "loadBalancer", json!({}));
    }
}

/// `SetDefaults_Secret`, and the v1 conversion that merges `stringData` into `data`.
fn secret(obj: &mut Value) {
    default_str(obj, "type", "Opaque");
    let Some(m) = obj.as_object_mut() else { return };
    if let Some(Value::Object(sd)) = m.remove("stringData") {
        let data = m.entry("data").or_insert_with(|| json!({}));
        if data.is_null() {
            *data = json!({});
        }
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or("");
                d.insert(k, json!(base64::engine::general_purpose::STANDARD.encode(s)));
            }
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
    if !name.is_empty() {
        if let Some(labels) = child(obj, "metadata").and_then(|m| child(m, "labels")) {
            labels["kubernetes.io/metadata.name"] = json!(name);
        }
    }
    if obj.get("status").is_some_and(Value::is_object) {
        default_str(&mut obj["status"], "phase", "Active");
    }
}

fn pvc(obj: &mut Value) {
    if let Some(spec) = child(obj, "spec") {
        default_str(spec, "volumeMode", "Filesystem");
    }
    if let Some(status) = child(obj, "status") {
        default_str(status, "phase", "Pending");
    }
}

fn limit_range_item(item: &mut Value) {
    if item["type"] != "Container" {
        return;
    }
    let max = item["max"].as_object().cloned().unwrap_or_default();
    let min = item["min"].as_object().cloned().unwrap_or_default();
    let Some(def) = child(item, "default").and_then(Value::as_object_mut) else { return };
    for (k, v) in max {
        def.entry(k).or_insert(v);
    }
    let def = def.clone();
    let Some(req) = child(item, "defaultRequest").and_then(Value::as_object_mut) else { return };
    for (k, v) in def.into_iter().chain(min) {
        req.entry(k).or_insert(v);
    }
}

// ---- apps ----

fn deployment(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    default(spec, "replicas", json!(1));
    if let Some(strategy) = child(spec, "strategy") {
        default_str(strategy, "type", "RollingUpdate");
        if strategy["type"] == "RollingUpdate" {
            if let Some(ru) = child(strategy, "rollingUpdate") {
                default(ru, "maxUnavailable", json!("25%"));
                default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    template(spec.get_mut("template"));
}

fn daemon_set(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    if let Some(us) = child(spec, "updateStrategy") {
        default_str(us, "type", "RollingUpdate");
        if us["type"] == "RollingUpdate" {
            if let Some(ru) = child(us, "rollingUpdate") {
                default(ru, "maxUnavailable", json!(1));
                default(ru, "maxSurge", json!(0));
            }
        }
    }
    default(spec, "revisionHistoryLimit", json!(10));
    template(spec.get_mut("template"));
}

fn stateful_set(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    default_str(spec, "podManagementPolicy", "OrderedReady");
    if let Some(us) = child(spec, "updateStrategy") {
        if us["type"].as_str().is_none_or(str::is_empty) {
            us["type"] = json!("RollingUpdate");
            default(us, "rollingUpdate", json!({}));
        }
        if us["type"] == "RollingUpdate" && us["rollingUpdate"].is_object() {
            default(&mut us["rollingUpdate"], "partition", json!(0));
        }
    }
    if let Some(p) = child(spec, "persistentVolumeClaimRetentionPolicy") {
        default_str(p, "whenDeleted", "Retain");
        default_str(p, "whenScaled", "Retain");
    }
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    template(spec.get_mut("template"));
    for claim in each(spec, "volumeClaimTemplates") {
        pvc(claim);
    }
}

// ---- batch ----

fn job_spec(spec: &mut Value) {
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    default(spec, "parallelism", json!(1));
    if spec["backoffLimit"].is_null() {
        let limit = if spec["backoffLimitPerIndex"].is_null() { 6 } else { i64::from(i32::MAX) };
        spec["backoffLimit"] = json!(limit);
    }
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    if let Some(rules) = spec.get_mut("podFailurePolicy").and_then(|p| p.get_mut("rules")).and_then(Value::as_array_mut) {
        for rule in rules {
            for pattern in each(rule, "onPodConditions") {
                default_str(pattern, "status", "True");
            }
        }
    }
    if spec["podReplacementPolicy"].is_null() {
        let p = if spec["podFailurePolicy"].is_null() { "TerminatingOrFailed" } else { "Failed" };
        spec["podReplacementPolicy"] = json!(p);
    }
    default(spec, "manualSelector", json!(false));
    template(spec.get_mut("template"));
}

fn job(obj: &mut Value) {
    let template_labels = obj["spec"]["template"]["metadata"]["labels"].as_object().cloned();
    if let Some(labels) = template_labels {
        if obj["metadata"]["labels"].as_object().is_none_or(Map::is_empty) {
            obj["metadata"]["labels"] = Value::Object(labels);
        }
    }
    if let Some(spec) = child(obj, "spec") {
        job_spec(spec);
    }
}

fn cron_job(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    default_str(spec, "concurrencyPolicy", "Allow");
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(js) = spec.get_mut("jobTemplate").and_then(|t| t.get_mut("spec")).filter(|s| s.is_object()) {
        // Job templates get the Job spec's declarative defaults only through their pod template.
        template(js.get_mut("template"));
    }
}

// ---- other groups ----

fn hpa(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    default(spec, "minReplicas", json!(1));
    if spec["metrics"].as_array().is_none_or(Vec::is_empty) {
        spec["metrics"] = json!([{"type": "Resource", "resource": {"name": "cpu",
            "target": {"type": "Utilization", "averageUtilization": 80}}}]);
    }
    if let Some(b) = spec.get_mut("behavior").filter(|b| b.is_object()) {
        let up = child(b, "scaleUp");
        if let Some(up) = up {
            default(up, "stabilizationWindowSeconds", json!(0));
            default(up, "selectPolicy", json!("Max"));
            default(up, "policies", json!([{"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}]));
        }
        if let Some(down) = child(b, "scaleDown") {
            default(down, "stabilizationWindowSeconds", json!(300));
            default(down, "selectPolicy", json!("Max"));
            default(down, "policies", json!([{"type": "Percent", "value": 100, "periodSeconds": 15}]));
        }
    }
}

fn network_policy(obj: &mut Value) {
    let Some(spec) = child(obj, "spec") else { return };
    for dir in ["ingress", "egress"] {
        for rule in each(spec, dir) {
            for p in each(rule, "ports") {
                default_str(p, "protocol", "TCP");
            }
        }
    }
    if spec["policyTypes"].as_array().is_none_or(Vec::is_empty) {
        let mut types = vec![json!("Ingress")];
        if spec["egress"].as_array().is_some_and(|e| !e.is_empty()) {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = Value::Array(types);
    }
}

fn webhook(w: &mut Value, mutating: bool) {
    if !w.is_object() {
        return;
    }
    default_str(w, "failurePolicy", "Fail");
    default_str(w, "matchPolicy", "Equivalent");
    default(w, "namespaceSelector", json!({}));
    default(w, "objectSelector", json!({}));
    default(w, "timeoutSeconds", json!(10));
    if mutating {
        default_str(w, "reinvocationPolicy", "Never");
    }
    for r in each(w, "rules") {
        default_str(r, "scope", "*");
    }
    if let Some(svc) = w.get_mut("clientConfig").and_then(|c| c.get_mut("service")).filter(|s| s.is_object()) {
        default(svc, "port", json!(443));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(group: &str, kind: &str, mut v: Value) -> Value {
        apply(group, kind, &mut v);
        v
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/nginx:1"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx@sha256:abcd"), "IfNotPresent");
        assert_eq!(default_pull_policy("nginx:latest@sha256:abcd"), "Always");
    }

    #[test]
    fn pod_defaults() {
        let p = applied("", "Pod", json!({"spec": {"containers": [{
            "name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "resources": {"limits": {"cpu": "1"}},
            "livenessProbe": {"httpGet": {"port": 80}},
            "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}}));
        let spec = &p["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["enableServiceLinks"], true);
        let c = &spec["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"]["requests"], json!({"cpu": "1"}));
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(spec["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(spec["volumes"][1]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
        let d = applied("apps", "Deployment", json!({"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": "nginx:1", "resources": {"limits": {"cpu": "1"}}}]}}}}));
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["strategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}));
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert!(pod.get("enableServiceLinks").is_none());
        assert!(pod["containers"][0]["resources"].get("requests").is_none());
        // A Recreate strategy gets no rollingUpdate.
        let d = applied("apps", "Deployment", json!({"spec": {"strategy": {"type": "Recreate"}}}));
        assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn workload_defaults() {
        let s = applied("apps", "StatefulSet", json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}));
        assert_eq!(s["spec"]["replicas"], 1);
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(s["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}));
        assert_eq!(s["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(s["spec"]["persistentVolumeClaimRetentionPolicy"], json!({"whenDeleted": "Retain", "whenScaled": "Retain"}));
        assert_eq!(s["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
        assert_eq!(s["spec"]["volumeClaimTemplates"][0]["status"]["phase"], "Pending");

        let ds = applied("apps", "DaemonSet", json!({"spec": {}}));
        assert_eq!(ds["spec"]["updateStrategy"], json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}));
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

        let rs = applied("apps", "ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);

        let rc = applied("", "ReplicationController", json!({"metadata": {}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert_eq!(rc["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(rc["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn batch_defaults() {
        let j = applied("batch", "Job", json!({"metadata": {}, "spec": {"template": {"metadata": {"labels": {"x": "y"}}, "spec": {}}}}));
        let spec = &j["spec"];
        assert_eq!((spec["completions"].clone(), spec["parallelism"].clone()), (json!(1), json!(1)));
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(j["metadata"]["labels"], json!({"x": "y"}));
        let j = applied("batch", "Job", json!({"spec": {"parallelism": 3}}));
        assert!(j["spec"].get("completions").is_none());

        let c = applied("batch", "CronJob", json!({"spec": {"schedule": "* * * * *"}}));
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["suspend"], false);
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    }

    #[test]
    fn service_defaults() {
        let s = applied("", "Service", json!({"spec": {"ports": [{"port": 80}, {"port": 81, "targetPort": "http"}]}}));
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(spec["ports"][0], json!({"port": 80, "protocol": "TCP", "targetPort": 80}));
        assert_eq!(spec["ports"][1]["targetPort"], "http");
        assert_eq!(s["status"], json!({"loadBalancer": {}}));
        let lb = applied("", "Service", json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP"}}));
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
        let en = applied("", "Service", json!({"spec": {"type": "ExternalName", "externalName": "x.example"}}));
        assert!(en["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn secret_string_data_is_merged() {
        let s = applied("", "Secret", json!({"data": {"a": "YQ=="}, "stringData": {"b": "hello"}}));
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"a": "YQ==", "b": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn misc_defaults() {
        let pvc = applied("", "PersistentVolumeClaim", json!({"spec": {}}));
        assert_eq!(pvc["spec"]["volumeMode"], "Filesystem");
        let ns = applied("", "Namespace", json!({"metadata": {"name": "n"}}));
        assert_eq!(ns["metadata"]["labels"]["kubernetes.io/metadata.name"], "n");
        let rb = applied("rbac.authorization.k8s.io", "RoleBinding", json!({"subjects": [
            {"kind": "User", "name": "u"}, {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]}));
        assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
        assert_eq!(rb["subjects"][1]["apiGroup"], "");
        let hpa = applied("autoscaling", "HorizontalPodAutoscaler", json!({"spec": {"maxReplicas": 3}}));
        assert_eq!(hpa["spec"]["minReplicas"], 1);
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
        let np = applied("networking.k8s.io", "NetworkPolicy", json!({"spec": {"egress": [{}]}}));
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let pc = applied("scheduling.k8s.io", "PriorityClass", json!({"value": 5}));
        assert_eq!(pc["preemptionPolicy"], "PreemptLowerPriority");
    }

    #[test]
    fn zero_statuses_are_filled_in() {
        let rs = applied("apps", "ReplicaSet", json!({"apiVersion": "apps/v1", "spec": {}}));
        assert_eq!(rs["status"], json!({"replicas": 0}));
        let sts = applied("apps", "StatefulSet", json!({"apiVersion": "apps/v1", "status": {"replicas": 2, "readyReplicas": 1}}));
        assert_eq!(sts["status"], json!({"replicas": 2, "readyReplicas": 1, "availableReplicas": 0}));
        let hpa = applied("autoscaling", "HorizontalPodAutoscaler", json!({"apiVersion": "autoscaling/v2", "status": null}));
        assert_eq!(hpa["status"], json!({"desiredReplicas": 0, "currentMetrics": null}));
        let hpa1 = applied("autoscaling", "HorizontalPodAutoscaler", json!({"apiVersion": "autoscaling/v1"}));
        assert_eq!(hpa1["status"], json!({"currentReplicas": 0, "desiredReplicas": 0}));
        let node = applied("", "Node", json!({"apiVersion": "v1", "status": {"nodeInfo": {"kubeletVersion": "v1.33.0"}}}));
        assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0");
        assert_eq!(node["status"]["nodeInfo"]["bootID"], "");
        assert_eq!(node["status"]["daemonEndpoints"], json!({"kubeletEndpoint": {"Port": 0}}));
        let ns = applied("", "Namespace", json!({"apiVersion": "v1", "metadata": {"name": "a"}}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
        assert_eq!(applied("apps", "Deployment", json!({"apiVersion": "apps/v1"}))["status"], json!({}));
        // Kinds without a status get none.
        assert!(applied("", "ConfigMap", json!({"apiVersion": "v1"})).get("status").is_none());
    }
}
