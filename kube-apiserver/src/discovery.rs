//! API discovery documents, legacy (`/api`, `/apis`, `/apis/<g>/<v>`) and aggregated
//! (`apidiscovery.k8s.io/v2`), computed once from the resource table. kubectl and client-go
//! build their REST mappings from these, so names, verbs, scopes and short names must be exact.

use serde_json::{Value, json};

use crate::resources::{self, ResourceInfo};

/// Content type of an aggregated discovery response.
pub const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an Accept header asks for aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io") && params.contains(&"v=v2") && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn storage_version_hash(info: &ResourceInfo) -> String {
    use base64::Engine;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (info.group, info.version, info.kind).hash(&mut h);
    base64::engine::general_purpose::STANDARD.encode(&h.finish().to_be_bytes())[..11].to_string()
}

/// Precomputed discovery documents.
pub struct Discovery {
    pub api_versions: Value,
    pub api_group_list: Value,
    /// `(group, APIGroup)` for `/apis/<group>`.
    pub groups: Vec<(String, Value)>,
    /// `(groupVersion, APIResourceList)`.
    pub resource_lists: Vec<(String, Value)>,
    pub aggregated_core: Value,
    pub aggregated_apis: Value,
}

impl Discovery {
    pub fn build(server_address: &str) -> Self {
        let all = resources::all();
        let api_versions = json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        });
        let mut groups = Vec::new();
        let mut group_docs = Vec::new();
        let mut resource_lists = Vec::new();
        let mut agg_core = Vec::new();
        let mut agg_apis = Vec::new();
        for (group, versions) in resources::groups() {
            let version_docs: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let gv = if group.is_empty() { v.to_string() } else { format!("{group}/{v}") };
                    json!({"groupVersion": gv, "version": v})
                })
                .collect();
            if !group.is_empty() {
                let doc = json!({
                    "name": group,
                    "versions": version_docs,
                    "preferredVersion": version_docs[0],
                });
                group_docs.push(doc.clone());
                let mut full = doc;
                full["kind"] = json!("APIGroup");
                full["apiVersion"] = json!("v1");
                groups.push((group.to_string(), full));
            }
            let mut agg_versions = Vec::new();
            for v in &versions {
                let rows: Vec<&ResourceInfo> = all.iter().filter(|r| r.group == group && r.version == *v).collect();
                let gvs = if group.is_empty() { v.to_string() } else { format!("{group}/{v}") };
                resource_lists.push((gvs.clone(), legacy_resource_list(&gvs, &rows)));
                agg_versions.push(json!({
                    "version": v,
                    "resources": rows.iter().map(|r| aggregated_resource(r)).collect::<Vec<_>>(),
                    "freshness": "Current",
                }));
            }
            let item = json!({"metadata": {"name": group}, "versions": agg_versions});
            if group.is_empty() { agg_core.push(item) } else { agg_apis.push(item) }
        }
        let agg = |items: Vec<Value>| json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items});
        Discovery {
            api_versions,
            api_group_list: json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_docs}),
            groups,
            resource_lists,
            aggregated_core: agg(agg_core),
            aggregated_apis: agg(agg_apis),
        }
    }

    pub fn group(&self, name: &str) -> Option<&Value> {
        self.groups.iter().find(|(g, _)| g == name).map(|(_, v)| v)
    }

    pub fn resource_list(&self, group_version: &str) -> Option<&Value> {
        self.resource_lists.iter().find(|(g, _)| g == group_version).map(|(_, v)| v)
    }
}

fn legacy_resource_list(group_version: &str, rows: &[&ResourceInfo]) -> Value {
    let mut resources = Vec::new();
    for r in rows {
        let mut doc = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": storage_version_hash(r),
        });
        if !r.short_names.is_empty() {
            doc["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            doc["categories"] = json!(r.categories);
        }
        resources.push(doc);
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                sub["group"] = json!(s.group);
                sub["version"] = json!(s.version);
            }
            resources.push(sub);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources})
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut doc = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        doc["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        doc["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        doc["subresources"] = json!(
            r.subresources
                .iter()
                .map(|s| json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": s.verbs,
                }))
                .collect::<Vec<_>>()
        );
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_detection() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }

    #[test]
    fn documents_list_core_and_apps() {
        let d = Discovery::build("127.0.0.1:6443");
        let core = d.resource_list("v1").expect("core list");
        let names: Vec<&str> = core["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"pods"));
        assert!(names.contains(&"pods/status"));
        assert!(d.group("apps").is_some());
        let apps = d.resource_list("apps/v1").unwrap();
        let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(d.aggregated_core["items"][0]["versions"][0]["version"], "v1");
        assert!(d.aggregated_apis["items"].as_array().unwrap().iter().any(|g| g["metadata"]["name"] == "apps"));
    }
}
