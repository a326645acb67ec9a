//! Per-kind printer columns and cells, following upstream's
//! `pkg/printers/internalversion/printers.go` (v1.33) plus the aggregator's APIService convertor.
//!
//! The server always prints the wide form (upstream's table convertor passes `Wide: true`);
//! clients hide the priority-1 columns themselves. Cells read the stored v1 JSON directly, with
//! the few v1-to-internal conversions upstream's printers rely on (podIP into podIPs, clusterIP
//! into clusterIPs, events.k8s.io Events seen as core Events) done here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use k8s_openapi::api;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Value, json};

use super::{AGE_DESCRIPTION, NAME_DESCRIPTION, human_duration};

/// Columns and cells of one kind.
#[derive(Clone, Copy)]
pub(super) struct Printer {
    pub columns: fn() -> Vec<Value>,
    pub cells: fn(&Value, Timestamp) -> Vec<Value>,
}

/// The printer upstream registers for a resource, `None` where it uses the default convertor.
pub(super) fn printer(group: &str, plural: &str) -> Option<Printer> {
    let p = |columns, cells| Some(Printer { columns, cells });
    match (group, plural) {
        ("", "pods") => p(pod_columns, pod_cells),
        ("", "podtemplates") => p(pod_template_columns, pod_template_cells),
        ("", "replicationcontrollers") => p(rc_columns, rc_cells),
        ("", "services") => p(service_columns, service_cells),
        ("", "endpoints") => p(endpoints_columns, endpoints_cells),
        ("", "nodes") => p(node_columns, node_cells),
        ("", "events") => p(event_columns, event_cells),
        ("events.k8s.io", "events") => p(event_columns, events_v1_cells),
        ("", "namespaces") => p(namespace_columns, namespace_cells),
        ("", "secrets") => p(secret_columns, secret_cells),
        ("", "serviceaccounts") => p(service_account_columns, service_account_cells),
        ("", "persistentvolumes") => p(pv_columns, pv_cells),
        ("", "persistentvolumeclaims") => p(pvc_columns, pvc_cells),
        ("", "configmaps") => p(config_map_columns, config_map_cells),
        ("", "resourcequotas") => p(resource_quota_columns, resource_quota_cells),
        ("apps", "deployments") => p(deployment_columns, deployment_cells),
        ("apps", "replicasets") => p(replica_set_columns, replica_set_cells),
        ("apps", "statefulsets") => p(stateful_set_columns, stateful_set_cells),
        ("apps", "daemonsets") => p(daemon_set_columns, daemon_set_cells),
        ("apps", "controllerrevisions") => p(controller_revision_columns, controller_revision_cells),
        ("batch", "jobs") => p(job_columns, job_cells),
        ("batch", "cronjobs") => p(cron_job_columns, cron_job_cells),
        ("autoscaling", "horizontalpodautoscalers") => p(hpa_columns, hpa_cells),
        ("policy", "poddisruptionbudgets") => p(pdb_columns, pdb_cells),
        ("networking.k8s.io", "ingresses") => p(ingress_columns, ingress_cells),
        ("networking.k8s.io", "ingressclasses") => p(ingress_class_columns, ingress_class_cells),
        ("networking.k8s.io", "networkpolicies") => p(network_policy_columns, network_policy_cells),
        ("networking.k8s.io", "servicecidrs") => p(service_cidr_columns, service_cidr_cells),
        ("networking.k8s.io", "ipaddresses") => p(ip_address_columns, ip_address_cells),
        ("rbac.authorization.k8s.io", "rolebindings") => p(role_binding_columns, binding_cells),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => p(cluster_role_binding_columns, binding_cells),
        ("certificates.k8s.io", "certificatesigningrequests") => p(csr_columns, csr_cells),
        ("coordination.k8s.io", "leases") => p(lease_columns, lease_cells),
        ("storage.k8s.io", "storageclasses") => p(storage_class_columns, storage_class_cells),
        ("storage.k8s.io", "csinodes") => p(csi_node_columns, csi_node_cells),
        ("storage.k8s.io", "csidrivers") => p(csi_driver_columns, csi_driver_cells),
        ("storage.k8s.io", "volumeattachments") => p(volume_attachment_columns, volume_attachment_cells),
        ("scheduling.k8s.io", "priorityclasses") => p(priority_class_columns, priority_class_cells),
        ("node.k8s.io", "runtimeclasses") => p(runtime_class_columns, runtime_class_cells),
        ("discovery.k8s.io", "endpointslices") => p(endpoint_slice_columns, endpoint_slice_cells),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations" | "validatingwebhookconfigurations") => {
            p(webhook_columns, webhook_cells)
        }
        ("admissionregistration.k8s.io", "validatingadmissionpolicies") => p(vap_columns, vap_cells),
        ("admissionregistration.k8s.io", "validatingadmissionpolicybindings") => p(vapb_columns, vapb_cells),
        ("flowcontrol.apiserver.k8s.io", "flowschemas") => p(flow_schema_columns, flow_schema_cells),
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations") => p(plc_columns, plc_cells),
        ("apiregistration.k8s.io", "apiservices") => p(api_service_columns, api_service_cells),
        _ => None,
    }
}

// ---- column helpers ----

/// The description of `field` in `T`'s schema (upstream's `SwaggerDoc()[field]`), "" if absent.
fn doc<T: JsonSchema>(field: &str) -> String {
    let schema = T::json_schema(&mut SchemaGenerator::default());
    schema.as_value()["properties"][field]["description"].as_str().unwrap_or_default().to_string()
}

fn column(name: &str, ty: &str, format: &str, priority: i32, description: impl Into<String>) -> Value {
    json!({"name": name, "type": ty, "format": format, "description": description.into(), "priority": priority})
}

fn col(name: &str, ty: &str, description: impl Into<String>) -> Value {
    column(name, ty, "", 0, description)
}

fn wide(name: &str, ty: &str, description: impl Into<String>) -> Value {
    column(name, ty, "", 1, description)
}

fn name_col() -> Value {
    column("Name", "string", "name", 0, NAME_DESCRIPTION)
}

fn age_col() -> Value {
    col("Age", "string", AGE_DESCRIPTION)
}

const CONTAINERS_DESCRIPTION: &str = "Names of each container in the template.";
const IMAGES_DESCRIPTION: &str = "Images referenced by each container in the template.";

// ---- JSON helpers ----

fn st(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_default()
}

fn arr(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

/// Entries of a JSON object or array (`len()` of a Go map or slice).
fn count(v: &Value) -> i64 {
    match v {
        Value::Object(m) => m.len() as i64,
        Value::Array(a) => a.len() as i64,
        _ => 0,
    }
}

fn name(obj: &Value) -> Value {
    obj["metadata"]["name"].clone()
}

fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|s| s.parse::<Timestamp>().ok())
}

/// Upstream's `translateTimestampSince`: human duration since `v`, "<unknown>" when unset.
fn since(v: &Value, now: Timestamp) -> String {
    match timestamp(v) {
        Some(t) => since_ts(t, now),
        None => "<unknown>".into(),
    }
}

fn since_ts(t: Timestamp, now: Timestamp) -> String {
    let ms = now.as_millisecond() - t.as_millisecond();
    human_duration(ms / 1000)
}

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(since(&obj["metadata"]["creationTimestamp"], now))
}

fn or_none(s: &str) -> String {
    if s.is_empty() { "<none>".into() } else { s.into() }
}

/// `labels.FormatLabels`: sorted `k=v` pairs, "<none>" when empty.
fn format_labels(v: &Value) -> String {
    let m: BTreeMap<&str, &str> = v.as_object().map(|m| m.iter().map(|(k, v)| (k.as_str(), st(v))).collect()).unwrap_or_default();
    let s: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    or_none(&s.join(","))
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key; `None` when the
/// selector is invalid.
fn selector_string(sel: &Value) -> Option<String> {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel["matchLabels"].as_object() {
        for (k, v) in m {
            reqs.push((k.clone(), format!("{k}={}", st(v))));
        }
    }
    for e in arr(&sel["matchExpressions"]) {
        let key = st(&e["key"]);
        let values: BTreeSet<&str> = arr(&e["values"]).iter().map(st).collect();
        let values = values.into_iter().collect::<Vec<_>>().join(",");
        let r = match st(&e["operator"]) {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        };
        reqs.push((key.to_string(), r));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(reqs.into_iter().map(|(_, r)| r).collect::<Vec<_>>().join(","))
}

/// `metav1.FormatLabelSelector`: "<none>" when empty, "<error>" when invalid.
fn format_label_selector(sel: &Value) -> String {
    match selector_string(sel) {
        Some(s) => or_none(&s),
        None => "<error>".into(),
    }
}

/// `layoutContainerCells`: comma-joined container names and images.
fn containers(pod_spec: &Value) -> (String, String) {
    let cs = arr(&pod_spec["containers"]);
    let names: Vec<&str> = cs.iter().map(|c| st(&c["name"])).collect();
    let images: Vec<&str> = cs.iter().map(|c| st(&c["image"])).collect();
    (names.join(","), images.join(","))
}

/// Joins up to `max` entries and says how many more there were (`listWithMoreString`).
fn list_with_more(list: &[String], total: usize, max: usize, unset: &str) -> String {
    let ret = list.join(",");
    if total > max {
        return format!("{ret} + {} more...", total - max);
    }
    if ret.is_empty() { unset.into() } else { ret }
}

fn bool_ptr(v: &Value) -> String {
    match v.as_bool() {
        Some(true) => "True".into(),
        Some(false) => "False".into(),
        None => "<unset>".into(),
    }
}

// ---- pods ----

fn pod_columns() -> Vec<Value> {
    use api::core::v1::{PodSpec, PodStatus};
    vec![
        name_col(),
        col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
        col("Status", "string", "The aggregate status of the containers in this pod."),
        col(
            "Restarts",
            "string",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
        ),
        age_col(),
        wide("IP", "string", doc::<PodStatus>("podIP")),
        wide("Node", "string", doc::<PodSpec>("nodeName")),
        wide("Nominated Node", "string", doc::<PodStatus>("nominatedNodeName")),
        wide("Readiness Gates", "string", doc::<PodSpec>("readinessGates")),
    ]
}

fn has_condition(conditions: &Value, ty: &str) -> bool {
    arr(conditions).iter().any(|c| st(&c["type"]) == ty && st(&c["status"]) == "True")
}

/// The later of `cur` and the `finishedAt` of a container's last termination.
fn later_termination(cur: Option<Timestamp>, status: &Value) -> Option<Timestamp> {
    let t = &status["lastState"]["terminated"];
    if !t.is_object() {
        return cur;
    }
    match (cur, timestamp(&t["finishedAt"])) {
        (Some(c), Some(f)) => Some(c.max(f)),
        (c, f) => c.or(f),
    }
}

/// Reason of a terminated state without one: "Signal:N" or "ExitCode:N".
fn exit_reason(terminated: &Value) -> String {
    let signal = int(&terminated["signal"]);
    if signal != 0 { format!("Signal:{signal}") } else { format!("ExitCode:{}", int(&terminated["exitCode"])) }
}

/// READY, STATUS and RESTARTS of a pod, computed as upstream's `printPod`.
pub(super) fn pod_status(pod: &Value, now: Timestamp) -> (String, String, String) {
    let spec = &pod["spec"];
    let status = &pod["status"];
    let mut restarts = 0;
    let mut restartable_restarts = 0;
    let mut total = arr(&spec["containers"]).len();
    let mut ready = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable: Option<Timestamp> = None;
    let phase = st(&status["phase"]);
    let mut reason = if st(&status["reason"]).is_empty() { phase.to_string() } else { st(&status["reason"]).to_string() };
    if arr(&status["conditions"]).iter().any(|c| st(&c["type"]) == "PodScheduled" && st(&c["reason"]) == "SchedulingGated") {
        reason = "SchedulingGated".into();
    }
    let init_specs = arr(&spec["initContainers"]);
    let restartable: BTreeSet<&str> =
        init_specs.iter().filter(|c| st(&c["restartPolicy"]) == "Always").map(|c| st(&c["name"])).collect();
    total += restartable.len();

    let mut initializing = false;
    for (i, cs) in arr(&status["initContainerStatuses"]).iter().enumerate() {
        restarts += int(&cs["restartCount"]);
        last_restart = later_termination(last_restart, cs);
        let is_restartable = restartable.contains(st(&cs["name"]));
        if is_restartable {
            restartable_restarts += int(&cs["restartCount"]);
            last_restartable = later_termination(last_restartable, cs);
        }
        let terminated = &cs["state"]["terminated"];
        let waiting = &cs["state"]["waiting"];
        if terminated.is_object() && int(&terminated["exitCode"]) == 0 {
            continue;
        }
        if is_restartable && cs["started"].as_bool() == Some(true) {
            if cs["ready"].as_bool() == Some(true) {
                ready += 1;
            }
            continue;
        }
        if terminated.is_object() {
            reason = match st(&terminated["reason"]) {
                "" => format!("Init:{}", exit_reason(terminated)),
                r => format!("Init:{r}"),
            };
        } else if waiting.is_object() && !st(&waiting["reason"]).is_empty() && st(&waiting["reason"]) != "PodInitializing" {
            reason = format!("Init:{}", st(&waiting["reason"]));
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || has_condition(&status["conditions"], "Initialized") {
        restarts = restartable_restarts;
        last_restart = last_restartable;
        let mut has_running = false;
        for cs in arr(&status["containerStatuses"]).iter().rev() {
            restarts += int(&cs["restartCount"]);
            last_restart = later_termination(last_restart, cs);
            let waiting = &cs["state"]["waiting"];
            let terminated = &cs["state"]["terminated"];
            if waiting.is_object() && !st(&waiting["reason"]).is_empty() {
                reason = st(&waiting["reason"]).into();
            } else if terminated.is_object() && !st(&terminated["reason"]).is_empty() {
                reason = st(&terminated["reason"]).into();
            } else if terminated.is_object() {
                reason = exit_reason(terminated);
            } else if cs["ready"].as_bool() == Some(true) && cs["state"]["running"].is_object() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if has_condition(&status["conditions"], "Ready") { "Running".into() } else { "NotReady".into() };
        }
    }

    let deleting = !pod["metadata"]["deletionTimestamp"].is_null();
    if deleting && st(&status["reason"]) == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting && phase != "Failed" && phase != "Succeeded" {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since_ts(t, now)),
        _ => restarts.to_string(),
    };
    (format!("{ready}/{total}"), reason, restarts_str)
}

fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let (ready, reason, restarts) = pod_status(pod, now);
    let status = &pod["status"];
    let mut ip = st(&status["podIPs"][0]["ip"]);
    if ip.is_empty() {
        ip = st(&status["podIP"]);
    }
    let gates = arr(&pod["spec"]["readinessGates"]);
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(&status["conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions.iter().find(|c| c["type"] == g["conditionType"]).is_some_and(|c| st(&c["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        name(pod),
        json!(ready),
        json!(reason),
        json!(restarts),
        age(pod, now),
        json!(or_none(ip)),
        json!(or_none(st(&pod["spec"]["nodeName"]))),
        json!(or_none(st(&status["nominatedNodeName"]))),
        json!(readiness),
    ]
}

/// Row conditions of a finished pod (upstream's `podSuccessConditions`/`podFailedConditions`).
pub(super) fn row_conditions(group: &str, plural: &str, obj: &Value) -> Option<Value> {
    if !(group.is_empty() && plural == "pods") {
        return None;
    }
    match st(&obj["status"]["phase"]) {
        "Succeeded" => Some(json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])),
        "Failed" => Some(json!([{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}])),
        _ => None,
    }
}

fn pod_template_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Containers", "string", CONTAINERS_DESCRIPTION),
        col("Images", "string", IMAGES_DESCRIPTION),
        col("Pod Labels", "string", "The labels for the pod template."),
    ]
}

fn pod_template_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(&obj["template"]["spec"]);
    vec![name(obj), json!(names), json!(images), json!(format_labels(&obj["template"]["metadata"]["labels"]))]
}

// ---- workloads ----

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn replicas(spec: &Value) -> i64 {
    spec["replicas"].as_i64().unwrap_or(1)
}

fn rc_columns() -> Vec<Value> {
    use api::core::v1::{ReplicationControllerSpec as S, ReplicationControllerStatus as St};
    vec![
        name_col(),
        col("Desired", "integer", doc::<S>("replicas")),
        col("Current", "integer", doc::<St>("replicas")),
        col("Ready", "integer", doc::<St>("readyReplicas")),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<S>("selector")),
    ]
}

fn rc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    vec![
        name(obj),
        json!(replicas(&obj["spec"])),
        json!(int(&obj["status"]["replicas"])),
        json!(int(&obj["status"]["readyReplicas"])),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_labels(&obj["spec"]["selector"])),
    ]
}

fn replica_set_columns() -> Vec<Value> {
    use api::apps::v1::{ReplicaSetSpec as S, ReplicaSetStatus as St};
    vec![
        name_col(),
        col("Desired", "integer", doc::<S>("replicas")),
        col("Current", "integer", doc::<St>("replicas")),
        col("Ready", "integer", doc::<St>("readyReplicas")),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<S>("selector")),
    ]
}

fn replica_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    vec![
        name(obj),
        json!(replicas(&obj["spec"])),
        json!(int(&obj["status"]["replicas"])),
        json!(int(&obj["status"]["readyReplicas"])),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(&obj["spec"]["selector"])),
    ]
}

fn deployment_columns() -> Vec<Value> {
    use api::apps::v1::{DeploymentSpec as S, DeploymentStatus as St};
    vec![
        name_col(),
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", doc::<St>("updatedReplicas")),
        col("Available", "string", doc::<St>("availableReplicas")),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<S>("selector")),
    ]
}

fn deployment_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let (names, images) = containers(&spec["template"]["spec"]);
    let selector = selector_string(&spec["selector"]).unwrap_or_else(|| "<invalid>".into());
    vec![
        name(obj),
        json!(format!("{}/{}", int(&status["readyReplicas"]), replicas(spec))),
        json!(int(&status["updatedReplicas"])),
        json!(int(&status["availableReplicas"])),
        age(obj, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

fn stateful_set_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Ready", "string", "Number of the pod with ready state"),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
    ]
}

fn stateful_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (names, images) = containers(&obj["spec"]["template"]["spec"]);
    vec![
        name(obj),
        json!(format!("{}/{}", int(&obj["status"]["readyReplicas"]), replicas(&obj["spec"]))),
        age(obj, now),
        json!(names),
        json!(images),
    ]
}

fn daemon_set_columns() -> Vec<Value> {
    use api::apps::v1::{DaemonSetSpec as S, DaemonSetStatus as St};
    use api::core::v1::PodSpec;
    vec![
        name_col(),
        col("Desired", "integer", doc::<St>("desiredNumberScheduled")),
        col("Current", "integer", doc::<St>("currentNumberScheduled")),
        col("Ready", "integer", doc::<St>("numberReady")),
        col("Up-to-date", "integer", doc::<St>("updatedNumberScheduled")),
        col("Available", "integer", doc::<St>("numberAvailable")),
        col("Node Selector", "string", doc::<PodSpec>("nodeSelector")),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<S>("selector")),
    ]
}

fn daemon_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let status = &obj["status"];
    let pod_spec = &obj["spec"]["template"]["spec"];
    let (names, images) = containers(pod_spec);
    vec![
        name(obj),
        json!(int(&status["desiredNumberScheduled"])),
        json!(int(&status["currentNumberScheduled"])),
        json!(int(&status["numberReady"])),
        json!(int(&status["updatedNumberScheduled"])),
        json!(int(&status["numberAvailable"])),
        json!(format_labels(&pod_spec["nodeSelector"])),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(&obj["spec"]["selector"])),
    ]
}

fn controller_revision_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", doc::<api::apps::v1::ControllerRevision>("revision")),
        age_col(),
    ]
}

fn controller_revision_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let owner = arr(&obj["metadata"]["ownerReferences"]).iter().find(|o| o["controller"].as_bool() == Some(true));
    let controller = match owner {
        Some(o) => {
            let group = st(&o["apiVersion"]).rsplit_once('/').map(|(g, _)| g).unwrap_or_default();
            let kind = st(&o["kind"]);
            let gk = if group.is_empty() { kind.to_string() } else { format!("{kind}.{group}") };
            if gk.is_empty() { st(&o["name"]).to_string() } else { format!("{}/{}", gk.to_lowercase(), st(&o["name"])) }
        }
        None => "<none>".into(),
    };
    vec![name(obj), json!(controller), json!(int(&obj["revision"])), age(obj, now)]
}

fn job_columns() -> Vec<Value> {
    use api::batch::v1::{JobSpec, JobStatus};
    vec![
        name_col(),
        col("Status", "string", "Status of the job."),
        col("Completions", "string", doc::<JobStatus>("succeeded")),
        col("Duration", "string", "Time required to complete the job."),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<JobSpec>("selector")),
    ]
}

/// Whether the condition of type `ty` (the first one) is True (`hasJobCondition`).
fn first_condition_true(conditions: &Value, ty: &str) -> bool {
    arr(conditions).iter().find(|c| st(&c["type"]) == ty).is_some_and(|c| st(&c["status"]) == "True")
}

fn job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let succeeded = int(&status["succeeded"]);
    let completions = match spec["completions"].as_i64() {
        Some(c) => format!("{succeeded}/{c}"),
        None => match spec["parallelism"].as_i64().unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (timestamp(&status["startTime"]), timestamp(&status["completionTime"])) {
        (None, _) => String::new(),
        (Some(s), None) => since_ts(s, now),
        (Some(s), Some(c)) => since_ts(s, c),
    };
    let conditions = &status["conditions"];
    let state = if first_condition_true(conditions, "Complete") {
        "Complete"
    } else if first_condition_true(conditions, "Failed") {
        "Failed"
    } else if !obj["metadata"]["deletionTimestamp"].is_null() {
        "Terminating"
    } else if first_condition_true(conditions, "Suspended") {
        "Suspended"
    } else if first_condition_true(conditions, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = containers(&spec["template"]["spec"]);
    vec![
        name(obj),
        json!(state),
        json!(completions),
        json!(duration),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(&spec["selector"])),
    ]
}

fn cron_job_columns() -> Vec<Value> {
    use api::batch::v1::{CronJobSpec, CronJobStatus, JobSpec};
    vec![
        name_col(),
        col("Schedule", "string", doc::<CronJobSpec>("schedule")),
        col("Timezone", "string", doc::<CronJobSpec>("timeZone")),
        col("Suspend", "boolean", doc::<CronJobSpec>("suspend")),
        col("Active", "integer", doc::<CronJobStatus>("active")),
        col("Last Schedule", "string", doc::<CronJobStatus>("lastScheduleTime")),
        age_col(),
        wide("Containers", "string", CONTAINERS_DESCRIPTION),
        wide("Images", "string", IMAGES_DESCRIPTION),
        wide("Selector", "string", doc::<JobSpec>("selector")),
    ]
}

fn cron_job_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let last = if status["lastScheduleTime"].is_null() { "<none>".into() } else { since(&status["lastScheduleTime"], now) };
    let job_spec = &spec["jobTemplate"]["spec"];
    let (names, images) = containers(&job_spec["template"]["spec"]);
    vec![
        name(obj),
        json!(st(&spec["schedule"])),
        json!(spec["timeZone"].as_str().unwrap_or("<none>")),
        json!(bool_ptr(&spec["suspend"])),
        json!(count(&status["active"])),
        json!(last),
        age(obj, now),
        json!(names),
        json!(images),
        json!(format_label_selector(&job_spec["selector"])),
    ]
}

fn hpa_columns() -> Vec<Value> {
    use api::autoscaling::v2::{HorizontalPodAutoscalerSpec as S, HorizontalPodAutoscalerStatus as St};
    vec![
        name_col(),
        col("Reference", "string", doc::<S>("scaleTargetRef")),
        col("Targets", "string", doc::<S>("metrics")),
        col("MinPods", "string", doc::<S>("minReplicas")),
        col("MaxPods", "string", doc::<S>("maxReplicas")),
        col("Replicas", "string", doc::<St>("currentReplicas")),
        age_col(),
    ]
}

/// One HPA metric as `current/target` (`formatHPAMetrics`).
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    let quantity = |v: &Value| v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
    let with_avg = |source: &str| {
        let target = &spec[source]["target"];
        let current = status.map(|s| &s[source]).filter(|c| c.is_object());
        if !target["averageValue"].is_null() {
            let cur = current
                .map(|c| &c["current"]["averageValue"])
                .filter(|v| !v.is_null())
                .map(quantity)
                .unwrap_or_else(unknown);
            format!("{cur}/{} (avg)", quantity(&target["averageValue"]))
        } else {
            let cur = current.map(|c| quantity(&c["current"]["value"])).unwrap_or_else(unknown);
            format!("{cur}/{}", quantity(&target["value"]))
        }
    };
    let resource = |source: &str| {
        let s = &spec[source];
        let target = &s["target"];
        let current = status.map(|st| &st[source]).filter(|c| c.is_object());
        if !target["averageValue"].is_null() {
            let cur = current.map(|c| quantity(&c["current"]["averageValue"])).unwrap_or_else(unknown);
            format!("{}: {cur}/{}", st(&s["name"]), quantity(&target["averageValue"]))
        } else {
            let cur = current
                .and_then(|c| c["current"]["averageUtilization"].as_i64())
                .map(|u| format!("{u}%"))
                .unwrap_or_else(unknown);
            let tgt = target["averageUtilization"].as_i64().map(|u| format!("{u}%")).unwrap_or_else(|| "<auto>".into());
            format!("{}: {cur}/{tgt}", st(&s["name"]))
        }
    };
    match st(&spec["type"]) {
        "External" => with_avg("external"),
        "Object" => with_avg("object"),
        "Pods" => {
            let cur = status
                .map(|s| &s["pods"])
                .filter(|c| c.is_object())
                .map(|c| quantity(&c["current"]["averageValue"]))
                .unwrap_or_else(unknown);
            format!("{cur}/{}", quantity(&spec["pods"]["target"]["averageValue"]))
        }
        "Resource" => resource("resource"),
        "ContainerResource" => resource("containerResource"),
        _ => "<unknown type>".into(),
    }
}

fn hpa_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let list: Vec<String> = specs.iter().enumerate().map(|(i, s)| hpa_metric(s, statuses.get(i))).collect();
    const MAX: usize = 2;
    if list.len() > MAX {
        return format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX);
    }
    list.join(", ")
}

fn hpa_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    // Both served versions print alike, from the v2 form.
    let v2 = crate::resources::convert_hpa(obj.clone(), "v2");
    let obj = &v2;
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let reference = format!("{}/{}", st(&spec["scaleTargetRef"]["kind"]), st(&spec["scaleTargetRef"]["name"]));
    let min = spec["minReplicas"].as_i64().map(|m| m.to_string()).unwrap_or_else(|| "<unset>".into());
    vec![
        name(obj),
        json!(reference),
        json!(hpa_metrics(arr(&spec["metrics"]), arr(&status["currentMetrics"]))),
        json!(min),
        json!(int(&spec["maxReplicas"])),
        json!(int(&status["currentReplicas"])),
        age(obj, now),
    ]
}

fn pdb_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Min Available", "string", "The minimum number of pods that must be available."),
        col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
        col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
        age_col(),
    ]
}

/// An IntOrString as Go's `String()` prints it, "N/A" when unset.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => "N/A".into(),
    }
}

fn pdb_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(int_or_string(&obj["spec"]["minAvailable"])),
        json!(int_or_string(&obj["spec"]["maxUnavailable"])),
        json!(int(&obj["status"]["disruptionsAllowed"])),
        age(obj, now),
    ]
}

// ---- services and networking ----

fn service_columns() -> Vec<Value> {
    use api::core::v1::ServiceSpec as S;
    vec![
        name_col(),
        col("Type", "string", doc::<S>("type")),
        col("Cluster-IP", "string", doc::<S>("clusterIP")),
        col("External-IP", "string", doc::<S>("externalIPs")),
        col("Port(s)", "string", doc::<S>("ports")),
        age_col(),
        wide("Selector", "string", doc::<S>("selector")),
    ]
}

/// Load-balancer ingress points, sorted and de-duplicated (`loadBalancerStatusStringer`, wide).
fn load_balancer_ingress(status: &Value) -> Vec<String> {
    let set: BTreeSet<&str> = arr(&status["ingress"])
        .iter()
        .filter_map(|i| [st(&i["ip"]), st(&i["hostname"])].into_iter().find(|s| !s.is_empty()))
        .collect();
    set.into_iter().map(String::from).collect()
}

/// The EXTERNAL-IP cell of a service (`getServiceExternalIP`, wide).
pub(super) fn service_external_ip(svc: &Value) -> String {
    let spec = &svc["spec"];
    let external: Vec<&str> = arr(&spec["externalIPs"]).iter().map(st).collect();
    match st(&spec["type"]) {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() { "<none>".into() } else { external.join(",") }
        }
        "LoadBalancer" => {
            let mut all = load_balancer_ingress(&svc["status"]["loadBalancer"]);
            if all.is_empty() && external.is_empty() {
                return "<pending>".into();
            }
            all.extend(external.iter().map(|s| s.to_string()));
            all.join(",")
        }
        "ExternalName" => st(&spec["externalName"]).into(),
        _ => "<unknown>".into(),
    }
}

/// The PORT(S) cell: `port/proto` or `port:nodePort/proto`, comma-joined (`makePortString`).
pub(super) fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr(&svc["spec"]["ports"])
        .iter()
        .map(|p| {
            // Defaulting sets TCP; read an undefaulted port the same way.
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match int(&p["nodePort"]) {
                n if n > 0 => format!("{}:{n}/{proto}", int(&p["port"])),
                _ => format!("{}/{proto}", int(&p["port"])),
            }
        })
        .collect();
    or_none(&pieces.join(","))
}

fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &svc["spec"];
    let mut cluster_ip = st(&spec["clusterIPs"][0]);
    if cluster_ip.is_empty() {
        cluster_ip = st(&spec["clusterIP"]);
    }
    vec![
        name(svc),
        json!(st(&spec["type"])),
        json!(or_none(cluster_ip)),
        json!(service_external_ip(svc)),
        json!(service_ports(svc)),
        age(svc, now),
        json!(format_labels(&spec["selector"])),
    ]
}

fn endpoints_columns() -> Vec<Value> {
    vec![name_col(), col("Endpoints", "string", doc::<api::core::v1::Endpoints>("subsets")), age_col()]
}

/// `host:port` with IPv6 hosts bracketed (`net.JoinHostPort`).
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// The ENDPOINTS cell (`formatEndpoints` with all ports).
pub(super) fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(&ep["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut total = 0;
    for ss in subsets {
        let addresses = arr(&ss["addresses"]);
        let ports = arr(&ss["ports"]);
        if ports.is_empty() {
            total += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(st(&a["ip"]).to_string());
            }
            continue;
        }
        for p in ports {
            total += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(st(&a["ip"]), int(&p["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more { format!("{ret} + {} more...", total - MAX) } else { ret }
}

fn endpoints_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(format_endpoints(obj)), age(obj, now)]
}

fn endpoint_slice_columns() -> Vec<Value> {
    use api::discovery::v1::EndpointSlice as E;
    vec![
        name_col(),
        col("AddressType", "string", doc::<E>("addressType")),
        col("Ports", "string", doc::<E>("ports")),
        col("Endpoints", "string", doc::<E>("endpoints")),
        age_col(),
    ]
}

fn endpoint_slice_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    const MAX: usize = 3;
    let ports = arr(&obj["ports"]);
    let port_list: Vec<String> = ports
        .iter()
        .take(MAX)
        .map(|p| match (p["port"].as_i64(), p["name"].as_str()) {
            (Some(n), _) => n.to_string(),
            (None, Some(name)) => name.to_string(),
            _ => "*".into(),
        })
        .collect();
    let addresses: Vec<String> =
        arr(&obj["endpoints"]).iter().flat_map(|e| arr(&e["addresses"]).iter().map(|a| st(a).to_string())).collect();
    let shown: Vec<String> = addresses.iter().take(MAX).cloned().collect();
    vec![
        name(obj),
        json!(st(&obj["addressType"])),
        json!(list_with_more(&port_list, ports.len(), MAX, "<unset>")),
        json!(list_with_more(&shown, addresses.len(), MAX, "<unset>")),
        age(obj, now),
    ]
}

fn ingress_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
        col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
        col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
        col("Ports", "string", "Ports of TLS configurations that open"),
        age_col(),
    ]
}

fn ingress_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let rules = arr(&spec["rules"]);
    const MAX: usize = 3;
    let hosts: Vec<&str> = rules.iter().take(MAX).map(|r| st(&r["host"])).filter(|h| !h.is_empty()).collect();
    let hosts = if hosts.is_empty() {
        "*".to_string()
    } else if rules.len() > MAX {
        format!("{} + {} more...", hosts.join(","), rules.len() - MAX)
    } else {
        hosts.join(",")
    };
    let ports = if arr(&spec["tls"]).is_empty() { "80" } else { "80, 443" };
    vec![
        name(obj),
        json!(spec["ingressClassName"].as_str().unwrap_or("<none>")),
        json!(hosts),
        json!(load_balancer_ingress(&obj["status"]["loadBalancer"]).join(",")),
        json!(ports),
        age(obj, now),
    ]
}

fn ingress_class_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Controller", "string", "Controller that is responsible for handling this class"),
        col("Parameters", "string", "A reference to a resource with additional parameters"),
        age_col(),
    ]
}

fn ingress_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let p = &obj["spec"]["parameters"];
    let parameters = if p.is_object() {
        let mut s = st(&p["kind"]).to_string();
        if let Some(g) = p["apiGroup"].as_str() {
            s = format!("{s}.{g}");
        }
        format!("{s}/{}", st(&p["name"]))
    } else {
        "<none>".into()
    };
    vec![name(obj), json!(st(&obj["spec"]["controller"])), json!(parameters), age(obj, now)]
}

fn network_policy_columns() -> Vec<Value> {
    vec![name_col(), col("Pod-Selector", "string", doc::<api::networking::v1::NetworkPolicySpec>("podSelector")), age_col()]
}

fn network_policy_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(format_label_selector(&obj["spec"]["podSelector"])), age(obj, now)]
}

fn service_cidr_columns() -> Vec<Value> {
    vec![name_col(), col("CIDRs", "string", doc::<api::networking::v1::ServiceCIDRSpec>("cidrs")), age_col()]
}

fn service_cidr_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let cidrs: Vec<&str> = arr(&obj["spec"]["cidrs"]).iter().map(st).collect();
    vec![name(obj), json!(cidrs.join(",")), age(obj, now)]
}

/// Upstream defines two columns but prints three cells (clients drop the extra one).
fn ip_address_columns() -> Vec<Value> {
    vec![name_col(), col("ParentRef", "string", doc::<api::networking::v1::IPAddressSpec>("parentRef"))]
}

fn ip_address_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let p = &obj["spec"]["parentRef"];
    let parent = if p.is_object() {
        let (group, resource) = (st(&p["group"]), st(&p["resource"]));
        let mut s = if group.is_empty() { resource.to_string() } else { format!("{resource}.{group}") }.to_lowercase();
        if !st(&p["namespace"]).is_empty() {
            s = format!("{s}/{}", st(&p["namespace"]));
        }
        format!("{s}/{}", st(&p["name"]))
    } else {
        "<none>".into()
    };
    vec![name(obj), json!(parent), age(obj, now)]
}

// ---- nodes ----

fn node_columns() -> Vec<Value> {
    use api::core::v1::{NodeStatus, NodeSystemInfo as I};
    vec![
        name_col(),
        col("Status", "string", "The status of the node"),
        col("Roles", "string", "The roles of the node"),
        age_col(),
        col("Version", "string", doc::<I>("kubeletVersion")),
        wide("Internal-IP", "string", doc::<NodeStatus>("addresses")),
        wide("External-IP", "string", doc::<NodeStatus>("addresses")),
        wide("OS-Image", "string", doc::<I>("osImage")),
        wide("Kernel-Version", "string", doc::<I>("kernelVersion")),
        wide("Container-Runtime", "string", doc::<I>("containerRuntimeVersion")),
    ]
}

/// The STATUS cell: Ready/NotReady/Unknown, plus SchedulingDisabled when cordoned.
pub(super) fn node_status(node: &Value) -> String {
    let mut status: Vec<String> = Vec::new();
    // Upstream keeps the last Ready condition when several are listed.
    if let Some(c) = arr(&node["status"]["conditions"]).iter().rev().find(|c| st(&c["type"]) == "Ready") {
        status.push(if st(&c["status"]) == "True" { "Ready".into() } else { "NotReady".into() });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if node["spec"]["unschedulable"].as_bool() == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    status.join(",")
}

/// The ROLES cell from `node-role.kubernetes.io/<role>` labels and `kubernetes.io/role`.
pub(super) fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    if let Some(labels) = node["metadata"]["labels"].as_object() {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" && !st(v).is_empty() {
                roles.insert(st(v).to_string());
            }
        }
    }
    or_none(&roles.into_iter().collect::<Vec<_>>().join(","))
}

fn node_address(node: &Value, ty: &str) -> String {
    let a = arr(&node["status"]["addresses"]).iter().find(|a| st(&a["type"]) == ty);
    a.map(|a| st(&a["address"]).to_string()).unwrap_or_else(|| "<none>".into())
}

fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let info = &node["status"]["nodeInfo"];
    let unknown = |v: &Value| if st(v).is_empty() { "<unknown>".to_string() } else { st(v).to_string() };
    vec![
        name(node),
        json!(node_status(node)),
        json!(node_roles(node)),
        age(node, now),
        json!(st(&info["kubeletVersion"])),
        json!(node_address(node, "InternalIP")),
        json!(node_address(node, "ExternalIP")),
        json!(unknown(&info["osImage"])),
        json!(unknown(&info["kernelVersion"])),
        json!(unknown(&info["containerRuntimeVersion"])),
    ]
}

// ---- events ----

fn event_columns() -> Vec<Value> {
    use api::core::v1::{Event as E, ObjectReference};
    vec![
        col("Last Seen", "string", doc::<E>("lastTimestamp")),
        col("Type", "string", doc::<E>("type")),
        col("Reason", "string", doc::<E>("reason")),
        col("Object", "string", doc::<E>("involvedObject")),
        wide("Subobject", "string", doc::<ObjectReference>("fieldPath")),
        wide("Source", "string", doc::<E>("source")),
        col("Message", "string", doc::<E>("message")),
        wide("First Seen", "string", doc::<E>("firstTimestamp")),
        wide("Count", "string", doc::<E>("count")),
        column("Name", "string", "name", 1, NAME_DESCRIPTION),
    ]
}

fn event_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let first = match timestamp(&ev["firstTimestamp"]) {
        Some(t) => since_ts(t, now),
        None => since(&ev["eventTime"], now),
    };
    let mut last = match timestamp(&ev["lastTimestamp"]) {
        Some(t) => since_ts(t, now),
        None => first.clone(),
    };
    let mut count = int(&ev["count"]);
    if ev["series"].is_object() {
        last = since(&ev["series"]["lastObservedTime"], now);
        count = int(&ev["series"]["count"]);
    } else if count == 0 {
        count = 1;
    }
    let involved = &ev["involvedObject"];
    let kind = st(&involved["kind"]).to_lowercase();
    let target = if st(&involved["name"]).is_empty() { kind } else { format!("{kind}/{}", st(&involved["name"])) };
    let first_non_empty = |a: &str, b: &str| if a.is_empty() { b.to_string() } else { a.to_string() };
    let component = first_non_empty(st(&ev["source"]["component"]), st(&ev["reportingComponent"]));
    let instance = first_non_empty(st(&ev["source"]["host"]), st(&ev["reportingInstance"]));
    let source = if instance.is_empty() { component } else { format!("{component}, {instance}") };
    vec![
        json!(last),
        json!(st(&ev["type"])),
        json!(st(&ev["reason"])),
        json!(target),
        json!(st(&involved["fieldPath"])),
        json!(source),
        json!(st(&ev["message"]).trim()),
        json!(first),
        json!(count),
        name(ev),
    ]
}

/// An events.k8s.io/v1 Event in core/v1 shape (the conversion upstream's printer sees).
fn events_v1_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let core = json!({
        "metadata": ev["metadata"],
        "involvedObject": ev["regarding"],
        "message": ev["note"],
        "reason": ev["reason"],
        "type": ev["type"],
        "source": ev["deprecatedSource"],
        "firstTimestamp": ev["deprecatedFirstTimestamp"],
        "lastTimestamp": ev["deprecatedLastTimestamp"],
        "count": ev["deprecatedCount"],
        "eventTime": ev["eventTime"],
        "series": ev["series"],
        "reportingComponent": ev["reportingController"],
        "reportingInstance": ev["reportingInstance"],
    });
    event_cells(&core, now)
}

// ---- simple core kinds ----

fn namespace_columns() -> Vec<Value> {
    vec![name_col(), col("Status", "string", "The status of the namespace"), age_col()]
}

fn namespace_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(st(&obj["status"]["phase"])), age(obj, now)]
}

fn secret_columns() -> Vec<Value> {
    use api::core::v1::Secret;
    vec![name_col(), col("Type", "string", doc::<Secret>("type")), col("Data", "string", doc::<Secret>("data")), age_col()]
}

fn secret_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(st(&obj["type"])), json!(count(&obj["data"])), age(obj, now)]
}

fn service_account_columns() -> Vec<Value> {
    vec![name_col(), col("Secrets", "string", doc::<api::core::v1::ServiceAccount>("secrets")), age_col()]
}

fn service_account_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(count(&obj["secrets"])), age(obj, now)]
}

fn config_map_columns() -> Vec<Value> {
    vec![name_col(), col("Data", "string", doc::<api::core::v1::ConfigMap>("data")), age_col()]
}

fn config_map_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(count(&obj["data"]) + count(&obj["binaryData"])), age(obj, now)]
}

fn resource_quota_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
        col(
            "Limit",
            "string",
            "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
        ),
        age_col(),
    ]
}

fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => "0".into(),
    }
}

fn resource_quota_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let hard: BTreeMap<&String, &Value> = obj["status"]["hard"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (resource, h) in hard {
        let entry = format!("{resource}: {}/{}", quantity(&obj["status"]["used"][resource.as_str()]), quantity(h));
        let pieces: Vec<&str> = resource.split('.').collect();
        if pieces.len() > 1 && pieces[0] == "limits" { limits.push(entry) } else { requests.push(entry) }
    }
    vec![name(obj), json!(requests.join(", ")), json!(limits.join(", ")), age(obj, now)]
}

// ---- storage ----

/// Access modes as RWO/ROX/RWX/RWOP (`GetAccessModesAsString`).
fn access_modes(modes: &Value) -> String {
    let modes: Vec<&str> = arr(modes).iter().map(st).collect();
    let mut out = Vec::new();
    for (mode, short) in
        [("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP")]
    {
        if modes.contains(&mode) {
            out.push(short);
        }
    }
    out.join(",")
}

const STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

fn pv_columns() -> Vec<Value> {
    use api::core::v1::{PersistentVolumeSpec as S, PersistentVolumeStatus as St};
    vec![
        name_col(),
        col("Capacity", "string", doc::<S>("capacity")),
        col("Access Modes", "string", doc::<S>("accessModes")),
        col("Reclaim Policy", "string", doc::<S>("persistentVolumeReclaimPolicy")),
        col("Status", "string", doc::<St>("phase")),
        col("Claim", "string", doc::<S>("claimRef")),
        col("StorageClass", "string", "StorageClass of the pv"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
        col("Reason", "string", doc::<St>("reason")),
        age_col(),
        wide("VolumeMode", "string", doc::<S>("volumeMode")),
    ]
}

fn pv_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let claim = &spec["claimRef"];
    let claim = if claim.is_object() { format!("{}/{}", st(&claim["namespace"]), st(&claim["name"])) } else { String::new() };
    let phase = if obj["metadata"]["deletionTimestamp"].is_null() { st(&obj["status"]["phase"]) } else { "Terminating" };
    let class = obj["metadata"]["annotations"][STORAGE_CLASS_ANNOTATION].as_str().unwrap_or(st(&spec["storageClassName"]));
    vec![
        name(obj),
        json!(quantity(&spec["capacity"]["storage"])),
        json!(access_modes(&spec["accessModes"])),
        json!(st(&spec["persistentVolumeReclaimPolicy"])),
        json!(phase),
        json!(claim),
        json!(class),
        json!(spec["volumeAttributesClassName"].as_str().unwrap_or("<unset>")),
        json!(st(&obj["status"]["reason"])),
        age(obj, now),
        json!(spec["volumeMode"].as_str().unwrap_or("<unset>")),
    ]
}

fn pvc_columns() -> Vec<Value> {
    use api::core::v1::{PersistentVolumeClaimSpec as S, PersistentVolumeClaimStatus as St};
    vec![
        name_col(),
        col("Status", "string", doc::<St>("phase")),
        col("Volume", "string", doc::<S>("volumeName")),
        col("Capacity", "string", doc::<St>("capacity")),
        col("Access Modes", "string", doc::<St>("accessModes")),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
        age_col(),
        wide("VolumeMode", "string", doc::<S>("volumeMode")),
    ]
}

fn pvc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (spec, status) = (&obj["spec"], &obj["status"]);
    let phase = if obj["metadata"]["deletionTimestamp"].is_null() { st(&status["phase"]) } else { "Terminating" };
    let bound = !st(&spec["volumeName"]).is_empty();
    let (capacity, modes) =
        if bound { (quantity(&status["capacity"]["storage"]), access_modes(&status["accessModes"])) } else { Default::default() };
    let class = obj["metadata"]["annotations"][STORAGE_CLASS_ANNOTATION].as_str().unwrap_or(st(&spec["storageClassName"]));
    vec![
        name(obj),
        json!(phase),
        json!(st(&spec["volumeName"])),
        json!(capacity),
        json!(modes),
        json!(class),
        json!(spec["volumeAttributesClassName"].as_str().unwrap_or("<unset>")),
        age(obj, now),
        json!(spec["volumeMode"].as_str().unwrap_or("<unset>")),
    ]
}

fn storage_class_columns() -> Vec<Value> {
    use api::storage::v1::StorageClass as S;
    vec![
        name_col(),
        col("Provisioner", "string", doc::<S>("provisioner")),
        col("ReclaimPolicy", "string", doc::<S>("reclaimPolicy")),
        col("VolumeBindingMode", "string", doc::<S>("volumeBindingMode")),
        col("AllowVolumeExpansion", "string", doc::<S>("allowVolumeExpansion")),
        age_col(),
    ]
}

fn storage_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let ann = &obj["metadata"]["annotations"];
    let is_default = st(&ann["storageclass.kubernetes.io/is-default-class"]) == "true"
        || st(&ann["storageclass.beta.kubernetes.io/is-default-class"]) == "true";
    let mut n = st(&obj["metadata"]["name"]).to_string();
    if is_default {
        n.push_str(" (default)");
    }
    vec![
        json!(n),
        json!(st(&obj["provisioner"])),
        json!(obj["reclaimPolicy"].as_str().unwrap_or("Delete")),
        json!(obj["volumeBindingMode"].as_str().unwrap_or("Immediate")),
        json!(obj["allowVolumeExpansion"].as_bool().unwrap_or(false)),
        age(obj, now),
    ]
}

fn csi_node_columns() -> Vec<Value> {
    vec![name_col(), col("Drivers", "integer", "Drivers indicates the number of CSI drivers registered on the node"), age_col()]
}

fn csi_node_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(count(&obj["spec"]["drivers"])), age(obj, now)]
}

fn csi_driver_columns() -> Vec<Value> {
    use api::storage::v1::CSIDriverSpec as S;
    vec![
        name_col(),
        col("AttachRequired", "boolean", doc::<S>("attachRequired")),
        col("PodInfoOnMount", "boolean", doc::<S>("podInfoOnMount")),
        col("StorageCapacity", "boolean", doc::<S>("storageCapacity")),
        col("TokenRequests", "string", doc::<S>("tokenRequests")),
        col("RequiresRepublish", "boolean", doc::<S>("requiresRepublish")),
        col("Modes", "string", doc::<S>("volumeLifecycleModes")),
        age_col(),
    ]
}

fn csi_driver_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let modes: Vec<&str> = arr(&spec["volumeLifecycleModes"]).iter().map(st).collect();
    let tokens = match spec["tokenRequests"].as_array() {
        Some(t) => t.iter().map(|t| st(&t["audience"])).collect::<Vec<_>>().join(","),
        None => "<unset>".into(),
    };
    vec![
        name(obj),
        json!(spec["attachRequired"].as_bool().unwrap_or(true)),
        json!(spec["podInfoOnMount"].as_bool().unwrap_or(false)),
        json!(spec["storageCapacity"].as_bool().unwrap_or(false)),
        json!(tokens),
        json!(spec["requiresRepublish"].as_bool().unwrap_or(false)),
        json!(or_none(&modes.join(","))),
        age(obj, now),
    ]
}

fn volume_attachment_columns() -> Vec<Value> {
    use api::storage::v1::{VolumeAttachmentSource, VolumeAttachmentSpec as S, VolumeAttachmentStatus};
    vec![
        name_col(),
        column("Attacher", "string", "name", 0, doc::<S>("attacher")),
        col("PV", "string", doc::<VolumeAttachmentSource>("persistentVolumeName")),
        col("Node", "string", doc::<S>("nodeName")),
        col("Attached", "boolean", doc::<VolumeAttachmentStatus>("attached")),
        age_col(),
    ]
}

fn volume_attachment_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    vec![
        name(obj),
        json!(st(&spec["attacher"])),
        json!(st(&spec["source"]["persistentVolumeName"])),
        json!(st(&spec["nodeName"])),
        json!(obj["status"]["attached"].as_bool().unwrap_or(false)),
        age(obj, now),
    ]
}

// ---- rbac, certificates, coordination, scheduling, node ----

fn binding_columns(users: &str, groups: &str, sas: &str, role_ref: String) -> Vec<Value> {
    vec![
        name_col(),
        col("Role", "string", role_ref),
        age_col(),
        wide("Users", "string", users),
        wide("Groups", "string", groups),
        wide("ServiceAccounts", "string", sas),
    ]
}

fn role_binding_columns() -> Vec<Value> {
    binding_columns(
        "Users in the roleBinding",
        "Groups in the roleBinding",
        "ServiceAccounts in the roleBinding",
        doc::<api::rbac::v1::RoleBinding>("roleRef"),
    )
}

fn cluster_role_binding_columns() -> Vec<Value> {
    binding_columns(
        "Users in the clusterRoleBinding",
        "Groups in the clusterRoleBinding",
        "ServiceAccounts in the clusterRoleBinding",
        doc::<api::rbac::v1::ClusterRoleBinding>("roleRef"),
    )
}

fn binding_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!("{}/{}", st(&obj["roleRef"]["kind"]), st(&obj["roleRef"]["name"]));
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr(&obj["subjects"]) {
        match st(&s["kind"]) {
            "ServiceAccount" => sas.push(format!("{}/{}", st(&s["namespace"]), st(&s["name"]))),
            "User" => users.push(st(&s["name"]).to_string()),
            "Group" => groups.push(st(&s["name"]).to_string()),
            _ => {}
        }
    }
    vec![name(obj), json!(role), age(obj, now), json!(users.join(", ")), json!(groups.join(", ")), json!(sas.join(", "))]
}

fn csr_columns() -> Vec<Value> {
    use api::certificates::v1::{CertificateSigningRequestSpec as S, CertificateSigningRequestStatus as St};
    vec![
        name_col(),
        age_col(),
        col("SignerName", "string", doc::<S>("signerName")),
        col("Requestor", "string", doc::<S>("request")),
        col("RequestedDuration", "string", doc::<S>("expirationSeconds")),
        col("Condition", "string", doc::<St>("conditions")),
    ]
}

/// The CONDITION cell of a CSR (`extractCSRStatus`).
fn csr_condition(obj: &Value) -> String {
    let types: BTreeSet<&str> = arr(&obj["status"]["conditions"]).iter().map(|c| st(&c["type"])).collect();
    let mut s = if types.contains("Denied") {
        "Denied"
    } else if types.contains("Approved") {
        "Approved"
    } else {
        "Pending"
    }
    .to_string();
    if types.contains("Failed") {
        s.push_str(",Failed");
    }
    if !st(&obj["status"]["certificate"]).is_empty() {
        s.push_str(",Issued");
    }
    s
}

fn csr_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let duration = spec["expirationSeconds"].as_i64().map(human_duration).unwrap_or_else(|| "<none>".into());
    vec![
        name(obj),
        age(obj, now),
        json!(or_none(st(&spec["signerName"]))),
        json!(st(&spec["username"])),
        json!(duration),
        json!(csr_condition(obj)),
    ]
}

fn lease_columns() -> Vec<Value> {
    vec![name_col(), col("Holder", "string", doc::<api::coordination::v1::LeaseSpec>("holderIdentity")), age_col()]
}

fn lease_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(st(&obj["spec"]["holderIdentity"])), age(obj, now)]
}

fn priority_class_columns() -> Vec<Value> {
    use api::scheduling::v1::PriorityClass as P;
    vec![
        name_col(),
        col("Value", "integer", doc::<P>("value")),
        col("Global-Default", "boolean", doc::<P>("globalDefault")),
        age_col(),
        wide("PreemptionPolicy", "string", doc::<P>("preemptionPolicy")),
    ]
}

fn priority_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(int(&obj["value"])),
        json!(obj["globalDefault"].as_bool().unwrap_or(false)),
        age(obj, now),
        json!(st(&obj["preemptionPolicy"])),
    ]
}

fn runtime_class_columns() -> Vec<Value> {
    // Upstream reads "handler" from ObjectMeta's docs, which has none.
    vec![name_col(), col("Handler", "string", ""), age_col()]
}

fn runtime_class_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(st(&obj["handler"])), age(obj, now)]
}

// ---- admission, flow control, aggregation ----

fn webhook_columns() -> Vec<Value> {
    vec![name_col(), col("Webhooks", "integer", "Webhooks indicates the number of webhooks registered in this configuration"), age_col()]
}

fn webhook_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(count(&obj["webhooks"])), age(obj, now)]
}

fn vap_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Validations", "integer", "Validations indicates the number of validation rules defined in this configuration"),
        col("ParamKind", "string", "ParamKind specifies the kind of resources used to parameterize this policy"),
        age_col(),
    ]
}

fn vap_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let pk = &obj["spec"]["paramKind"];
    let param_kind =
        if pk.is_object() { format!("{}/{}", st(&pk["apiVersion"]), st(&pk["kind"])) } else { "<unset>".into() };
    vec![name(obj), json!(count(&obj["spec"]["validations"])), json!(param_kind), age(obj, now)]
}

fn vapb_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("PolicyName", "string", "PolicyName indicates the policy definition which the policy binding binded to"),
        col("ParamRef", "string", "ParamRef indicates the param resource which sets the configration param"),
        age_col(),
    ]
}

fn vapb_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let pr = &obj["spec"]["paramRef"];
    let param = if !pr.is_object() {
        "<unset>".to_string()
    } else if !st(&pr["name"]).is_empty() {
        let ns = if st(&pr["namespace"]).is_empty() { "*" } else { st(&pr["namespace"]) };
        format!("{ns}/{}", st(&pr["name"]))
    } else if pr["selector"].is_object() {
        selector_string(&pr["selector"]).unwrap_or_default()
    } else {
        "<unset>".into()
    };
    vec![name(obj), json!(st(&obj["spec"]["policyName"])), json!(param), age(obj, now)]
}

fn flow_schema_columns() -> Vec<Value> {
    use api::flowcontrol::v1::{FlowSchemaSpec, PriorityLevelConfigurationReference};
    vec![
        name_col(),
        col("PriorityLevel", "string", doc::<PriorityLevelConfigurationReference>("name")),
        col("MatchingPrecedence", "string", doc::<FlowSchemaSpec>("matchingPrecedence")),
        col("DistinguisherMethod", "string", doc::<FlowSchemaSpec>("distinguisherMethod")),
        age_col(),
        col("MissingPL", "string", "references a broken or non-existent PriorityLevelConfiguration"),
    ]
}

fn flow_schema_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let spec = &obj["spec"];
    let method = spec["distinguisherMethod"]["type"].as_str().unwrap_or("<none>");
    let missing = arr(&obj["status"]["conditions"])
        .iter()
        .find(|c| st(&c["type"]) == "Dangling")
        .map(|c| st(&c["status"]).to_string())
        .unwrap_or_else(|| "?".into());
    vec![
        name(obj),
        json!(st(&spec["priorityLevelConfiguration"]["name"])),
        json!(int(&spec["matchingPrecedence"])),
        json!(method),
        age(obj, now),
        json!(missing),
    ]
}

/// Flow schemas are listed by matching precedence, then name (`FlowSchemaSequence`).
pub(super) fn sort_key(group: &str, plural: &str, obj: &Value) -> Option<(i64, String)> {
    (group == "flowcontrol.apiserver.k8s.io" && plural == "flowschemas")
        .then(|| (int(&obj["spec"]["matchingPrecedence"]), st(&obj["metadata"]["name"]).to_string()))
}

fn plc_columns() -> Vec<Value> {
    use api::flowcontrol::v1::{LimitedPriorityLevelConfiguration, PriorityLevelConfigurationSpec, QueuingConfiguration as Q};
    vec![
        name_col(),
        col("Type", "string", doc::<PriorityLevelConfigurationSpec>("type")),
        col("NominalConcurrencyShares", "string", doc::<LimitedPriorityLevelConfiguration>("nominalConcurrencyShares")),
        col("Queues", "string", doc::<Q>("queues")),
        col("HandSize", "string", doc::<Q>("handSize")),
        col("QueueLengthLimit", "string", doc::<Q>("queueLengthLimit")),
        age_col(),
    ]
}

fn plc_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let limited = &obj["spec"]["limited"];
    let none = || json!("<none>");
    let (mut ncs, mut queues, mut hand, mut qll) = (none(), none(), none(), none());
    if limited.is_object() {
        ncs = json!(int(&limited["nominalConcurrencyShares"]));
        let q = &limited["limitResponse"]["queuing"];
        if q.is_object() {
            (queues, hand, qll) = (json!(int(&q["queues"])), json!(int(&q["handSize"])), json!(int(&q["queueLengthLimit"])));
        }
    }
    vec![name(obj), json!(st(&obj["spec"]["type"])), ncs, queues, hand, qll, age(obj, now)]
}

fn api_service_columns() -> Vec<Value> {
    vec![
        name_col(),
        col("Service", "string", "The reference to the service that hosts this API endpoint."),
        col("Available", "string", "Whether this service is available."),
        age_col(),
    ]
}

fn api_service_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let svc = &obj["spec"]["service"];
    let service =
        if svc.is_object() { format!("{}/{}", st(&svc["namespace"]), st(&svc["name"])) } else { "Local".into() };
    let available = match arr(&obj["status"]["conditions"]).iter().find(|c| st(&c["type"]) == "Available") {
        None => "Unknown".to_string(),
        Some(c) if st(&c["status"]) == "True" || st(&c["reason"]).is_empty() => st(&c["status"]).to_string(),
        Some(c) => format!("{} ({})", st(&c["status"]), st(&c["reason"])),
    };
    vec![name(obj), json!(service), json!(available), age(obj, now)]
}

/// The autoscaling/v1 Scale subresource (`printScale`); its Name column has no `name` format.
pub(super) fn scale_printer() -> Printer {
    Printer { columns: scale_columns, cells: scale_cells }
}

fn scale_columns() -> Vec<Value> {
    use api::autoscaling::v1::{ScaleSpec, ScaleStatus};
    vec![
        col("Name", "string", NAME_DESCRIPTION),
        col("Desired", "integer", doc::<ScaleSpec>("replicas")),
        col("Available", "integer", doc::<ScaleStatus>("replicas")),
        age_col(),
    ]
}

fn scale_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(int(&obj["spec"]["replicas"])), json!(int(&obj["status"]["replicas"])), age(obj, now)]
}

/// Columns of every printer, keyed by (group, plural); built once since descriptions come from
/// the OpenAPI schemas.
pub(super) fn columns_cache() -> &'static HashMap<(&'static str, &'static str), Vec<Value>> {
    static CACHE: std::sync::OnceLock<HashMap<(&'static str, &'static str), Vec<Value>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(|| {
        crate::resources::all()
            .iter()
            .filter_map(|i| printer(i.group, i.plural).map(|p| ((i.group, i.plural), (p.columns)())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const NOW: &str = "2025-01-01T12:00:00Z";

    fn pod(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "p", "creationTimestamp": "2025-01-01T11:00:00Z"}, "spec": spec, "status": status})
    }

    fn status_of(p: &Value) -> (String, String, String) {
        pod_status(p, at(NOW))
    }

    #[test]
    fn pod_running_ready_with_restarts() {
        let p = pod(
            json!({"containers": [{"name": "a"}, {"name": "b"}]}),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T11:55:00Z"}}},
                {"name": "b", "ready": false, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2025-01-01T11:50:00Z"}}},
            ]}),
        );
        assert_eq!(status_of(&p), ("1/2".into(), "Running".into(), "3 (5m ago)".into()));
    }

    #[test]
    fn pod_waiting_and_terminated_reasons() {
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        assert_eq!(status_of(&p).1, "CrashLoopBackOff");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Running", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}),
        );
        assert_eq!(status_of(&p).1, "Signal:9");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [
                {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
        );
        assert_eq!(status_of(&p), ("0/1".into(), "Completed".into(), "0".into()));
        assert_eq!(row_conditions("", "pods", &p).unwrap()[0]["reason"], "Succeeded");
    }

    #[test]
    fn pod_completed_with_running_sidecar_is_running_or_not_ready() {
        let statuses = json!([
            {"name": "a", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "b", "ready": true, "restartCount": 0, "state": {"running": {}}},
        ]);
        let spec = json!({"containers": [{"name": "b"}, {"name": "a"}]});
        let p = pod(spec.clone(), json!({"phase": "Running", "containerStatuses": statuses}));
        assert_eq!(status_of(&p).1, "NotReady");
        let p = pod(
            spec,
            json!({"phase": "Running", "containerStatuses": statuses, "conditions": [{"type": "Ready", "status": "True"}]}),
        );
        assert_eq!(status_of(&p).1, "Running");
    }

    #[test]
    fn pod_init_containers() {
        let spec = json!({"initContainers": [{"name": "i1"}, {"name": "i2"}], "containers": [{"name": "a"}]});
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 0}}},
                {"name": "i2", "restartCount": 0, "state": {"running": {}}}]}),
        );
        assert_eq!(status_of(&p), ("0/1".into(), "Init:1/2".into(), "0".into()));
        let p = pod(
            spec.clone(),
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
        );
        assert_eq!(status_of(&p).1, "Init:CrashLoopBackOff");
        assert_eq!(status_of(&p).2, "3", "no last termination time: no (ago)");
        let p = pod(
            spec,
            json!({"phase": "Pending", "initContainerStatuses": [
                {"name": "i1", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}),
        );
        assert_eq!(status_of(&p).1, "Init:ExitCode:2");
        // A restartable (sidecar) init container counts towards READY once started.
        let spec = json!({"initContainers": [{"name": "side", "restartPolicy": "Always"}], "containers": [{"name": "a"}]});
        let p = pod(
            spec,
            json!({"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                "initContainerStatuses": [{"name": "side", "started": true, "ready": true, "restartCount": 0, "state": {"running": {}}}],
                "containerStatuses": [{"name": "a", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
        );
        assert_eq!(status_of(&p), ("2/2".into(), "Running".into(), "0".into()));
    }

    #[test]
    fn pod_terminating_gated_and_wide_cells() {
        let mut p = pod(json!({"containers": [{"name": "a"}]}), json!({"phase": "Running"}));
        p["metadata"]["deletionTimestamp"] = json!("2025-01-01T11:59:00Z");
        assert_eq!(status_of(&p).1, "Terminating");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(status_of(&p).1, "Unknown");
        let p = pod(
            json!({"containers": [{"name": "a"}]}),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
        );
        assert_eq!(status_of(&p).1, "SchedulingGated");

        let p = pod(
            json!({"containers": [{"name": "a"}], "nodeName": "n1", "readinessGates": [{"conditionType": "x"}, {"conditionType": "y"}]}),
            json!({"phase": "Running", "podIP": "10.0.0.5", "conditions": [{"type": "x", "status": "True"}]}),
        );
        let cells = pod_cells(&p, at(NOW));
        assert_eq!(cells, vec![json!("p"), json!("0/1"), json!("Running"), json!("0"), json!("60m"), json!("10.0.0.5"),
            json!("n1"), json!("<none>"), json!("1/2")]);
        assert_eq!(cells.len(), pod_columns().len());
    }

    #[test]
    fn service_ports_and_external_ips() {
        let svc = json!({"spec": {"type": "NodePort", "clusterIPs": ["10.96.0.10"], "ports": [
            {"port": 80, "protocol": "TCP"}, {"port": 443, "nodePort": 30001, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(service_ports(&svc), "80/TCP,443:30001/TCP,53/UDP");
        assert_eq!(service_external_ip(&svc), "<none>");
        assert_eq!(service_ports(&json!({"spec": {"type": "ClusterIP"}})), "<none>");
        let lb = json!({"spec": {"type": "LoadBalancer", "externalIPs": ["1.2.3.4"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}, {"hostname": "a.example"}, {"ip": "9.9.9.9"}]}}});
        assert_eq!(service_external_ip(&lb), "9.9.9.9,a.example,1.2.3.4");
        assert_eq!(service_external_ip(&json!({"spec": {"type": "LoadBalancer"}})), "<pending>");
        assert_eq!(service_external_ip(&json!({"spec": {"type": "ExternalName", "externalName": "x.example"}})), "x.example");
        let cells = service_cells(&json!({"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "clusterIP": "None",
            "selector": {"b": "2", "a": "1"}}}), at(NOW));
        assert_eq!(cells[2], "None");
        assert_eq!(cells[6], "a=1,b=2");
    }

    #[test]
    fn node_status_and_roles() {
        let node = json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": "",
            "kubernetes.io/role": "worker", "other": "x"}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "False"}]}});
        assert_eq!(node_status(&node), "NotReady,SchedulingDisabled");
        assert_eq!(node_roles(&node), "control-plane,worker");
        assert_eq!(node_status(&json!({})), "Unknown");
        assert_eq!(node_roles(&json!({})), "<none>");
        let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [
            {"type": "Hostname", "address": "h"}, {"type": "InternalIP", "address": "192.0.2.1"}]}});
        assert_eq!(node_status(&ready), "Ready");
        let cells = node_cells(&ready, at(NOW));
        assert_eq!(cells[5], "192.0.2.1");
        assert_eq!(cells[6], "<none>");
        assert_eq!(cells[7], "<unknown>");
        assert_eq!(cells.len(), node_columns().len());
    }

    #[test]
    fn endpoints_and_selectors() {
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}]});
        assert_eq!(format_endpoints(&ep), "10.0.0.1:80,[fd00::1]:80,10.0.0.1:443 + 1 more...");
        assert_eq!(format_endpoints(&json!({})), "<none>");
        let sel = json!({"matchLabels": {"b": "2"}, "matchExpressions": [
            {"key": "a", "operator": "In", "values": ["y", "x"]}, {"key": "c", "operator": "DoesNotExist"}]});
        assert_eq!(format_label_selector(&sel), "a in (x,y),b=2,!c");
        assert_eq!(format_label_selector(&json!({})), "<none>");
        assert_eq!(format_label_selector(&json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})), "<error>");
    }

    #[test]
    fn events_and_jobs() {
        let ev = json!({"metadata": {"name": "e1"}, "type": "Normal", "reason": "Started", "message": " hi \n",
            "involvedObject": {"kind": "Pod", "name": "p"}, "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2025-01-01T11:00:00Z", "lastTimestamp": "2025-01-01T11:58:00Z", "count": 3});
        let cells = event_cells(&ev, at(NOW));
        assert_eq!(cells, vec![json!("2m"), json!("Normal"), json!("Started"), json!("pod/p"), json!(""),
            json!("kubelet, n1"), json!("hi"), json!("60m"), json!(3), json!("e1")]);
        let v1 = json!({"metadata": {"name": "e2"}, "type": "Warning", "reason": "X", "note": "n",
            "regarding": {"kind": "Node", "name": "n1"}, "eventTime": "2025-01-01T11:59:00.000000Z", "reportingController": "c"});
        let cells = events_v1_cells(&v1, at(NOW));
        assert_eq!(cells[0], "60s");
        assert_eq!(cells[3], "node/n1");
        assert_eq!(cells[5], "c");
        assert_eq!(cells[8], 1);

        let job = json!({"metadata": {"name": "j"}, "spec": {"parallelism": 3, "template": {"spec": {"containers": []}}},
            "status": {"succeeded": 1, "startTime": "2025-01-01T11:00:00Z", "completionTime": "2025-01-01T11:02:05Z",
                "conditions": [{"type": "Complete", "status": "True"}]}});
        let cells = job_cells(&job, at(NOW));
        assert_eq!(&cells[1..4], &[json!("Complete"), json!("1/1 of 3"), json!("2m5s")]);
    }

    #[test]
    fn every_printer_has_as_many_cells_as_columns() {
        let now = at(NOW);
        for info in crate::resources::all() {
            let Some(p) = printer(info.group, info.plural) else { continue };
            let cols = (p.columns)();
            let cells = (p.cells)(&json!({"metadata": {"name": "x"}}), now);
            let expected = if info.plural == "ipaddresses" { cols.len() + 1 } else { cols.len() };
            assert_eq!(cells.len(), expected, "{}/{}", info.group, info.plural);
            for c in &cols {
                assert!(c["description"].is_string() && c["priority"].is_i64(), "{c}");
            }
        }
        let cols = (printer("", "pods").unwrap().columns)();
        assert!(cols[5]["description"].as_str().unwrap().starts_with("podIP address allocated"), "{}", cols[5]);
    }
}
