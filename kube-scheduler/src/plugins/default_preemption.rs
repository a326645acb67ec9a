//! DefaultPreemption (PostFilter): when no node fits, find nodes where evicting pods of lower
//! priority would make room, keep as many of them as still fit (PodDisruptionBudget-protected
//! pods first), pick the node with the least damage (PDB violations, highest victim priority,
//! priority sum, victim count, newest start) and nominate it. The scheduler then evicts the
//! victims and sets `status.nominatedNodeName`.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde::Deserialize;

use crate::cache::Snapshot;
use crate::config::{ConfigError, decode_args};
use crate::framework::*;
use crate::plugins::PluginContext;
use crate::selector::LabelSelectorExt;
use crate::types::{NodeInfo, PodInfo};

pub const NAME: &str = "DefaultPreemption";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Args {
    #[serde(default = "ten")]
    min_candidate_nodes_percentage: i64,
    #[serde(default = "hundred")]
    min_candidate_nodes_absolute: i64,
}

fn ten() -> i64 {
    10
}
fn hundred() -> i64 {
    100
}

impl Default for Args {
    fn default() -> Self {
        Args {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

pub struct DefaultPreemption {
    pct: i64,
    abs: i64,
    ctx: PluginContext,
}

/// A node where preemption works, with what it costs.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Sorted by importance, most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub pdb_violations: usize,
}

/// Build the FitError-style message upstream uses: "0/N nodes are available: <histogram>."
pub fn fit_error_message(
    num_nodes: usize,
    statuses: &NodeToStatus,
    absent_reason: Option<&str>,
    pre_filter_msg: Option<&str>,
) -> String {
    let mut msg = format!("0/{num_nodes} nodes are available:");
    if let Some(pf) = pre_filter_msg.filter(|m| !m.is_empty()) {
        msg.push_str(&format!(" {pf}."));
        return msg;
    }
    let mut hist: HashMap<&str, usize> = HashMap::new();
    for st in statuses.values() {
        for r in &st.reasons {
            *hist.entry(r.as_ref()).or_default() += 1;
        }
    }
    if let Some(r) = absent_reason
        && statuses.len() < num_nodes
    {
        *hist.entry(r).or_default() += num_nodes - statuses.len();
    }
    let mut parts: Vec<String> = hist.into_iter().map(|(r, c)| format!("{c} {r}")).collect();
    parts.sort();
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

/// Upstream's MoreImportantPod: higher priority, then earlier start.
fn more_important(a: &PodInfo, b: &PodInfo) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then_with(|| match (a.start_time(), b.start_time()) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
}

/// Split pods into (violating, non-violating) given the PDBs' remaining disruption budgets.
pub fn split_by_pdb(
    pods: Vec<Arc<PodInfo>>,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let mut allowed: Vec<i64> = pdbs
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .map(|s| s.disruptions_allowed as i64)
                .unwrap_or(0)
        })
        .collect();
    let selectors: Vec<_> = pdbs
        .iter()
        .map(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .map(|s| s.compile())
        })
        .collect();
    let (mut violating, mut ok) = (Vec::new(), Vec::new());
    for pod in pods {
        let mut violated = false;
        if !pod.labels.is_empty() {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace.as_deref() != Some(pod.namespace.as_str()) {
                    continue;
                }
                let Some(sel) = &selectors[i] else { continue };
                if sel.is_empty() || !sel.matches(&pod.labels) {
                    continue;
                }
                if pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(&pod.name))
                {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(pod)
        } else {
            ok.push(pod)
        }
    }
    (violating, ok)
}

impl DefaultPreemption {
    pub fn new(args: Option<&serde_json::Value>, ctx: PluginContext) -> Result<Self, ConfigError> {
        let a: Args = decode_args(NAME, args)?;
        if !(0..=100).contains(&a.min_candidate_nodes_percentage)
            || a.min_candidate_nodes_absolute < 0
        {
            return Err(ConfigError::Args { plugin: NAME.into(), message: "minCandidateNodesPercentage must be in 0..100 and minCandidateNodesAbsolute >= 0".into() });
        }
        Ok(DefaultPreemption {
            pct: a.min_candidate_nodes_percentage,
            abs: a.min_candidate_nodes_absolute,
            ctx,
        })
    }

    fn pdbs(&self) -> Vec<Arc<PodDisruptionBudget>> {
        self.ctx
            .pdbs
            .as_ref()
            .map(|s| s.state())
            .unwrap_or_default()
    }

    /// Victims needed on `node`, or the reason preemption cannot help there.
    pub fn select_victims(
        &self,
        fwk: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        snap: &Snapshot,
        pdbs: &[Arc<PodDisruptionBudget>],
    ) -> Result<Candidate, Status> {
        let mut st = state.clone();
        let mut ni = node.clone();
        let mut potential: Vec<Arc<PodInfo>> = node
            .pods
            .iter()
            .filter(|p| p.priority < pod.priority)
            .cloned()
            .collect();
        if potential.is_empty() {
            return Err(Status::unresolvable(NO_VICTIMS));
        }
        for v in &potential {
            ni.remove_pod(&v.uid);
            fwk.run_remove_pod(&mut st, pod, v, &ni, snap);
        }
        let fits = fwk.run_filter_with_nominated(&st, pod, &ni, snap);
        if !fits.is_success() {
            return Err(fits);
        }
        potential.sort_by(|a, b| more_important(a, b));
        let (violating, non_violating) = split_by_pdb(potential, pdbs);
        let mut victims = Vec::new();
        let mut pdb_violations = 0;
        for (group, is_violating) in [(violating, true), (non_violating, false)] {
            for v in group {
                ni.add_pod(v.clone());
                fwk.run_add_pod(&mut st, pod, &v, &ni, snap);
                if !fwk
                    .run_filter_with_nominated(&st, pod, &ni, snap)
                    .is_success()
                {
                    ni.remove_pod(&v.uid);
                    fwk.run_remove_pod(&mut st, pod, &v, &ni, snap);
                    if is_violating {
                        pdb_violations += 1;
                    }
                    victims.push(v);
                }
            }
        }
        victims.sort_by(|a, b| more_important(a, b));
        Ok(Candidate {
            node: node.name.clone(),
            victims,
            pdb_violations,
        })
    }
}

fn narrow<'a>(best: Vec<&'a Candidate>, key: &dyn Fn(&Candidate) -> i64) -> Vec<&'a Candidate> {
    let m = best.iter().map(|c| key(c)).min().unwrap_or(0);
    best.into_iter().filter(|c| key(c) == m).collect()
}

/// Upstream's pickOneNodeForPreemption.
pub fn pick_one(candidates: &[Candidate]) -> Option<&Candidate> {
    if let Some(c) = candidates.iter().find(|c| c.victims.is_empty()) {
        return Some(c);
    }
    let highest = |c: &Candidate| {
        c.victims
            .first()
            .map(|v| v.priority as i64)
            .unwrap_or(i64::MIN)
    };
    let sum = |c: &Candidate| {
        c.victims
            .iter()
            .map(|v| v.priority as i64 + i32::MAX as i64 + 1)
            .sum::<i64>()
    };
    // Latest earliest-start-time among the highest-priority victims wins the last tie.
    let earliest = |c: &Candidate| {
        let h = c.victims.first().map(|v| v.priority);
        c.victims
            .iter()
            .filter(|v| Some(v.priority) == h)
            .filter_map(|v| v.start_time())
            .min()
    };
    let mut best: Vec<&Candidate> = candidates.iter().collect();
    best = narrow(best, &|c| c.pdb_violations as i64);
    best = narrow(best, &highest);
    best = narrow(best, &sum);
    best = narrow(best, &|c| c.victims.len() as i64);
    if best.len() > 1 {
        let latest = best.iter().filter_map(|c| earliest(c)).max();
        if let Some(l) = latest
            && let Some(c) = best.iter().find(|c| earliest(c) == Some(l))
        {
            return Some(c);
        }
    }
    best.first().copied()
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
        fwk: &Framework,
        statuses: &NodeToStatus,
    ) -> (PostFilterResult, Status) {
        let wrap = |m: String| Status::unschedulable(format!("preemption: {m}"));
        let policy = pod.spec().and_then(|s| s.preemption_policy.as_deref());
        if policy == Some("Never") {
            return (
                PostFilterResult::default(),
                wrap("not eligible due to preemptionPolicy=Never.".into()),
            );
        }
        if let Some(nom) = pod.nominated_node_name() {
            let nom_unresolvable = statuses
                .get(nom)
                .is_some_and(|s| s.code == Code::UnschedulableAndUnresolvable);
            if !nom_unresolvable
                && let Some(ni) = snap.get(nom)
                && ni
                    .pods
                    .iter()
                    .any(|p| p.priority < pod.priority && p.terminating)
            {
                return (
                    PostFilterResult::default(),
                    wrap("not eligible due to a terminating pod on the nominated node.".into()),
                );
            }
        }
        let potential: Vec<&NodeInfo> = snap
            .nodes
            .iter()
            .filter(|n| {
                statuses
                    .get(&n.name)
                    .is_some_and(|s| s.code == Code::Unschedulable)
            })
            .collect();
        let n_all = snap.num_nodes();
        let mut dry_run_statuses = NodeToStatus::new();
        let mut candidates = Vec::new();
        if !potential.is_empty() {
            let pdbs = self.pdbs();
            let want = ((n_all as i64 * self.pct / 100).max(self.abs) as usize)
                .min(potential.len())
                .max(1);
            let offset = rand::random_range(0..potential.len());
            for i in 0..potential.len() {
                let node = potential[(offset + i) % potential.len()];
                match self.select_victims(fwk, state, pod, node, snap, &pdbs) {
                    Ok(c) => {
                        candidates.push(c);
                        if candidates.len() >= want {
                            break;
                        }
                    }
                    Err(st) => {
                        dry_run_statuses.insert(node.name.clone(), st);
                    }
                }
            }
        }
        let Some(best) = pick_one(&candidates).cloned() else {
            let msg = fit_error_message(n_all, &dry_run_statuses, Some(NOT_HELPFUL), None);
            return (PostFilterResult::default(), wrap(msg));
        };
        let clear_nominations = snap
            .nominated
            .get(&best.node)
            .map(|v| {
                v.iter()
                    .filter(|p| p.priority < pod.priority && p.uid != pod.uid)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        (
            PostFilterResult {
                nominated_node: Some(best.node),
                victims: best.victims,
                clear_nominations,
            },
            Status::success(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfig;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};
    use k8s_openapi::api::core::v1::Pod;

    fn framework(ctx: &PluginContext) -> Framework {
        let cfg = SchedulerConfig::default_config();
        let prof = &cfg.profiles[0];
        let instances = prof
            .plugin_names()
            .into_iter()
            .map(|n| {
                let p = crate::plugins::new_plugin(&n, prof.plugin_args.get(&n), ctx).unwrap();
                (n, p)
            })
            .collect();
        Framework::new(prof, &instances).unwrap()
    }

    /// Run the framework's filters on every node, then PostFilter.
    fn preempt(
        pod: &Arc<PodInfo>,
        snap: &Snapshot,
        ctx: &PluginContext,
    ) -> (PostFilterResult, Status) {
        let fwk = framework(ctx);
        let mut state = CycleState::default();
        let (_, st) = fwk.run_pre_filter(&mut state, pod, snap);
        assert!(st.is_success() || st.is_skip(), "{st:?}");
        let statuses: NodeToStatus = snap
            .nodes
            .iter()
            .map(|n| (n.name.clone(), fwk.run_filter(&state, pod, n)))
            .filter(|(_, s)| !s.is_success())
            .collect();
        assert_eq!(
            statuses.len(),
            snap.num_nodes(),
            "test pods must fit nowhere"
        );
        fwk.run_post_filter(&state, pod, snap, &statuses)
    }

    fn lowp(name: &str, node: &str, prio: i32, cpu: &str) -> Pod {
        PodBuilder::new(name)
            .label("app", name)
            .node(node)
            .priority(prio)
            .container(cpu, "")
            .build()
    }

    #[test]
    fn evicts_minimal_lower_priority_victims() {
        let nodes = vec![NodeBuilder::new("n1").capacity("2", "4Gi").build()];
        let pods = vec![lowp("a", "n1", 1, "1"), lowp("b", "n1", 5, "1")];
        let snap = snapshot(nodes, pods);
        let pod = PodBuilder::new("hi").priority(10).container("1", "").info();
        let (r, st) = preempt(&pod, &snap, &PluginContext::default());
        assert!(st.is_success(), "{st:?}");
        assert_eq!(r.nominated_node.as_deref(), Some("n1"));
        let names: Vec<&str> = r.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a"], "only the lowest-priority pod needs to go");
    }

    #[test]
    fn no_lower_priority_pods_means_no_victims() {
        let nodes = vec![
            NodeBuilder::new("n1").capacity("1", "4Gi").build(),
            NodeBuilder::new("n2")
                .capacity("1", "4Gi")
                .taint("k", "v", "NoSchedule")
                .build(),
        ];
        let snap = snapshot(nodes, vec![lowp("a", "n1", 100, "1")]);
        let pod = PodBuilder::new("hi").priority(10).container("1", "").info();
        let (r, st) = preempt(&pod, &snap, &PluginContext::default());
        assert!(r.nominated_node.is_none());
        assert_eq!(
            st.message(),
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming pod, 1 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn preemption_policy_never() {
        let snap = snapshot(
            vec![NodeBuilder::new("n1").capacity("1", "1Gi").build()],
            vec![lowp("a", "n1", 0, "1")],
        );
        let mut p = PodBuilder::new("hi")
            .priority(10)
            .container("1", "")
            .build();
        p.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        let (r, st) = preempt(
            &Arc::new(crate::testing::pod_info(p)),
            &snap,
            &PluginContext::default(),
        );
        assert!(r.nominated_node.is_none());
        assert_eq!(
            st.message(),
            "preemption: not eligible due to preemptionPolicy=Never."
        );
    }

    #[test]
    fn prefers_nodes_without_pdb_violations() {
        let nodes = vec![
            NodeBuilder::new("n1").capacity("1", "4Gi").build(),
            NodeBuilder::new("n2").capacity("1", "4Gi").build(),
        ];
        let snap = snapshot(
            nodes,
            vec![lowp("guarded", "n1", 1, "1"), lowp("free", "n2", 1, "1")],
        );
        let (store, mut w) = kube::runtime::reflector::store::<PodDisruptionBudget>();
        let pdb = PodDisruptionBudget {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("pdb".into()),
                namespace: Some("default".into()),
                ..Default::default()
            },
            spec: Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetSpec {
                selector: Some(crate::testing::selector(&[("app", "guarded")])),
                ..Default::default()
            }),
            status: Some(k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus {
                disruptions_allowed: 0,
                ..Default::default()
            }),
        };
        w.apply_watcher_event(&kube::runtime::watcher::Event::Apply(pdb));
        let ctx = PluginContext {
            pdbs: Some(store),
            ..Default::default()
        };
        let pod = PodBuilder::new("hi").priority(10).container("1", "").info();
        for _ in 0..5 {
            let (r, st) = preempt(&pod, &snap, &ctx);
            assert!(st.is_success());
            assert_eq!(r.nominated_node.as_deref(), Some("n2"));
        }
    }

    #[test]
    fn pick_prefers_lower_victim_priority_then_fewer_victims() {
        let v = |n: &str, p: i32| {
            Arc::new(crate::testing::pod_info(
                PodBuilder::new(n).priority(p).build(),
            ))
        };
        let c1 = Candidate {
            node: "a".into(),
            victims: vec![v("x", 5)],
            pdb_violations: 0,
        };
        let c2 = Candidate {
            node: "b".into(),
            victims: vec![v("y", 3), v("z", 3)],
            pdb_violations: 0,
        };
        let c3 = Candidate {
            node: "c".into(),
            victims: vec![v("w", 3)],
            pdb_violations: 0,
        };
        assert_eq!(pick_one(&[c1.clone(), c2.clone()]).unwrap().node, "b");
        assert_eq!(pick_one(&[c1, c2, c3]).unwrap().node, "c");
    }

    #[test]
    fn fit_error_format_matches_upstream() {
        let mut s = NodeToStatus::new();
        s.insert(
            "a".into(),
            Status::unresolvable("node(s) had untolerated taint {node-role: master}"),
        );
        s.insert("b".into(), Status::unschedulable("Insufficient cpu"));
        s.insert("c".into(), Status::unschedulable("Insufficient cpu"));
        assert_eq!(
            fit_error_message(3, &s, None, None),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role: master}, 2 Insufficient cpu."
        );
        assert_eq!(
            fit_error_message(3, &NodeToStatus::new(), None, Some("boom")),
            "0/3 nodes are available: boom."
        );
    }
}
