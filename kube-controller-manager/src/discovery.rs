//! The server's resources as discovery reports them: every group/version/kind (to resolve
//! owner references of any version) and the preferred version of each resource (what the
//! garbage collector watches and the namespace controller empties).

use std::collections::HashMap;

use kube::Client;
use kube::core::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::discovery::Discovery;

#[derive(Clone, Default)]
pub struct Resources {
    by_kind: HashMap<(String, String), (ApiResource, ApiCapabilities)>,
    preferred: Vec<(ApiResource, ApiCapabilities)>,
}

impl Resources {
    pub async fn discover(client: &Client) -> Result<Resources, kube::Error> {
        let d = Discovery::new(client.clone()).run().await?;
        let mut r = Resources::default();
        for g in d.groups() {
            for v in g.versions() {
                for (ar, caps) in g.versioned_resources(v) {
                    r.by_kind.insert((ar.api_version.clone(), ar.kind.clone()), (ar, caps));
                }
            }
            r.preferred.extend(g.recommended_resources());
        }
        Ok(r)
    }

    /// The resource for an `apiVersion` + `kind` (as in an owner reference).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&(ApiResource, ApiCapabilities)> {
        self.by_kind.get(&(api_version.to_string(), kind.to_string()))
    }

    /// Preferred-version resources supporting all of `verbs`.
    pub fn preferred_with(&self, verbs: &[&str]) -> Vec<(ApiResource, ApiCapabilities)> {
        self.preferred.iter().filter(|(_, c)| verbs.iter().all(|v| c.supports_operation(v))).cloned().collect()
    }

    pub fn is_namespaced(caps: &ApiCapabilities) -> bool {
        matches!(caps.scope, Scope::Namespaced)
    }
}
