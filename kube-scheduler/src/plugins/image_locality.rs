//! ImageLocality: favours nodes that already have the pod's container images, weighted by
//! image size and by how widely the image is spread (to avoid piling pods onto one node).

use std::collections::HashMap;

use crate::cache::Snapshot;
use crate::framework::*;
use crate::types::{NodeInfo, PodInfo, normalize_image};

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;
const KEY: &str = "PreScoreImageLocality";

pub struct ImageLocality;

#[derive(Clone)]
struct State {
    total_nodes: usize,
    /// The pod's images (normalized) with how many nodes have each.
    images: Vec<(String, usize)>,
    containers: usize,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn as_score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[&NodeInfo],
        snap: &Snapshot,
    ) -> Status {
        let Some(spec) = pod.spec() else {
            return Status::skip();
        };
        let containers: Vec<_> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect();
        let images = containers
            .iter()
            .filter_map(|c| c.image.as_deref())
            .map(normalize_image)
            .map(|i| {
                let n = snap.image_nodes.get(&i).copied().unwrap_or(0);
                (i, n)
            })
            .collect();
        state.write(
            KEY,
            State {
                total_nodes: snap.num_nodes().max(1),
                images,
                containers: containers.len(),
            },
        );
        Status::success()
    }
}

fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max.max(MIN_THRESHOLD));
    if max <= MIN_THRESHOLD {
        return 0;
    }
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}

/// Sum of image sizes present on the node, scaled by their spread.
fn sum_image_scores(
    images: &[(String, usize)],
    node_images: &HashMap<String, i64>,
    total: usize,
) -> i64 {
    images
        .iter()
        .filter_map(|(img, n)| {
            node_images
                .get(img)
                .map(|size| (*size as f64 * (*n as f64 / total as f64)) as i64)
        })
        .sum()
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let Some(s) = state.read::<State>(KEY) else {
            return Ok(0);
        };
        Ok(calculate_priority(
            sum_image_scores(&s.images, &node.images, s.total_nodes),
            s.containers,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{NodeBuilder, PodBuilder, snapshot};

    #[test]
    fn nodes_with_big_widespread_images_win() {
        let nodes = vec![
            NodeBuilder::new("a").image("big:1", 500 * MB).build(),
            NodeBuilder::new("b")
                .image("big:1", 500 * MB)
                .image("small:1", 10 * MB)
                .build(),
            NodeBuilder::new("c").build(),
        ];
        let snap = snapshot(nodes, vec![]);
        let mut pod = PodBuilder::new("p").build();
        pod.spec.as_mut().unwrap().containers[0].image = Some("big:1".into());
        let pi = crate::testing::pod_info(pod);
        let mut s = CycleState::default();
        ImageLocality.pre_score(&mut s, &pi, &[], &snap);
        let score = |n: &str| ImageLocality.score(&s, &pi, snap.get(n).unwrap()).unwrap();
        // 500MB * 2/3 spread ≈ 333MB; (333-23)/(1000-23) * 100 = 31.
        assert_eq!(score("a"), 31);
        assert_eq!(score("b"), 31);
        assert_eq!(score("c"), 0);
        // Images below the minimum threshold score 0.
        let mut small = PodBuilder::new("q").build();
        small.spec.as_mut().unwrap().containers[0].image = Some("small:1".into());
        let si = crate::testing::pod_info(small);
        let mut s2 = CycleState::default();
        ImageLocality.pre_score(&mut s2, &si, &[], &snap);
        assert_eq!(
            ImageLocality
                .score(&s2, &si, snap.get("b").unwrap())
                .unwrap(),
            0
        );
        // Untagged images mean :latest.
        let mut latest = PodBuilder::new("r").build();
        latest.spec.as_mut().unwrap().containers[0].image = Some("big".into());
        let li = crate::testing::pod_info(latest);
        let mut s3 = CycleState::default();
        ImageLocality.pre_score(&mut s3, &li, &[], &snap);
        assert_eq!(s3.read::<State>(KEY).unwrap().images[0].0, "big:latest");
    }
}
