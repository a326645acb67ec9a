//! One scheduling decision over a snapshot, as upstream's `schedulePod`: PreFilter, Filter
//! over an adaptive share of the nodes starting where the last cycle stopped (round-robin),
//! then PreScore/Score/NormalizeScore and a random pick among the best. Pure computation,
//! so it is unit-tested without an API server.

use std::collections::HashSet;

use crate::cache::Snapshot;
use crate::framework::{Code, CycleState, Framework, NodeToStatus, Status};
use crate::plugins::default_preemption::fit_error_message;
use crate::types::{NodeInfo, PodInfo};

/// Below this many nodes every node is evaluated.
pub const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
pub const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;
pub const NO_NODES_MSG: &str = "no nodes available to schedule pods";

/// Upstream's `numFeasibleNodesToFind`.
pub fn num_feasible_nodes_to_find(percentage: i32, num_all: usize) -> usize {
    if num_all < MIN_FEASIBLE_NODES_TO_FIND {
        return num_all;
    }
    let mut pct = percentage as i64;
    if pct == 0 {
        pct = (50 - num_all as i64 / 125).max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    }
    let n = (num_all as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

#[derive(Debug, Clone)]
pub struct ScheduleResult {
    pub node: String,
    pub evaluated: usize,
    pub feasible: usize,
}

/// Why no node fits, with what upstream's FitError carries.
#[derive(Debug, Clone, Default)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub statuses: NodeToStatus,
    /// Set when PreFilter rejected the pod outright.
    pub pre_filter_msg: Option<String>,
    /// Reason given to nodes that were not evaluated (PreFilter narrowed the set).
    pub absent_reason: Option<String>,
    /// PostFilter's (preemption's) message.
    pub post_filter_msg: String,
    pub unschedulable_plugins: HashSet<&'static str>,
}

impl FitError {
    /// "0/3 nodes are available: 1 node(s) had untolerated taint {...}, 2 Insufficient cpu. preemption: ..."
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 {
            return NO_NODES_MSG.to_string();
        }
        let mut m = fit_error_message(
            self.num_all_nodes,
            &self.statuses,
            self.absent_reason.as_deref(),
            self.pre_filter_msg.as_deref(),
        );
        if !self.post_filter_msg.is_empty() {
            m.push_str(&format!(" {}.", self.post_filter_msg));
        }
        m
    }
}

#[derive(Debug, Clone)]
pub enum ScheduleError {
    /// No node fits (Unschedulable).
    Fit(FitError),
    /// A plugin failed (Error): retried with backoff.
    Internal(Status),
}

impl ScheduleError {
    pub fn message(&self) -> String {
        match self {
            ScheduleError::Fit(f) => f.message(),
            ScheduleError::Internal(s) => s.message(),
        }
    }
}

/// Run filters across the nodes starting at `*next_start`; returns feasible node indices and
/// the statuses of rejected nodes.
#[allow(clippy::too_many_arguments)]
fn find_nodes_that_pass_filters(
    fwk: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    candidates: Option<&HashSet<String>>,
    next_start: &mut usize,
    percentage: i32,
    statuses: &mut NodeToStatus,
) -> Result<Vec<usize>, Status> {
    let all = snap.num_nodes();
    let indices: Vec<usize> = match candidates {
        Some(names) => names
            .iter()
            .filter_map(|n| snap.index.get(n).copied())
            .collect(),
        None => Vec::new(),
    };
    let n = if candidates.is_some() {
        indices.len()
    } else {
        all
    };
    if n == 0 {
        return Ok(Vec::new());
    }
    let to_find = num_feasible_nodes_to_find(percentage, n);
    let mut feasible = Vec::with_capacity(to_find.min(n));
    let start = if candidates.is_some() {
        0
    } else {
        *next_start % n
    };
    let mut processed = 0;
    for i in 0..n {
        let idx = indices.get(i).copied().unwrap_or((start + i) % n);
        let node = &snap.nodes[idx];
        if node.node.is_none() {
            continue;
        }
        processed += 1;
        let st = fwk.run_filter_with_nominated(state, pod, node, snap);
        if st.is_success() {
            feasible.push(idx);
            if feasible.len() >= to_find {
                break;
            }
        } else if st.code == Code::Error {
            return Err(st);
        } else {
            statuses.insert(node.name.clone(), st);
        }
    }
    if candidates.is_none() && all > 0 {
        *next_start = (start + processed) % all;
    }
    Ok(feasible)
}

/// Pick the highest total; ties are broken uniformly at random (reservoir sampling).
pub fn select_host(scores: &[(usize, i64)]) -> Option<usize> {
    let mut best: Option<(usize, i64)> = None;
    let mut ties = 0u32;
    for &(idx, s) in scores {
        match best {
            None => {
                best = Some((idx, s));
                ties = 1;
            }
            Some((_, b)) if s > b => {
                best = Some((idx, s));
                ties = 1;
            }
            Some((_, b)) if s == b => {
                ties += 1;
                if rand::random_range(0..ties) == 0 {
                    best = Some((idx, s));
                }
            }
            _ => {}
        }
    }
    best.map(|(i, _)| i)
}

/// Decide where `pod` goes.
/// `percentage` is the global percentageOfNodesToScore (the
/// profile's own setting wins when present).
#[allow(clippy::result_large_err)]
pub fn schedule_pod(
    fwk: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    snap: &Snapshot,
    next_start: &mut usize,
    global_percentage: i32,
) -> Result<ScheduleResult, ScheduleError> {
    let all = snap.num_nodes();
    if all == 0 {
        return Err(ScheduleError::Fit(FitError {
            pre_filter_msg: Some(NO_NODES_MSG.into()),
            ..Default::default()
        }));
    }
    let percentage = fwk
        .percentage_of_nodes_to_score
        .unwrap_or(global_percentage);
    let (pre, st) = fwk.run_pre_filter(state, pod, snap);
    if !st.is_success() {
        if st.is_rejected() {
            let statuses = snap
                .nodes
                .iter()
                .map(|n| (n.name.clone(), st.clone()))
                .collect();
            return Err(ScheduleError::Fit(FitError {
                num_all_nodes: all,
                statuses,
                pre_filter_msg: Some(st.message()),
                unschedulable_plugins: [st.plugin].into_iter().collect(),
                ..Default::default()
            }));
        }
        return Err(ScheduleError::Internal(st));
    }
    let mut statuses = NodeToStatus::new();
    // A nominated node (from an earlier preemption) is tried first.
    if let Some(nom) = pod.nominated_node_name()
        && let Some(&idx) = snap.index.get(nom)
        && pre.node_names.as_ref().is_none_or(|s| s.contains(nom))
    {
        let st = fwk.run_filter_with_nominated(state, pod, &snap.nodes[idx], snap);
        if st.is_success() {
            return Ok(ScheduleResult {
                node: nom.to_string(),
                evaluated: 1,
                feasible: 1,
            });
        }
    }
    let feasible = find_nodes_that_pass_filters(
        fwk,
        state,
        pod,
        snap,
        pre.node_names.as_ref(),
        next_start,
        percentage,
        &mut statuses,
    )
    .map_err(ScheduleError::Internal)?;
    let evaluated = statuses.len() + feasible.len();
    if feasible.is_empty() {
        let unschedulable_plugins = statuses
            .values()
            .map(|s| s.plugin)
            .filter(|p| !p.is_empty())
            .collect();
        let absent_reason = pre
            .node_names
            .as_ref()
            .map(|_| "node(s) didn't satisfy plugin(s) [NodeAffinity]".to_string());
        return Err(ScheduleError::Fit(FitError {
            num_all_nodes: all,
            statuses,
            absent_reason,
            unschedulable_plugins,
            ..Default::default()
        }));
    }
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            node: snap.nodes[feasible[0]].name.clone(),
            evaluated,
            feasible: 1,
        });
    }
    let nodes: Vec<&NodeInfo> = feasible.iter().map(|i| &snap.nodes[*i]).collect();
    let st = fwk.run_pre_score(state, pod, &nodes, snap);
    if !st.is_success() {
        return Err(ScheduleError::Internal(st));
    }
    let totals = fwk
        .run_score(state, pod, &nodes)
        .map_err(ScheduleError::Internal)?;
    let scored: Vec<(usize, i64)> = feasible.iter().copied().zip(totals).collect();
    let idx = select_host(&scored)
        .ok_or_else(|| ScheduleError::Internal(Status::error("no host selected")))?;
    Ok(ScheduleResult {
        node: snap.nodes[idx].name.clone(),
        evaluated,
        feasible: feasible.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SchedulerConfig;
    use crate::plugins::PluginContext;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};

    pub fn default_framework() -> Framework {
        let cfg = SchedulerConfig::default_config();
        let prof = &cfg.profiles[0];
        let ctx = PluginContext::default();
        let instances = prof
            .plugin_names()
            .into_iter()
            .map(|n| {
                (
                    n.clone(),
                    crate::plugins::new_plugin(&n, None, &ctx).unwrap(),
                )
            })
            .collect();
        Framework::new(prof, &instances).unwrap()
    }

    #[test]
    fn adaptive_percentage() {
        assert_eq!(num_feasible_nodes_to_find(0, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(0, 1000), 420);
        assert_eq!(num_feasible_nodes_to_find(0, 5000), 500);
        assert_eq!(num_feasible_nodes_to_find(0, 6000), 300);
        assert_eq!(num_feasible_nodes_to_find(0, 100_000), 5000);
        assert_eq!(num_feasible_nodes_to_find(1, 5000), 100);
        assert_eq!(num_feasible_nodes_to_find(100, 5000), 5000);
    }

    #[test]
    fn picks_least_allocated_fitting_node_and_reports_misfits() {
        let fwk = default_framework();
        let nodes = vec![
            NodeBuilder::new("small").capacity("1", "1Gi").build(),
            NodeBuilder::new("big").capacity("8", "16Gi").build(),
            NodeBuilder::new("tainted")
                .capacity("8", "16Gi")
                .taint("node-role", "master", "NoSchedule")
                .build(),
        ];
        let snap = snapshot(
            nodes,
            vec![
                PodBuilder::new("x")
                    .node("big")
                    .container("1", "1Gi")
                    .build(),
            ],
        );
        let mut start = 0;
        let pod = PodBuilder::new("p").container("500m", "256Mi").info();
        let r = schedule_pod(&fwk, &mut CycleState::default(), &pod, &snap, &mut start, 0).unwrap();
        assert_eq!(r.node, "big");
        assert_eq!(r.feasible, 2);

        let huge = PodBuilder::new("h").container("10", "1Gi").info();
        let err = schedule_pod(
            &fwk,
            &mut CycleState::default(),
            &huge,
            &snap,
            &mut start,
            0,
        )
        .unwrap_err();
        let ScheduleError::Fit(fe) = err else {
            panic!("expected a fit error")
        };
        assert_eq!(
            fe.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role: master}, 2 Insufficient cpu."
        );
        assert!(fe.unschedulable_plugins.contains("NodeResourcesFit"));
        assert!(fe.unschedulable_plugins.contains("TaintToleration"));
    }

    #[test]
    fn no_nodes() {
        let fwk = default_framework();
        let snap = snapshot(vec![], vec![]);
        let err = schedule_pod(
            &fwk,
            &mut CycleState::default(),
            &PodBuilder::new("p").info(),
            &snap,
            &mut 0,
            0,
        )
        .unwrap_err();
        assert_eq!(err.message(), "no nodes available to schedule pods");
    }

    #[test]
    fn round_robin_start_advances() {
        let fwk = default_framework();
        let nodes: Vec<_> = (0..300)
            .map(|i| {
                NodeBuilder::new(&format!("n{i}"))
                    .capacity("4", "8Gi")
                    .build()
            })
            .collect();
        let snap = snapshot(nodes, vec![]);
        let mut start = 0;
        let pod = PodBuilder::new("p").container("100m", "").info();
        let r = schedule_pod(&fwk, &mut CycleState::default(), &pod, &snap, &mut start, 0).unwrap();
        // 300 nodes → 50 - 2 = 48% → 144 nodes evaluated, so the next cycle starts at 144.
        assert_eq!(r.evaluated, 144);
        assert_eq!(start, 144);
        schedule_pod(&fwk, &mut CycleState::default(), &pod, &snap, &mut start, 0).unwrap();
        assert_eq!(start, 288);
        schedule_pod(&fwk, &mut CycleState::default(), &pod, &snap, &mut start, 0).unwrap();
        assert_eq!(start, (288 + 144) % 300);
    }

    #[test]
    fn ties_are_broken_randomly_among_best() {
        let scores = [(0, 5), (1, 9), (2, 9), (3, 1)];
        let mut seen = HashSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&scores).unwrap());
        }
        assert_eq!(seen, [1, 2].into_iter().collect());
        assert_eq!(select_host(&[]), None);
    }

    #[test]
    fn nominated_pods_reserve_room() {
        let fwk = default_framework();
        let mut cache = crate::cache::Cache::default();
        cache.add_node(std::sync::Arc::new(
            NodeBuilder::new("n1").capacity("1", "1Gi").build(),
        ));
        let nominee = PodBuilder::new("nom")
            .priority(100)
            .container("1", "")
            .info();
        cache.set_nominated(nominee, Some("n1"));
        let low = PodBuilder::new("low").priority(1).container("1", "").info();
        let err = schedule_pod(
            &fwk,
            &mut CycleState::default(),
            &low,
            cache.snapshot(),
            &mut 0,
            0,
        );
        assert!(
            err.is_err(),
            "a lower-priority pod must not take the nominated room"
        );
        let higher = PodBuilder::new("hi")
            .priority(1000)
            .container("1", "")
            .info();
        assert!(
            schedule_pod(
                &fwk,
                &mut CycleState::default(),
                &higher,
                cache.snapshot(),
                &mut 0,
                0
            )
            .is_ok()
        );
    }
}
