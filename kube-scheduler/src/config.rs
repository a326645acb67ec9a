//! `KubeSchedulerConfiguration` (kubescheduler.config.k8s.io/v1): the YAML given to `--config`,
//! its defaults, and how each profile's plugin sets resolve against the default multiPoint set
//! (disable by name or `*`, enable to append or to re-weight in place, per-point overrides).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::Deserialize;

pub const API_VERSION: &str = "kubescheduler.config.k8s.io/v1";
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("decoding KubeSchedulerConfiguration: {0}")]
    Decode(#[from] serde_yaml::Error),
    #[error(
        "unsupported apiVersion/kind {0:?}/{1:?}: expected {API_VERSION} KubeSchedulerConfiguration"
    )]
    Kind(String, String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("plugin {plugin}: invalid args: {message}")]
    Args { plugin: String, message: String },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KubeSchedulerConfiguration {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub parallelism: Option<i32>,
    pub leader_election: Option<LeaderElectionConfiguration>,
    pub client_connection: Option<ClientConnection>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub pod_initial_backoff_seconds: Option<i64>,
    pub pod_max_backoff_seconds: Option<i64>,
    #[serde(default)]
    pub profiles: Vec<Profile>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LeaderElectionConfiguration {
    pub leader_elect: Option<bool>,
    pub lease_duration: Option<String>,
    pub renew_deadline: Option<String>,
    pub retry_period: Option<String>,
    pub resource_lock: Option<String>,
    pub resource_name: Option<String>,
    pub resource_namespace: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClientConnection {
    pub kubeconfig: Option<String>,
    pub qps: Option<f64>,
    pub burst: Option<i64>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub scheduler_name: Option<String>,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub plugins: Option<Plugins>,
    #[serde(default)]
    pub plugin_config: Vec<PluginConfig>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Plugins {
    pub pre_enqueue: Option<PluginSet>,
    pub queue_sort: Option<PluginSet>,
    pub pre_filter: Option<PluginSet>,
    pub filter: Option<PluginSet>,
    pub post_filter: Option<PluginSet>,
    pub pre_score: Option<PluginSet>,
    pub score: Option<PluginSet>,
    pub reserve: Option<PluginSet>,
    pub permit: Option<PluginSet>,
    pub pre_bind: Option<PluginSet>,
    pub bind: Option<PluginSet>,
    pub post_bind: Option<PluginSet>,
    pub multi_point: Option<PluginSet>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PluginSet {
    #[serde(default)]
    pub enabled: Vec<PluginRef>,
    #[serde(default)]
    pub disabled: Vec<PluginRef>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PluginRef {
    pub name: String,
    pub weight: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginConfig {
    pub name: String,
    #[serde(default)]
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExtensionPoint {
    PreEnqueue,
    QueueSort,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

impl ExtensionPoint {
    pub const ALL: [ExtensionPoint; 12] = [
        ExtensionPoint::PreEnqueue,
        ExtensionPoint::QueueSort,
        ExtensionPoint::PreFilter,
        ExtensionPoint::Filter,
        ExtensionPoint::PostFilter,
        ExtensionPoint::PreScore,
        ExtensionPoint::Score,
        ExtensionPoint::Reserve,
        ExtensionPoint::Permit,
        ExtensionPoint::PreBind,
        ExtensionPoint::Bind,
        ExtensionPoint::PostBind,
    ];

    fn of(self, p: &Plugins) -> Option<&PluginSet> {
        match self {
            ExtensionPoint::PreEnqueue => p.pre_enqueue.as_ref(),
            ExtensionPoint::QueueSort => p.queue_sort.as_ref(),
            ExtensionPoint::PreFilter => p.pre_filter.as_ref(),
            ExtensionPoint::Filter => p.filter.as_ref(),
            ExtensionPoint::PostFilter => p.post_filter.as_ref(),
            ExtensionPoint::PreScore => p.pre_score.as_ref(),
            ExtensionPoint::Score => p.score.as_ref(),
            ExtensionPoint::Reserve => p.reserve.as_ref(),
            ExtensionPoint::Permit => p.permit.as_ref(),
            ExtensionPoint::PreBind => p.pre_bind.as_ref(),
            ExtensionPoint::Bind => p.bind.as_ref(),
            ExtensionPoint::PostBind => p.post_bind.as_ref(),
        }
    }
}

/// Upstream v1's default multiPoint set, in order, with score weights.
pub const DEFAULT_MULTI_POINT: &[(&str, i64)] = &[
    ("SchedulingGates", 0),
    ("PrioritySort", 0),
    ("NodeUnschedulable", 0),
    ("NodeName", 0),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", 0),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DefaultPreemption", 0),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", 0),
];

/// One plugin at one extension point after resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointEntry {
    pub name: String,
    pub weight: i64,
    /// Came from multiPoint: skipped silently at points the plugin does not implement.
    pub from_multi_point: bool,
}

/// A profile with its plugin sets resolved against the defaults.
#[derive(Debug, Clone)]
pub struct ResolvedProfile {
    pub scheduler_name: String,
    pub percentage_of_nodes_to_score: Option<i32>,
    pub points: HashMap<ExtensionPoint, Vec<PointEntry>>,
    pub plugin_args: HashMap<String, serde_json::Value>,
}

impl ResolvedProfile {
    /// Every plugin the profile uses.
    pub fn plugin_names(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for point in ExtensionPoint::ALL {
            for e in self.points.get(&point).into_iter().flatten() {
                if seen.insert(e.name.clone()) {
                    out.push(e.name.clone());
                }
            }
        }
        out
    }
}

/// The whole configuration after defaulting.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub raw: KubeSchedulerConfiguration,
    pub percentage_of_nodes_to_score: i32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub profiles: Vec<ResolvedProfile>,
}

impl SchedulerConfig {
    pub fn default_config() -> SchedulerConfig {
        Self::from_config(KubeSchedulerConfiguration::default())
            .expect("the built-in default configuration is valid")
    }

    pub fn from_file(path: &std::path::Path) -> Result<SchedulerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    pub fn from_yaml(text: &str) -> Result<SchedulerConfig, ConfigError> {
        let raw: KubeSchedulerConfiguration = serde_yaml::from_str(text)?;
        let (av, kind) = (
            raw.api_version.clone().unwrap_or_default(),
            raw.kind.clone().unwrap_or_default(),
        );
        if av != API_VERSION || kind != "KubeSchedulerConfiguration" {
            return Err(ConfigError::Kind(av, kind));
        }
        Self::from_config(raw)
    }

    pub fn from_config(raw: KubeSchedulerConfiguration) -> Result<SchedulerConfig, ConfigError> {
        let pct = raw.percentage_of_nodes_to_score.unwrap_or(0);
        if !(0..=100).contains(&pct) {
            return Err(ConfigError::Invalid(format!(
                "percentageOfNodesToScore {pct} not in 0..100"
            )));
        }
        let initial = raw.pod_initial_backoff_seconds.unwrap_or(1);
        let max = raw.pod_max_backoff_seconds.unwrap_or(10);
        if initial <= 0 || max < initial {
            return Err(ConfigError::Invalid(
                "podInitialBackoffSeconds must be > 0 and <= podMaxBackoffSeconds".into(),
            ));
        }
        let mut profiles = Vec::new();
        let raw_profiles = if raw.profiles.is_empty() {
            vec![Profile::default()]
        } else {
            raw.profiles.clone()
        };
        let mut names = HashSet::new();
        for p in &raw_profiles {
            let r = resolve_profile(p)?;
            if !names.insert(r.scheduler_name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "duplicate profile {}",
                    r.scheduler_name
                )));
            }
            profiles.push(r);
        }
        Ok(SchedulerConfig {
            raw,
            percentage_of_nodes_to_score: pct,
            initial_backoff: Duration::from_secs(initial as u64),
            max_backoff: Duration::from_secs(max as u64),
            profiles,
        })
    }
}

fn disabled_set(set: Option<&PluginSet>) -> (bool, HashSet<String>) {
    let mut all = false;
    let mut names = HashSet::new();
    for d in set.into_iter().flat_map(|s| &s.disabled) {
        if d.name == "*" {
            all = true;
        } else {
            names.insert(d.name.clone());
        }
    }
    (all, names)
}

/// Resolve a profile's plugins against [`DEFAULT_MULTI_POINT`].
pub fn resolve_profile(p: &Profile) -> Result<ResolvedProfile, ConfigError> {
    let scheduler_name = p
        .scheduler_name
        .clone()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SCHEDULER_NAME.to_string());
    if let Some(pct) = p.percentage_of_nodes_to_score
        && !(0..=100).contains(&pct)
    {
        return Err(ConfigError::Invalid(format!(
            "profile {scheduler_name}: percentageOfNodesToScore {pct} not in 0..100"
        )));
    }
    let plugins = p.plugins.clone().unwrap_or_default();

    // multiPoint: defaults minus disabled, custom entries replacing defaults in place, then
    // the remaining custom entries appended.
    let (mp_all_disabled, mp_disabled) = disabled_set(plugins.multi_point.as_ref());
    let custom_mp: Vec<PluginRef> = plugins
        .multi_point
        .as_ref()
        .map(|s| s.enabled.clone())
        .unwrap_or_default();
    let mut multi: Vec<(String, i64)> = Vec::new();
    let mut used_custom = HashSet::new();
    if !mp_all_disabled {
        for (name, w) in DEFAULT_MULTI_POINT {
            if mp_disabled.contains(*name) {
                continue;
            }
            match custom_mp.iter().position(|c| c.name == *name) {
                Some(i) => {
                    used_custom.insert(i);
                    multi.push((name.to_string(), custom_mp[i].weight.unwrap_or(*w)));
                }
                None => multi.push((name.to_string(), *w)),
            }
        }
    }
    for (i, c) in custom_mp.iter().enumerate() {
        if !used_custom.contains(&i) {
            if multi.iter().any(|(n, _)| *n == c.name) {
                return Err(ConfigError::Invalid(format!(
                    "profile {scheduler_name}: plugin {} enabled twice in multiPoint",
                    c.name
                )));
            }
            multi.push((c.name.clone(), c.weight.unwrap_or(0)));
        }
    }

    let mut points = HashMap::new();
    for point in ExtensionPoint::ALL {
        let set = point.of(&plugins);
        let (all_disabled, disabled) = disabled_set(set);
        let mut entries: Vec<PointEntry> = Vec::new();
        for e in set.into_iter().flat_map(|s| &s.enabled) {
            if entries.iter().any(|x| x.name == e.name) {
                return Err(ConfigError::Invalid(format!(
                    "profile {scheduler_name}: plugin {} enabled twice at {point:?}",
                    e.name
                )));
            }
            let mp_weight = multi.iter().find(|(n, _)| *n == e.name).map(|(_, w)| *w);
            entries.push(PointEntry {
                name: e.name.clone(),
                weight: e.weight.or(mp_weight).unwrap_or(0),
                from_multi_point: false,
            });
        }
        if !all_disabled {
            for (name, w) in &multi {
                if disabled.contains(name) || entries.iter().any(|x| x.name == *name) {
                    continue;
                }
                entries.push(PointEntry {
                    name: name.clone(),
                    weight: *w,
                    from_multi_point: true,
                });
            }
        }
        if point == ExtensionPoint::Score {
            for e in entries.iter_mut() {
                if e.weight == 0 {
                    e.weight = 1;
                }
                if e.weight < 0 || e.weight > 100 {
                    return Err(ConfigError::Invalid(format!(
                        "profile {scheduler_name}: score plugin {} weight {} not in 1..100",
                        e.name, e.weight
                    )));
                }
            }
        }
        points.insert(point, entries);
    }

    let mut plugin_args = HashMap::new();
    for pc in &p.plugin_config {
        if plugin_args
            .insert(pc.name.clone(), pc.args.clone())
            .is_some()
        {
            return Err(ConfigError::Invalid(format!(
                "profile {scheduler_name}: duplicate pluginConfig for {}",
                pc.name
            )));
        }
    }
    Ok(ResolvedProfile {
        scheduler_name,
        percentage_of_nodes_to_score: p.percentage_of_nodes_to_score,
        points,
        plugin_args,
    })
}

/// Decode plugin args (camelCase JSON) into `T`, defaults for missing fields.
pub fn decode_args<T: serde::de::DeserializeOwned + Default>(
    plugin: &str,
    args: Option<&serde_json::Value>,
) -> Result<T, ConfigError> {
    match args {
        None | Some(serde_json::Value::Null) => Ok(T::default()),
        Some(v) => {
            // Tolerate apiVersion/kind inside args, as upstream's typed args carry them.
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("apiVersion");
                o.remove("kind");
            }
            serde_json::from_value(v).map_err(|e| ConfigError::Args {
                plugin: plugin.to_string(),
                message: e.to_string(),
            })
        }
    }
}

/// Named resource with weight (NodeResourcesFit / BalancedAllocation args).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceSpec {
    pub name: String,
    #[serde(default)]
    pub weight: i64,
}

/// Silence "unused" for BTreeMap in doc examples of args maps.
pub type ArgsMap = BTreeMap<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(r: &ResolvedProfile, p: ExtensionPoint) -> Vec<(String, i64)> {
        r.points[&p]
            .iter()
            .map(|e| (e.name.clone(), e.weight))
            .collect()
    }

    #[test]
    fn defaults_have_upstream_weights() {
        let c = SchedulerConfig::default_config();
        assert_eq!(c.profiles.len(), 1);
        assert_eq!(c.profiles[0].scheduler_name, "default-scheduler");
        assert_eq!(c.initial_backoff, Duration::from_secs(1));
        assert_eq!(c.max_backoff, Duration::from_secs(10));
        let score = names(&c.profiles[0], ExtensionPoint::Score);
        let w = |n: &str| score.iter().find(|(x, _)| x == n).map(|(_, w)| *w);
        assert_eq!(w("TaintToleration"), Some(3));
        assert_eq!(w("NodeAffinity"), Some(2));
        assert_eq!(w("PodTopologySpread"), Some(2));
        assert_eq!(w("InterPodAffinity"), Some(2));
        assert_eq!(w("NodeResourcesFit"), Some(1));
        assert_eq!(w("NodeResourcesBalancedAllocation"), Some(1));
        assert_eq!(w("ImageLocality"), Some(1));
    }

    #[test]
    fn yaml_profiles_enable_disable_weights_and_args() {
        let c = SchedulerConfig::from_yaml(
            r#"
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
percentageOfNodesToScore: 30
podMaxBackoffSeconds: 20
leaderElection:
  leaderElect: false
profiles:
- schedulerName: default-scheduler
  plugins:
    score:
      disabled:
      - name: NodeResourcesBalancedAllocation
      enabled:
      - name: ImageLocality
        weight: 7
- schedulerName: no-scoring
  plugins:
    preScore:
      disabled: [{name: "*"}]
    score:
      disabled: [{name: "*"}]
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#,
        )
        .unwrap();
        assert_eq!(c.percentage_of_nodes_to_score, 30);
        assert_eq!(c.max_backoff, Duration::from_secs(20));
        let p0 = &c.profiles[0];
        let score = names(p0, ExtensionPoint::Score);
        assert_eq!(
            score[0],
            ("ImageLocality".to_string(), 7),
            "explicitly enabled plugins come first"
        );
        assert!(
            !score
                .iter()
                .any(|(n, _)| n == "NodeResourcesBalancedAllocation")
        );
        assert!(score.iter().any(|(n, _)| n == "TaintToleration"));
        let p1 = &c.profiles[1];
        assert!(p1.points[&ExtensionPoint::Score].is_empty());
        assert!(!p1.points[&ExtensionPoint::Filter].is_empty());
        assert!(p1.plugin_args.contains_key("NodeResourcesFit"));
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(matches!(
            SchedulerConfig::from_yaml("apiVersion: v1\nkind: Pod\n"),
            Err(ConfigError::Kind(..))
        ));
        assert!(SchedulerConfig::from_yaml("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\npercentageOfNodesToScore: 120\n").is_err());
        assert!(SchedulerConfig::from_yaml(": :").is_err());
        let dup = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n- schedulerName: a\n";
        assert!(SchedulerConfig::from_yaml(dup).is_err());
    }

    #[test]
    fn multi_point_disable_all_and_custom() {
        let p = Profile {
            plugins: Some(Plugins {
                multi_point: Some(PluginSet {
                    enabled: vec![
                        PluginRef {
                            name: "PrioritySort".into(),
                            weight: None,
                        },
                        PluginRef {
                            name: "DefaultBinder".into(),
                            weight: None,
                        },
                        PluginRef {
                            name: "NodeResourcesFit".into(),
                            weight: Some(5),
                        },
                    ],
                    disabled: vec![PluginRef {
                        name: "*".into(),
                        weight: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = resolve_profile(&p).unwrap();
        // Config resolution lists every multiPoint plugin; the framework keeps only those that
        // implement the point.
        let score = names(&r, ExtensionPoint::Score);
        assert!(score.contains(&("NodeResourcesFit".to_string(), 5)));
        assert!(!score.iter().any(|(n, _)| n == "TaintToleration"));
        assert_eq!(
            r.plugin_names(),
            vec!["PrioritySort", "DefaultBinder", "NodeResourcesFit"]
        );
    }
}
