//! The CronJob controller: creates a Job for every scheduled time (standard 5-field cron
//! syntax and `@hourly`-style macros, evaluated in `timeZone`), honouring
//! `concurrencyPolicy` (Allow/Forbid/Replace), `startingDeadlineSeconds`, `suspend` and the
//! successful/failed history limits; `status.active`, `lastScheduleTime` and
//! `lastSuccessfulTime` as upstream.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan, Zoned};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use tracing::info;

use crate::controllers::job::is_finished;
use crate::informer::{Change, Informer, enqueue_on_change};
use crate::queue::{WorkQueue, run_reconciler};
use crate::util::{self, Events, controller_ref, key, object_ref, owner_ref, split_key};
use crate::{ControllerContext, Error};

pub const SCHEDULED_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// A parsed cron schedule: allowed values per field.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    dom: Vec<bool>,
    months: Vec<bool>,
    dow: Vec<bool>,
    dom_star: bool,
    dow_star: bool,
}

fn parse_field(f: &str, min: u32, max: u32, names: &[&str]) -> Result<(Vec<bool>, bool), String> {
    let mut set = vec![false; (max + 1) as usize];
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + min);
        }
        s.parse::<u32>().map_err(|_| format!("invalid value {s:?}"))
    };
    let star = f == "*" || f == "?";
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| format!("invalid step {s:?}"))?),
            None => (part, 1),
        };
        if step == 0 {
            return Err("step must be positive".into());
        }
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if part.contains('/') { max } else { v })
        };
        // Sunday may be written as 7 (alone or as the end of a range).
        let sunday7 = max == 6 && hi == 7;
        let (lo, hi) = match (sunday7, lo) {
            (true, 7) => (0, 0),
            (true, lo) => (lo, 6),
            _ => (lo, hi),
        };
        if lo < min || hi > max || lo > hi {
            return Err(format!("value out of range in {part:?}"));
        }
        let mut v = lo;
        while v <= hi {
            set[v as usize] = true;
            v += step;
        }
        if sunday7 {
            set[0] = true;
        }
    }
    Ok((set, star))
}

impl Schedule {
    pub fn parse(spec: &str) -> Result<Schedule, String> {
        let s = match spec.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let f: Vec<&str> = s.split_whitespace().collect();
        if f.len() != 5 {
            return Err(format!("expected exactly 5 fields, found {}: {spec:?}", f.len()));
        }
        const MONTHS: &[&str] = &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
        const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
        let (minutes, _) = parse_field(f[0], 0, 59, &[])?;
        let (hours, _) = parse_field(f[1], 0, 23, &[])?;
        let (dom, dom_star) = parse_field(f[2], 1, 31, &[])?;
        let (months, _) = parse_field(f[3], 1, 12, MONTHS)?;
        let (dow, dow_star) = parse_field(f[4], 0, 6, DAYS)?;
        Ok(Schedule { minutes, hours, dom, months, dow, dom_star, dow_star })
    }

    fn day_matches(&self, z: &Zoned) -> bool {
        let d = self.dom[z.day() as usize];
        let w = self.dow[z.weekday().to_sunday_zero_offset() as usize];
        if self.dom_star || self.dow_star { d && w } else { d || w }
    }

    /// The first scheduled time strictly after `after`, in `tz` (within ~5 years).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut z = after.to_zoned(tz.clone()).with().second(0).subsec_nanosecond(0).build().ok()?.checked_add(1.minute()).ok()?;
        for _ in 0..200_000 {
            if !self.months[z.month() as usize] {
                z = z.first_of_month().ok()?.checked_add(1.month()).ok()?.start_of_day().ok()?;
                continue;
            }
            if !self.day_matches(&z) {
                z = z.tomorrow().ok()?.start_of_day().ok()?;
                continue;
            }
            if !self.hours[z.hour() as usize] {
                z = z.with().minute(0).build().ok()?.checked_add(1.hour()).ok()?;
                continue;
            }
            if !self.minutes[z.minute() as usize] {
                z = z.checked_add(1.minute()).ok()?;
                continue;
            }
            return Some(z.timestamp());
        }
        None
    }
}

/// The most recent scheduled time in `(since, now]` and how many were missed before it.
pub fn most_recent(s: &Schedule, tz: &TimeZone, since: Timestamp, now: Timestamp) -> (Option<Timestamp>, usize) {
    let (mut last, mut count) = (None, 0);
    let mut t = since;
    while let Some(n) = s.next(t, tz) {
        if n > now || count > 1000 {
            break;
        }
        last = Some(n);
        count += 1;
        t = n;
    }
    (last, count)
}

pub struct CronJobController {
    client: Client,
    cronjobs: Arc<Informer<CronJob>>,
    jobs: Arc<Informer<Job>>,
    queue: Arc<WorkQueue>,
    events: Events,
}

impl CronJobController {
    pub fn new(ctx: &ControllerContext) -> Arc<Self> {
        let c = Arc::new(CronJobController {
            client: ctx.client.clone(),
            cronjobs: ctx.informers.get::<CronJob>(),
            jobs: ctx.informers.get::<Job>(),
            queue: WorkQueue::new("cronjob"),
            events: Events::new(ctx.client.clone(), "cronjob-controller"),
        });
        enqueue_on_change(&c.cronjobs, &c.queue);
        let q = c.queue.clone();
        c.jobs.add_handler(move |ch: &Change<Job>| {
            let j = ch.object();
            if let Some(r) = controller_ref(&j.metadata).filter(|r| r.kind == "CronJob") {
                q.add(key(j.metadata.namespace.as_deref().unwrap_or(""), &r.name));
            }
        });
        c
    }

    pub async fn run(self: Arc<Self>, workers: usize) {
        self.cronjobs.wait_synced().await;
        self.jobs.wait_synced().await;
        run_reconciler(self.clone(), self.queue.clone(), workers, |c, key| async move { c.reconcile(&key).await }).await;
    }

    /// The one sync function.
    pub async fn reconcile(&self, key: &str) -> Result<Option<Duration>, Error> {
        let (ns, name) = split_key(key);
        let Some(cj) = self.cronjobs.get(ns, name) else { return Ok(None) };
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let spec = cj.spec.clone().unwrap_or_default();
        let old = cj.status.clone().unwrap_or_default();
        let mut status = old.clone();
        let owned: Vec<Arc<Job>> = self.jobs.list_namespace(ns).into_iter().filter(|j| controller_ref(&j.metadata).is_some_and(|r| r.uid == uid)).collect();
        let job_api: Api<Job> = Api::namespaced(self.client.clone(), ns);

        // Active list: running owned jobs; record finished ones.
        let mut active: Vec<ObjectReference> = Vec::new();
        for j in &owned {
            if is_finished(j) {
                let was_active = old.active.iter().flatten().any(|r| r.uid == j.metadata.uid);
                let complete = j.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" && c.status == "True"));
                if was_active {
                    self.events.normal(object_ref(cj.as_ref()), "SawCompletedJob", format!("Saw completed job: {}, condition: {}", j.name_any(), if complete { "Complete" } else { "Failed" }));
                }
                if complete {
                    let done = j.status.as_ref().and_then(|s| s.completion_time.clone());
                    if done.as_ref().map(|t| t.0) > status.last_successful_time.as_ref().map(|t| t.0) {
                        status.last_successful_time = done;
                    }
                }
            } else if j.metadata.deletion_timestamp.is_none() {
                active.push(util::object_ref(j.as_ref()));
            }
        }
        active.sort_by(|a, b| a.name.cmp(&b.name));
        status.active = (!active.is_empty()).then_some(active.clone());

        self.cleanup_history(&cj, &owned, &job_api).await?;

        let mut requeue = None;
        if cj.metadata.deletion_timestamp.is_none() && spec.suspend != Some(true) {
            let schedule = Schedule::parse(&spec.schedule);
            let tz = match spec.time_zone.as_deref() {
                Some(name) => TimeZone::get(name).map_err(|e| e.to_string()),
                None => Ok(TimeZone::system()),
            };
            match (schedule, tz) {
                (Ok(schedule), Ok(tz)) => {
                    let now = util::now();
                    let created = cj.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(now);
                    let mut since = status.last_schedule_time.as_ref().map(|t| t.0).unwrap_or(created);
                    if let Some(d) = spec.starting_deadline_seconds {
                        let earliest = Timestamp::from_second(now.as_second() - d).unwrap_or(now);
                        if earliest > since {
                            since = earliest;
                        }
                    }
                    let (scheduled, missed) = most_recent(&schedule, &tz, since, now);
                    if missed > 100 {
                        self.events.warning(object_ref(cj.as_ref()), "TooManyMissedTimes", format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"));
                    }
                    if let Some(t) = scheduled {
                        self.start_job(&cj, &spec, t, &mut status, &active, &job_api).await?;
                    }
                    if let Some(next) = schedule.next(now, &tz) {
                        requeue = Some(Duration::from_millis((next.as_millisecond() - now.as_millisecond()).max(0) as u64 + 100));
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    self.events.warning(object_ref(cj.as_ref()), "UnparseableSchedule", format!("unparseable schedule or time zone: {e}"));
                }
            }
        }
        if status != old {
            let patch = json!({"status": {"active": status.active, "lastScheduleTime": status.last_schedule_time, "lastSuccessfulTime": status.last_successful_time}});
            Api::<CronJob>::namespaced(self.client.clone(), ns).patch_status(name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
        }
        Ok(requeue)
    }

    async fn start_job(
        &self,
        cj: &CronJob,
        spec: &k8s_openapi::api::batch::v1::CronJobSpec,
        t: Timestamp,
        status: &mut k8s_openapi::api::batch::v1::CronJobStatus,
        active: &[ObjectReference],
        job_api: &Api<Job>,
    ) -> Result<(), Error> {
        let job_name = format!("{}-{}", cj.name_any(), t.as_second() / 60);
        let ns = cj.metadata.namespace.as_deref().unwrap_or("");
        if self.jobs.get(ns, &job_name).is_some() {
            status.last_schedule_time = Some(Time(t));
            return Ok(());
        }
        match spec.concurrency_policy.as_deref().unwrap_or("Allow") {
            "Forbid" if !active.is_empty() => {
                info!(cronjob = %cj.name_any(), "not starting job because prior execution is running and concurrency policy is Forbid");
                self.events.normal(object_ref(cj), "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid");
                return Ok(());
            }
            "Replace" => {
                for r in active {
                    let n = r.name.clone().unwrap_or_default();
                    match job_api.delete(&n, &DeleteParams::background()).await {
                        Ok(_) => self.events.normal(object_ref(cj), "SuccessfulDelete", format!("Deleted job {n}")),
                        Err(e) if util::is_status(&e, 404) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            _ => {}
        }
        let tmpl = spec.job_template.clone();
        let tmeta = tmpl.metadata.clone().unwrap_or_default();
        let mut annotations = tmeta.annotations.clone().unwrap_or_default();
        annotations.insert(SCHEDULED_ANNOTATION.into(), t.to_string());
        let job = Job {
            metadata: ObjectMeta {
                name: Some(job_name.clone()),
                namespace: Some(ns.to_string()),
                labels: tmeta.labels.clone(),
                annotations: Some(annotations),
                owner_references: Some(vec![owner_ref(cj)]),
                ..Default::default()
            },
            spec: Some(tmpl.spec.unwrap_or_else(JobSpec::default)),
            status: None,
        };
        match job_api.create(&PostParams::default(), &job).await {
            Ok(j) => {
                self.events.normal(object_ref(cj), "SuccessfulCreate", format!("Created job {job_name}"));
                let mut a = status.active.clone().unwrap_or_default();
                a.push(util::object_ref(&j));
                status.active = Some(a);
            }
            Err(e) if util::is_status(&e, 409) => {}
            Err(e) => {
                self.events.warning(object_ref(cj), "FailedCreate", format!("Error creating job: {e}"));
                return Err(e.into());
            }
        }
        status.last_schedule_time = Some(Time(t));
        Ok(())
    }

    async fn cleanup_history(&self, cj: &CronJob, owned: &[Arc<Job>], api: &Api<Job>) -> Result<(), Error> {
        let spec = cj.spec.clone().unwrap_or_default();
        let ok_limit = spec.successful_jobs_history_limit.unwrap_or(3).max(0) as usize;
        let fail_limit = spec.failed_jobs_history_limit.unwrap_or(1).max(0) as usize;
        let complete = |j: &Job| j.status.as_ref().and_then(|s| s.conditions.as_ref()).is_some_and(|c| c.iter().any(|c| c.type_ == "Complete" && c.status == "True"));
        for (want_complete, limit) in [(true, ok_limit), (false, fail_limit)] {
            let mut finished: Vec<&Arc<Job>> = owned.iter().filter(|j| is_finished(j) && complete(j) == want_complete && j.metadata.deletion_timestamp.is_none()).collect();
            if finished.len() <= limit {
                continue;
            }
            finished.sort_by_key(|j| j.status.as_ref().and_then(|s| s.start_time.as_ref().map(|t| t.0)).or(j.metadata.creation_timestamp.as_ref().map(|t| t.0)));
            let n = finished.len() - limit;
            for j in finished.into_iter().take(n) {
                match api.delete(&j.name_any(), &DeleteParams::background()).await {
                    Ok(_) => self.events.normal(object_ref(cj), "SuccessfulDelete", format!("Deleted job {}", j.name_any())),
                    Err(e) if util::is_status(&e, 404) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_fields_macros_and_names() {
        assert!(Schedule::parse("*/15 0-6 1,15 JAN-MAR mon-fri").is_ok());
        assert_eq!(Schedule::parse("@hourly").unwrap(), Schedule::parse("0 * * * *").unwrap());
        assert!(Schedule::parse("* * *").is_err());
        assert!(Schedule::parse("60 * * * *").is_err());
        assert!(Schedule::parse("*/0 * * * *").is_err());
        assert_eq!(Schedule::parse("0 0 * * 7").unwrap(), Schedule::parse("0 0 * * 0").unwrap());
    }

    #[test]
    fn next_times() {
        let utc = TimeZone::UTC;
        let every5 = Schedule::parse("*/5 * * * *").unwrap();
        assert_eq!(every5.next(ts("2026-01-01T10:03:30Z"), &utc), Some(ts("2026-01-01T10:05:00Z")));
        assert_eq!(every5.next(ts("2026-01-01T10:05:00Z"), &utc), Some(ts("2026-01-01T10:10:00Z")));
        let daily = Schedule::parse("@daily").unwrap();
        assert_eq!(daily.next(ts("2026-01-31T12:00:00Z"), &utc), Some(ts("2026-02-01T00:00:00Z")));
        // Day-of-month OR day-of-week when both are restricted: the 13th or any Friday.
        let s = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(s.next(ts("2026-02-01T00:00:00Z"), &utc), Some(ts("2026-02-06T00:00:00Z")));
        // Time zones: 09:00 in Berlin is 08:00 UTC in winter.
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let nine = Schedule::parse("0 9 * * *").unwrap();
        assert_eq!(nine.next(ts("2026-01-10T00:00:00Z"), &berlin), Some(ts("2026-01-10T08:00:00Z")));
        let (last, n) = most_recent(&every5, &utc, ts("2026-01-01T10:00:00Z"), ts("2026-01-01T10:17:00Z"));
        assert_eq!((last, n), (Some(ts("2026-01-01T10:15:00Z")), 3));
    }
}
