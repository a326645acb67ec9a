//! Workload validation (upstream's `pkg/apis/apps/validation`, `pkg/apis/batch/validation` and
//! the ReplicationController part of `pkg/apis/core/validation`): selectors that must match
//! their templates, strategies, replica counts, and what may not change after creation.

use serde_json::Value;

use super::go;
use super::pod::{self, join, nonnegative};
use crate::errors::Cause;

const SELECTOR_MISMATCH: &str = "`selector` does not match template `labels`";
const IMMUTABLE: &str = "field is immutable";

const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

/// Required selector, its own validity, and the "empty selector" rule.
fn selector(spec: &Value, what: &str) -> Vec<Cause> {
    let sel = &spec["selector"];
    if sel.is_null() {
        return vec![Cause::required("spec.selector", "")];
    }
    let mut causes = pod::label_selector(sel, "spec.selector");
    if pod::selector_is_empty(sel) {
        causes.push(Cause::invalid_raw("spec.selector", &go::label_selector(sel), &format!("empty selector is invalid for {what}")));
    }
    causes
}

/// Whether a selector converts to a `labels.Selector` (a missing one does: it selects nothing).
fn selector_converts(sel: &Value) -> bool {
    sel.is_null()
        || serde_json::from_value::<k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>(sel.clone())
            .is_ok_and(|ls| crate::selectors::LabelSelector::from_label_selector(&ls).is_ok())
}

/// The template's labels must be selected by a non-empty selector.
fn template_matches(sel: &Value, template: &Value) -> Vec<Cause> {
    // A missing selector selects nothing (upstream's LabelSelectorAsSelector(nil)); an empty
    // one everything.
    if (!sel.is_null() && pod::selector_is_empty(sel)) || (!sel.is_null() && pod::selector_matches(sel, &template["metadata"]["labels"])) {
        return Vec::new();
    }
    vec![Cause::invalid_raw("spec.template.metadata.labels", &pod::template_labels(template), SELECTOR_MISMATCH)]
}

/// Restart policy Always and no activeDeadlineSeconds, for templates of long-running workloads.
fn always_restart(template: &Value, kind: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    let rp = template["spec"]["restartPolicy"].as_str().unwrap_or("");
    if rp != "Always" {
        causes.push(Cause::not_supported("spec.template.spec.restartPolicy", rp, &["Always"]));
    }
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        causes.push(Cause::forbidden("spec.template.spec.activeDeadlineSeconds", &format!("activeDeadlineSeconds in {kind} is not Supported")));
    }
    causes
}

/// `ValidatePodTemplateSpecForReplicaSet` (Deployments and ReplicaSets), after the selector
/// converted.
fn replica_set_template(spec: &Value) -> Vec<Cause> {
    let sel = &spec["selector"];
    if !selector_converts(sel) {
        return vec![Cause::invalid_raw("spec.selector", &go::label_selector(sel), "invalid label selector")];
    }
    let mut causes = template_matches(sel, &spec["template"]);
    causes.extend(pod::pod_template(&spec["template"], "spec.template"));
    causes.extend(always_restart(&spec["template"], "ReplicaSet"));
    causes
}

/// Selectors compared as upstream's semantic equality does: empty lists and maps equal
/// missing ones.
fn semantic(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| !(v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) || v.as_array().is_some_and(|a| a.is_empty())))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}

fn immutable_selector(new: &Value, old: &Value) -> Vec<Cause> {
    let (n, o) = (&new["spec"]["selector"], &old["spec"]["selector"]);
    if semantic(n) != semantic(o) {
        vec![Cause::invalid_raw("spec.selector", &go::label_selector(n), IMMUTABLE)]
    } else {
        Vec::new()
    }
}

/// `IsValidPercent`: the percentage of a `[0-9]+%` string.
fn percent(s: &str) -> Option<i64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().unwrap_or(i64::MAX))
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: &Value, field: &str) -> Vec<Cause> {
    match v {
        Value::String(s) if percent(s).is_none() => vec![Cause::invalid_raw(field, &go::int_or_string(v), PERCENT_MSG)],
        Value::Number(_) => nonnegative(v, field),
        _ => Vec::new(),
    }
}

/// `IsNotMoreThan100Percent`.
fn not_more_than_100(v: &Value, field: &str) -> Vec<Cause> {
    match v.as_str().and_then(percent) {
        Some(p) if p > 100 => vec![Cause::invalid_raw(field, &go::int_or_string(v), "must not be greater than 100%")],
        _ => Vec::new(),
    }
}

/// `getIntOrPercentValue`: a percentage, else the integer (a string that is neither counts as
/// what `strconv.Atoi` makes of it, which is 0 when it fails).
fn int_or_percent_value(v: &Value) -> i64 {
    match v {
        Value::String(s) => percent(s).unwrap_or_else(|| s.parse().unwrap_or(0)),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

/// `ValidateRollingUpdateDeployment`.
fn rolling_update(ru: &Value, field: &str) -> Vec<Cause> {
    let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
    let mut causes = positive_int_or_percent(mu, &join(field, "maxUnavailable"));
    causes.extend(positive_int_or_percent(ms, &join(field, "maxSurge")));
    if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
        causes.push(Cause::invalid_raw(&join(field, "maxUnavailable"), &go::int_or_string(mu), "may not be 0 when `maxSurge` is 0"));
    }
    causes.extend(not_more_than_100(mu, &join(field, "maxUnavailable")));
    causes
}

/// `ValidateRollingUpdateDaemonSet`: exactly one of maxUnavailable and maxSurge is non-zero.
fn daemon_set_rolling_update(ru: &Value, field: &str) -> Vec<Cause> {
    let (mu, ms) = (&ru["maxUnavailable"], &ru["maxSurge"]);
    let mut causes = positive_int_or_percent(mu, &join(field, "maxUnavailable"));
    causes.extend(positive_int_or_percent(ms, &join(field, "maxSurge")));
    causes.extend(not_more_than_100(mu, &join(field, "maxUnavailable")));
    causes.extend(not_more_than_100(ms, &join(field, "maxSurge")));
    match (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0) {
        (true, true) => causes.push(Cause::invalid_raw(
            &join(field, "maxSurge"),
            &go::int_or_string(ms),
            "may not be set when maxUnavailable is non-zero",
        )),
        (false, false) => causes.push(Cause::required(&join(field, "maxUnavailable"), "cannot be 0 when maxSurge is 0")),
        _ => {}
    }
    causes
}

fn strategy_struct(kind: &str, s: &Value, ru_type: &str) -> String {
    format!(
        "apps.{kind}{{Type:{}, RollingUpdate:(*apps.{ru_type})(nil)}}",
        go::quote(s["type"].as_str().unwrap_or(""))
    )
}

// ---- Deployment ----

pub fn deployment(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = nonnegative(&spec["replicas"], "spec.replicas");
    causes.extend(selector(spec, "deployment"));
    causes.extend(replica_set_template(spec));
    let strategy = &spec["strategy"];
    match strategy["type"].as_str().unwrap_or("") {
        "Recreate" => {
            if !strategy["rollingUpdate"].is_null() {
                causes.push(Cause::forbidden("spec.strategy.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'"));
            }
        }
        "RollingUpdate" => {
            if strategy["rollingUpdate"].is_null() {
                causes.push(Cause::required("spec.strategy.rollingUpdate", "this should be defaulted and never be nil"));
            } else {
                causes.extend(rolling_update(&strategy["rollingUpdate"], "spec.strategy.rollingUpdate"));
            }
        }
        _ => causes.push(Cause::not_supported_raw(
            "spec.strategy",
            &strategy_struct("DeploymentStrategy", strategy, "RollingUpdateDeployment"),
            &["Recreate", "RollingUpdate"],
        )),
    }
    causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    causes.extend(nonnegative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit"));
    if let Some(pd) = spec["progressDeadlineSeconds"].as_i64() {
        causes.extend(nonnegative(&spec["progressDeadlineSeconds"], "spec.progressDeadlineSeconds"));
        if pd <= spec["minReadySeconds"].as_i64().unwrap_or(0) {
            causes.push(Cause::invalid_raw("spec.progressDeadlineSeconds", &pd.to_string(), "must be greater than minReadySeconds"));
        }
    }
    causes
}

pub fn deployment_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = deployment(new);
    causes.extend(immutable_selector(new, old));
    causes
}

// ---- ReplicaSet ----

pub fn replica_set(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = nonnegative(&spec["replicas"], "spec.replicas");
    causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    causes.extend(selector(spec, "deployment"));
    causes.extend(replica_set_template(spec));
    causes
}

pub fn replica_set_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = replica_set(new);
    causes.extend(immutable_selector(new, old));
    causes
}

// ---- StatefulSet ----

pub fn stateful_set(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    match spec["podManagementPolicy"].as_str().unwrap_or("") {
        "" => causes.push(Cause::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => causes.push(Cause::invalid("spec.podManagementPolicy", other, "must be 'OrderedReady' or 'Parallel'")),
    }
    let us = &spec["updateStrategy"];
    match us["type"].as_str().unwrap_or("") {
        "" => causes.push(Cause::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if !us["rollingUpdate"].is_null() {
                causes.push(Cause::invalid_raw(
                    "spec.updateStrategy.rollingUpdate",
                    &format!("apps.RollingUpdateStatefulSetStrategy{{Partition:{}, MaxUnavailable:(*intstr.IntOrString)(nil)}}", us["rollingUpdate"]["partition"].as_i64().unwrap_or(0)),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            causes.extend(nonnegative(&us["rollingUpdate"]["partition"], "spec.updateStrategy.rollingUpdate.partition"));
        }
        _ => causes.push(Cause::invalid_raw(
            "spec.updateStrategy",
            &format!("apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}", go::quote(us["type"].as_str().unwrap_or(""))),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    let policy = &spec["persistentVolumeClaimRetentionPolicy"];
    for k in ["whenDeleted", "whenScaled"] {
        match policy[k].as_str() {
            None | Some("Retain" | "Delete") => {}
            Some(other) => causes.push(Cause::not_supported(
                &format!("spec.persistentVolumeClaimRetentionPolicy.{k}"),
                other,
                &["Retain", "Delete"],
            )),
        }
    }
    causes.extend(nonnegative(&spec["replicas"], "spec.replicas"));
    causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    if spec["ordinals"].is_object() {
        causes.extend(nonnegative(&spec["ordinals"]["start"], "spec.ordinals.start"));
    }
    causes.extend(selector(spec, "statefulset"));
    if selector_converts(&spec["selector"]) {
        // v1.33 checks only the template's selector match, labels and annotations, not its
        // pod spec (that came in v1.34).
        causes.extend(template_matches(&spec["selector"], &spec["template"]));
        causes.extend(pod::template_meta(&spec["template"], "spec.template"));
    } else {
        causes.push(Cause { reason: "FieldValueInvalid".into(), message: format!("Invalid value: {}", go::label_selector(&spec["selector"])), field: "spec.selector".into() });
    }
    causes.extend(always_restart(&spec["template"], "StatefulSet"));
    causes
}

pub const STATEFULSET_UPDATE_MESSAGE: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

pub fn stateful_set_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = stateful_set(new);
    let mut n = new["spec"].clone();
    let o = &old["spec"];
    for k in ["replicas", "template", "updateStrategy", "minReadySeconds", "ordinals", "revisionHistoryLimit", "persistentVolumeClaimRetentionPolicy"] {
        if let Some(m) = n.as_object_mut() {
            match o.get(k) {
                Some(v) => m.insert(k.into(), v.clone()),
                None => m.remove(k),
            };
        }
    }
    if &n != o {
        causes.push(Cause::forbidden("spec", STATEFULSET_UPDATE_MESSAGE));
    }
    causes
}

// ---- DaemonSet ----

pub fn daemon_set(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let sel = &spec["selector"];
    let mut causes = pod::label_selector(sel, "spec.selector");
    if selector_converts(sel) && !pod::selector_matches(sel, &spec["template"]["metadata"]["labels"]) {
        causes.push(Cause::invalid_raw("spec.template.metadata.labels", &pod::template_labels(&spec["template"]), SELECTOR_MISMATCH));
    }
    if sel.is_object() && pod::selector_is_empty(sel) {
        causes.push(Cause::invalid_raw("spec.selector", &go::label_selector(sel), "empty selector is invalid for daemonset"));
    }
    causes.extend(pod::pod_template(&spec["template"], "spec.template"));
    causes.extend(always_restart(&spec["template"], "DaemonSet"));
    causes.extend(nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds"));
    let us = &spec["updateStrategy"];
    match us["type"].as_str().unwrap_or("") {
        "OnDelete" => {}
        "RollingUpdate" => {
            if us["rollingUpdate"].is_null() {
                causes.push(Cause::required("spec.updateStrategy.rollingUpdate", ""));
            } else {
                causes.extend(daemon_set_rolling_update(&us["rollingUpdate"], "spec.updateStrategy.rollingUpdate"));
            }
        }
        _ => causes.push(Cause::not_supported_raw(
            "spec.updateStrategy",
            &strategy_struct("DaemonSetUpdateStrategy", us, "RollingUpdateDaemonSet"),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    causes.extend(nonnegative(&spec["revisionHistoryLimit"], "spec.revisionHistoryLimit"));
    causes
}

pub fn daemon_set_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = daemon_set(new);
    causes.extend(immutable_selector(new, old));
    causes
}

// ---- ReplicationController ----

pub fn replication_controller(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = nonnegative(&spec["minReadySeconds"], "spec.minReadySeconds");
    let sel = &spec["selector"];
    if sel.as_object().is_none_or(serde_json::Map::is_empty) {
        causes.push(Cause::required("spec.selector", ""));
    }
    causes.extend(nonnegative(&spec["replicas"], "spec.replicas"));
    let template = &spec["template"];
    if template.is_null() {
        causes.push(Cause::required("spec.template", ""));
        return causes;
    }
    if let Some(m) = sel.as_object().filter(|m| !m.is_empty()) {
        let matches = m.iter().all(|(k, v)| template["metadata"]["labels"][k] == *v);
        if !matches {
            causes.push(Cause::invalid_raw("spec.template.metadata.labels", &pod::template_labels(template), SELECTOR_MISMATCH));
        }
    }
    causes.extend(pod::pod_template(template, "spec.template"));
    let rp = template["spec"]["restartPolicy"].as_str().unwrap_or("");
    if rp != "Always" {
        causes.push(Cause::not_supported("spec.template.spec.restartPolicy", rp, &["Always"]));
    }
    if !template["spec"]["activeDeadlineSeconds"].is_null() {
        causes.push(Cause::forbidden("spec.template.spec.activeDeadlineSeconds", "activeDeadlineSeconds in ReplicationController is not Supported"));
    }
    causes
}

// ---- Job ----

/// `validateJobSpec` at `field` (`spec`, or `spec.jobTemplate.spec` for CronJobs).
fn job_spec(spec: &Value, field: &str) -> Vec<Cause> {
    let mut causes = Vec::new();
    for k in ["parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"] {
        causes.extend(nonnegative(&spec[k], &join(field, k)));
    }
    if let Some(mode) = spec["completionMode"].as_str() {
        match mode {
            "NonIndexed" => {}
            "Indexed" => {
                if spec["completions"].is_null() {
                    causes.push(Cause::required(&join(field, "completions"), "when completion mode is Indexed"));
                }
            }
            other => causes.push(Cause::not_supported(&join(field, "completionMode"), other, &["NonIndexed", "Indexed"])),
        }
    }
    let template = &spec["template"];
    causes.extend(pod::pod_template(template, &join(field, "template")));
    let rp_field = format!("{field}.template.spec.restartPolicy");
    match template["spec"]["restartPolicy"].as_str().unwrap_or("") {
        "" | "Always" => causes.push(Cause::required(&rp_field, "valid values: \"OnFailure\", \"Never\"")),
        "OnFailure" | "Never" => {
            if !spec["podFailurePolicy"].is_null() && template["spec"]["restartPolicy"] != "Never" {
                causes.push(Cause::invalid(&rp_field, "OnFailure", "only \"Never\" is supported when podFailurePolicy is specified"));
            }
        }
        other => causes.push(Cause::not_supported(&rp_field, other, &["OnFailure", "Never"])),
    }
    causes
}

pub fn job(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let manual = spec["manualSelector"].as_bool() == Some(true);
    if !manual {
        let uid = obj["metadata"]["uid"].as_str().unwrap_or("");
        let expected = serde_json::json!({"batch.kubernetes.io/controller-uid": uid});
        if !spec["selector"].is_null() && !pod::selector_matches(&spec["selector"], &expected) {
            causes.push(Cause::invalid_raw("spec.selector", &go::label_selector(&spec["selector"]), "`selector` not auto-generated"));
        }
    }
    causes.extend(job_spec(spec, "spec"));
    if spec["selector"].is_null() {
        causes.push(Cause::required("spec.selector", ""));
    } else {
        causes.extend(pod::label_selector(&spec["selector"], "spec.selector"));
        if !pod::selector_matches(&spec["selector"], &spec["template"]["metadata"]["labels"]) {
            causes.push(Cause::invalid_raw("spec.template.metadata.labels", &pod::template_labels(&spec["template"]), SELECTOR_MISMATCH));
        }
    }
    if spec["completionMode"] == "Indexed" {
        if let Some(c) = spec["completions"].as_i64().filter(|c| *c > 0) {
            let name = obj["metadata"]["name"].as_str().unwrap_or("");
            let host = format!("{name}-{}", c - 1);
            if !super::dns1123_label(&host).is_empty() {
                causes.push(Cause::invalid("metadata.name", name, &format!("will not able to create pod with invalid DNS label: {host}")));
            }
        }
    }
    causes
}

pub fn job_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut causes = job(new);
    let (n, o) = (&new["spec"], &old["spec"]);
    let indexed = n["completionMode"] == "Indexed";
    if n["completions"] != o["completions"] && !(indexed && n["completions"] == n["parallelism"]) {
        causes.push(Cause::invalid_raw("spec.completions", &go::scalar(&n["completions"]), IMMUTABLE));
    }
    causes.extend(immutable_selector(new, old));
    // Scheduling directives may change while a job is suspended and has never started.
    let suspended_unstarted = n["suspend"] == true && old["status"]["startTime"].is_null();
    let mut nt = n["template"].clone();
    if suspended_unstarted {
        for k in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
            match o["template"]["spec"].get(k) {
                Some(v) => nt["spec"][k] = v.clone(),
                None => {
                    if let Some(m) = nt["spec"].as_object_mut() {
                        m.remove(k);
                    }
                }
            }
        }
        for k in ["labels", "annotations"] {
            nt["metadata"][k] = o["template"]["metadata"][k].clone();
        }
    }
    if nt != o["template"] {
        causes.push(Cause::invalid_raw("spec.template", &format!("core.PodTemplateSpec{}", n["template"]), IMMUTABLE));
    }
    for k in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy"] {
        if n[k] != o[k] {
            causes.push(Cause::invalid_raw(&format!("spec.{k}"), &go::scalar(&n[k]), IMMUTABLE));
        }
    }
    causes
}

// ---- CronJob ----

const CRON_DESCRIPTORS: &[&str] = &["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"];

/// robfig/cron's `ParseStandard` errors, for the common mistakes.
pub fn cron_error(schedule: &str) -> Option<String> {
    let s = schedule.trim();
    let s = match s.strip_prefix("TZ=").or_else(|| s.strip_prefix("CRON_TZ=")) {
        Some(rest) => rest.split_once(' ').map(|(_, r)| r.trim()).unwrap_or(""),
        None => s,
    };
    if s.starts_with('@') {
        if CRON_DESCRIPTORS.contains(&s) || s.starts_with("@every ") {
            return None;
        }
        return Some(format!("unrecognized descriptor: {s}"));
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Some(format!("expected exactly 5 fields, found {}: [{}]", fields.len(), fields.join(" ")));
    }
    const BOUNDS: [(i64, i64, &[&str]); 5] = [
        (0, 59, &[]),
        (0, 23, &[]),
        (1, 31, &[]),
        (1, 12, &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
        (0, 6, &["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
    ];
    for (field, (min, max, names)) in fields.iter().zip(BOUNDS) {
        for part in field.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => (r, Some(s)),
                None => (part, None),
            };
            if let Some(step) = step {
                if step.parse::<u32>().is_err() {
                    return Some(format!("failed to parse int from {step}: strconv.Atoi: parsing {}: invalid syntax", go::quote(step)));
                }
            }
            if range == "*" || range == "?" {
                continue;
            }
            let value = |t: &str| -> Result<i64, String> {
                if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
                    return Ok(i as i64 + if max == 12 { 1 } else { 0 });
                }
                t.parse::<i64>()
                    .map_err(|_| format!("failed to parse int from {t}: strconv.Atoi: parsing {}: invalid syntax", go::quote(t)))
            };
            let (lo, hi) = match range.split_once('-') {
                Some((a, b)) => (value(a), value(b)),
                None => (value(range), value(range)),
            };
            let (lo, hi) = match (lo, hi) {
                (Ok(l), Ok(h)) => (l, h),
                (Err(e), _) | (_, Err(e)) => return Some(e),
            };
            if lo < min {
                return Some(format!("beginning of range ({lo}) below minimum ({min}): {part}"));
            }
            if hi > max {
                return Some(format!("end of range ({hi}) above maximum ({max}): {part}"));
            }
            if lo > hi {
                return Some(format!("beginning of range ({lo}) beyond end of range ({hi}): {part}"));
            }
        }
    }
    None
}

pub fn cron_job(obj: &Value) -> Vec<Cause> {
    let spec = &obj["spec"];
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    if name.len() > 52 {
        causes.push(Cause::invalid("metadata.name", name, "must be no more than 52 characters"));
    }
    let schedule = spec["schedule"].as_str().unwrap_or("");
    if schedule.is_empty() {
        causes.push(Cause::required("spec.schedule", ""));
    } else {
        if let Some(e) = cron_error(schedule) {
            causes.push(Cause::invalid("spec.schedule", schedule, &e));
        }
        if schedule.contains("TZ") {
            causes.push(Cause::invalid("spec.schedule", schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"));
        }
    }
    causes.extend(nonnegative(&spec["startingDeadlineSeconds"], "spec.startingDeadlineSeconds"));
    match spec["concurrencyPolicy"].as_str().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => causes.push(Cause::required("spec.concurrencyPolicy", "")),
        other => causes.push(Cause::not_supported("spec.concurrencyPolicy", other, &["Allow", "Forbid", "Replace"])),
    }
    let js = &spec["jobTemplate"]["spec"];
    causes.extend(job_spec(js, "spec.jobTemplate.spec"));
    if !js["selector"].is_null() {
        causes.push(Cause::invalid_raw("spec.jobTemplate.spec.selector", &go::label_selector(&js["selector"]), "`selector` will be auto-generated"));
    }
    if js["manualSelector"].as_bool() == Some(true) {
        causes.push(Cause::not_supported_raw("spec.jobTemplate.spec.manualSelector", "true", &["nil", "false"]));
    }
    causes.extend(nonnegative(&spec["successfulJobsHistoryLimit"], "spec.successfulJobsHistoryLimit"));
    causes.extend(nonnegative(&spec["failedJobsHistoryLimit"], "spec.failedJobsHistoryLimit"));
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(causes: Vec<Cause>) -> (String, String) {
        assert_eq!(causes.len(), 1, "{causes:?}");
        (causes[0].field.clone(), causes[0].message.clone())
    }

    fn template(labels: Value, restart: &str) -> Value {
        json!({"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "x"}],
            "restartPolicy": restart, "dnsPolicy": "ClusterFirst"}})
    }

    fn deploy() -> Value {
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": template(json!({"app": "web"}), "Always"),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600}})
    }

    #[test]
    fn deployment_rules() {
        assert!(deployment(&deploy()).is_empty());
        let mut d = deploy();
        d["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
        assert_eq!(
            one(deployment(&d)),
            ("spec.template.metadata.labels".into(), "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`".into())
        );
        let mut d = deploy();
        d["spec"].as_object_mut().unwrap().remove("selector");
        // A missing selector selects nothing, so the template does not match it either.
        let causes: Vec<(String, String)> = deployment(&d).into_iter().map(|c| (c.field, c.message)).collect();
        assert_eq!(
            causes,
            [
                ("spec.selector".into(), "Required value".into()),
                ("spec.template.metadata.labels".into(), "Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`".into()),
            ]
        );
        let mut d = deploy();
        d["spec"]["replicas"] = json!(-1);
        assert_eq!(one(deployment(&d)), ("spec.replicas".into(), "Invalid value: -1: must be greater than or equal to 0".into()));
        let mut d = deploy();
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        assert_eq!(
            one(deployment(&d)),
            ("spec.template.spec.restartPolicy".into(), "Unsupported value: \"OnFailure\": supported values: \"Always\"".into())
        );
        let mut d = deploy();
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 0});
        assert_eq!(
            one(deployment(&d)),
            ("spec.strategy.rollingUpdate.maxUnavailable".into(), "Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".into())
        );
        let mut d = deploy();
        d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json!("150%");
        assert_eq!(one(deployment(&d)).1, "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%");
        let mut d = deploy();
        d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
        assert_eq!(one(deployment(&d)).1, "Forbidden: may not be specified when strategy `type` is 'Recreate'");
        let mut d = deploy();
        d["spec"]["minReadySeconds"] = json!(700);
        assert_eq!(one(deployment(&d)), ("spec.progressDeadlineSeconds".into(), "Invalid value: 600: must be greater than minReadySeconds".into()));
        // An empty selector selects everything, so only the selector itself is wrong.
        let mut d = deploy();
        d["spec"]["selector"] = json!({});
        assert_eq!(
            one(deployment(&d)),
            (
                "spec.selector".into(),
                "Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".into()
            )
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deploy();
        let mut new = deploy();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web2"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "web2"});
        assert_eq!(
            one(deployment_update(&new, &old)),
            ("spec.selector".into(), "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".into())
        );
    }

    #[test]
    fn replica_set_and_rc() {
        let rs = json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "c"}), "Always")}});
        assert_eq!(one(replica_set(&rs)).0, "spec.template.metadata.labels");
        let rc = json!({"spec": {"replicas": 1, "template": template(json!({"a": "b"}), "Always")}});
        assert_eq!(one(replication_controller(&rc)), ("spec.selector".into(), "Required value".into()));
        let old = json!({"spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always")}});
        let mut new = old.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"a": "b", "c": "d"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"a": "b", "c": "d"});
        assert_eq!(one(replica_set_update(&new, &old)).0, "spec.selector");
        let rc = json!({"spec": {"replicas": 1, "selector": {"a": "b"}, "template": template(json!({"a": "b"}), "Never")}});
        assert_eq!(
            one(replication_controller(&rc)),
            ("spec.template.spec.restartPolicy".into(), "Unsupported value: \"Never\": supported values: \"Always\"".into())
        );
    }

    #[test]
    fn stateful_set_rules() {
        let sts = json!({"spec": {"replicas": 1, "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always"), "serviceName": "s"}});
        assert!(stateful_set(&sts).is_empty());
        let mut bad = sts.clone();
        bad["spec"]["podManagementPolicy"] = json!("Fast");
        assert_eq!(one(stateful_set(&bad)).1, "Invalid value: \"Fast\": must be 'OrderedReady' or 'Parallel'");
        let mut bad = sts.clone();
        bad["spec"]["updateStrategy"] = json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
        assert_eq!(one(stateful_set(&bad)).0, "spec.updateStrategy.rollingUpdate");
        let mut bad = sts.clone();
        bad["spec"]["persistentVolumeClaimRetentionPolicy"] = json!({"whenDeleted": "Keep"});
        assert_eq!(
            one(stateful_set(&bad)),
            ("spec.persistentVolumeClaimRetentionPolicy.whenDeleted".into(), "Unsupported value: \"Keep\": supported values: \"Retain\", \"Delete\"".into())
        );
        let mut bad = sts.clone();
        bad["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            one(stateful_set(&bad)),
            ("spec.template.spec.activeDeadlineSeconds".into(), "Forbidden: activeDeadlineSeconds in StatefulSet is not Supported".into())
        );
        let mut new = sts.clone();
        new["spec"]["replicas"] = json!(3);
        assert!(stateful_set_update(&new, &sts).is_empty());
        new["spec"]["serviceName"] = json!("other");
        assert_eq!(one(stateful_set_update(&new, &sts)), ("spec".into(), format!("Forbidden: {STATEFULSET_UPDATE_MESSAGE}")));
    }

    #[test]
    fn daemon_set_rules() {
        let ok = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always"),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}});
        assert!(daemon_set(&ok).is_empty());
        let mut new = ok.clone();
        new["spec"]["selector"] = json!({"matchLabels": {"a": "c"}});
        new["spec"]["template"]["metadata"]["labels"] = json!({"a": "c"});
        assert_eq!(one(daemon_set_update(&new, &ok)).0, "spec.selector");
        let mut bad = ok.clone();
        bad["spec"]["template"]["metadata"]["labels"] = json!({"a": "x"});
        assert_eq!(one(daemon_set(&bad)).0, "spec.template.metadata.labels");
        let ds = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always"),
            "updateStrategy": {"type": "Sideways"}}});
        assert_eq!(
            one(daemon_set(&ds)),
            ("spec.updateStrategy".into(), "Unsupported value: apps.DaemonSetUpdateStrategy{Type:\"Sideways\", RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}: supported values: \"RollingUpdate\", \"OnDelete\"".into())
        );
    }

    fn job_obj() -> Value {
        json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6,
            "completionMode": "NonIndexed", "manualSelector": false,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": template(json!({"batch.kubernetes.io/controller-uid": "u1", "job-name": "j"}), "Never")}})
    }

    #[test]
    fn job_rules() {
        assert!(job(&job_obj()).is_empty());
        let mut j = job_obj();
        j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(
            one(job(&j)),
            ("spec.template.spec.restartPolicy".into(), "Required value: valid values: \"OnFailure\", \"Never\"".into())
        );
        let mut j = job_obj();
        j["spec"]["backoffLimit"] = json!(-1);
        assert_eq!(one(job(&j)), ("spec.backoffLimit".into(), "Invalid value: -1: must be greater than or equal to 0".into()));
        let mut j = job_obj();
        j["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u1", "x": "y"}});
        let causes = job(&j);
        assert!(causes.iter().any(|c| c.message.ends_with("`selector` not auto-generated")), "{causes:?}");
    }

    #[test]
    fn job_template_is_immutable() {
        let old = job_obj();
        let mut new = job_obj();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
        let (f, m) = one(job_update(&new, &old));
        assert_eq!(f, "spec.template");
        assert!(m.ends_with(": field is immutable"), "{m}");
        let mut new = job_obj();
        new["spec"]["completions"] = json!(3);
        assert_eq!(one(job_update(&new, &old)), ("spec.completions".into(), "Invalid value: 3: field is immutable".into()));
        // A removed pointer field prints as Go prints a nil pointer.
        let mut new = job_obj();
        new["spec"].as_object_mut().unwrap().remove("completions");
        assert_eq!(one(job_update(&new, &old)), ("spec.completions".into(), "Invalid value: \"null\": field is immutable".into()));
    }

    fn all(causes: Vec<Cause>) -> Vec<(String, String, String)> {
        causes.into_iter().map(|c| (c.field, c.reason, c.message)).collect()
    }

    fn c(field: &str, reason: &str, message: &str) -> (String, String, String) {
        (field.into(), reason.into(), message.into())
    }

    #[test]
    fn replica_set_templates_as_upstream() {
        // activeDeadlineSeconds is forbidden in every long-running workload's template.
        let mut d = deploy();
        d["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            all(deployment(&d)),
            [c("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden", "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported")]
        );
        // Template labels and annotations are reported without `metadata` in the path.
        let mut d = deploy();
        d["spec"]["template"]["metadata"]["annotations"] = json!({"bad key": "x"});
        d["spec"]["template"]["spec"]["containers"][0].as_object_mut().unwrap().remove("image");
        assert_eq!(
            all(deployment(&d)),
            [
                c("spec.template.annotations", "FieldValueInvalid", &format!("Invalid value: \"bad key\": {}", crate::validation::QUALIFIED_NAME_MSG)),
                c("spec.template.spec.containers[0].image", "FieldValueRequired", "Required value"),
            ]
        );
        // A selector that cannot be converted skips the template checks.
        let mut d = deploy();
        d["spec"]["selector"] = json!({"matchLabels": {"app": "-web"}});
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            all(deployment(&d)),
            [
                c("spec.selector.matchLabels", "FieldValueInvalid", &format!("Invalid value: \"-web\": {}", crate::validation::LABEL_VALUE_MSG)),
                c(
                    "spec.selector",
                    "FieldValueInvalid",
                    "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"-web\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: invalid label selector"
                ),
            ]
        );
        // Percentages must match [0-9]+%; a string that is not one counts as 0.
        let mut d = deploy();
        d["spec"]["strategy"]["rollingUpdate"] = json!({"maxUnavailable": "x", "maxSurge": 0});
        let bad = "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}";
        assert_eq!(
            all(deployment(&d)),
            [
                c("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid", &format!("{bad}: {PERCENT_MSG}")),
                c("spec.strategy.rollingUpdate.maxUnavailable", "FieldValueInvalid", &format!("{bad}: may not be 0 when `maxSurge` is 0")),
            ]
        );
        let mut d = deploy();
        d["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = json!("-5%");
        assert_eq!(
            all(deployment(&d)),
            [c("spec.strategy.rollingUpdate.maxSurge", "FieldValueInvalid", &format!("Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"-5%\"}}: {PERCENT_MSG}"))]
        );
        // An empty selector equals a missing one for immutability, as Go's semantic equality has it.
        let old = deploy();
        let mut new = deploy();
        new["spec"]["selector"]["matchExpressions"] = json!([]);
        assert!(deployment_update(&new, &old).is_empty());
    }

    #[test]
    fn stateful_sets_check_only_template_metadata() {
        let sts = json!({"spec": {"replicas": 1, "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always"), "serviceName": "s"}});
        let mut bad = sts.clone();
        bad["spec"]["template"]["spec"]["containers"] = json!([{"name": "Not_A_Label"}]);
        assert!(stateful_set(&bad).is_empty(), "{:?}", stateful_set(&bad));
        let mut bad = sts.clone();
        bad["spec"]["template"]["metadata"]["labels"]["k"] = json!("-x");
        bad["spec"]["ordinals"] = json!({"start": -1});
        assert_eq!(
            all(stateful_set(&bad)),
            [
                c("spec.ordinals.start", "FieldValueInvalid", "Invalid value: -1: must be greater than or equal to 0"),
                c("spec.template.labels", "FieldValueInvalid", &format!("Invalid value: \"-x\": {}", crate::validation::LABEL_VALUE_MSG)),
            ]
        );
        let mut bad = sts.clone();
        bad["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            all(stateful_set(&bad)),
            [
                c("spec.selector", "FieldValueRequired", "Required value"),
                c("spec.template.metadata.labels", "FieldValueInvalid", &format!("Invalid value: map[string]string{{\"a\":\"b\"}}: {SELECTOR_MISMATCH}")),
            ]
        );
        let mut bad = sts.clone();
        bad["spec"]["updateStrategy"] = json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
        assert_eq!(
            one(stateful_set(&bad)).1,
            "Invalid value: apps.RollingUpdateStatefulSetStrategy{Partition:1, MaxUnavailable:(*intstr.IntOrString)(nil)}: only allowed for updateStrategy 'RollingUpdate'"
        );
    }

    #[test]
    fn daemon_set_selectors_and_rolling_updates() {
        let ok = json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always"),
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}});
        // No selector is not "required" for a DaemonSet: it just matches nothing.
        let mut ds = ok.clone();
        ds["spec"].as_object_mut().unwrap().remove("selector");
        assert_eq!(
            all(daemon_set(&ds)),
            [c("spec.template.metadata.labels", "FieldValueInvalid", &format!("Invalid value: map[string]string{{\"a\":\"b\"}}: {SELECTOR_MISMATCH}"))]
        );
        let mut ds = ok.clone();
        ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 1, "maxSurge": "10%"});
        assert_eq!(
            all(daemon_set(&ds)),
            [c(
                "spec.updateStrategy.rollingUpdate.maxSurge",
                "FieldValueInvalid",
                "Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"10%\"}: may not be set when maxUnavailable is non-zero"
            )]
        );
        ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": "0%", "maxSurge": 0});
        assert_eq!(
            all(daemon_set(&ds)),
            [c("spec.updateStrategy.rollingUpdate.maxUnavailable", "FieldValueRequired", "Required value: cannot be 0 when maxSurge is 0")]
        );
        let mut ds = ok.clone();
        ds["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(5);
        assert_eq!(
            all(daemon_set(&ds)),
            [c("spec.template.spec.activeDeadlineSeconds", "FieldValueForbidden", "Forbidden: activeDeadlineSeconds in DaemonSet is not Supported")]
        );
    }

    #[test]
    fn cron_job_rules() {
        let cj = json!({"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"template": template(json!({}), "OnFailure")}}}});
        assert!(cron_job(&cj).is_empty(), "{:?}", cron_job(&cj));
        let mut bad = cj.clone();
        bad["spec"]["schedule"] = json!("bad");
        assert_eq!(one(cron_job(&bad)), ("spec.schedule".into(), "Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]".into()));
        bad["spec"]["schedule"] = json!("70 * * * *");
        assert_eq!(one(cron_job(&bad)).1, "Invalid value: \"70 * * * *\": end of range (70) above maximum (59): 70");
        let mut bad = cj.clone();
        bad["spec"]["concurrencyPolicy"] = json!("Never");
        assert_eq!(
            one(cron_job(&bad)),
            ("spec.concurrencyPolicy".into(), "Unsupported value: \"Never\": supported values: \"Allow\", \"Forbid\", \"Replace\"".into())
        );
        let mut bad = cj.clone();
        bad["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(one(cron_job(&bad)).0, "spec.jobTemplate.spec.template.spec.restartPolicy");
        assert!(cron_error("@hourly").is_none());
        assert!(cron_error("0 0 * jan mon-fri").is_none());
    }
}
