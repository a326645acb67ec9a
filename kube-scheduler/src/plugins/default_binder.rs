//! DefaultBinder: binds through the `pods/binding` subresource, like upstream.

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

use crate::framework::{BindPlugin, Plugin, Status};
use crate::types::PodInfo;

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: Option<kube::Client>,
}

impl DefaultBinder {
    pub fn new(client: Option<kube::Client>) -> Self {
        DefaultBinder { client }
    }
}

/// The Binding object upstream posts.
pub fn binding_for(pod: &PodInfo, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: Some(pod.uid.clone()).filter(|u| !u.is_empty()),
            ..Default::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..Default::default()
        },
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
    fn as_bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

#[async_trait]
impl BindPlugin for DefaultBinder {
    async fn bind(&self, pod: &PodInfo, node: &str) -> Status {
        let Some(client) = self.client.clone() else {
            return Status::error("DefaultBinder has no API client");
        };
        let api: Api<Pod> = Api::namespaced(client, &pod.namespace);
        let body = binding_for(pod, node);
        match api
            .create_subresource::<Binding, serde_json::Value>(
                "binding",
                &pod.name,
                &PostParams::default(),
                &body,
            )
            .await
        {
            Ok(_) => Status::success(),
            Err(e) => Status::error(format!("binding rejected: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::PodBuilder;

    #[test]
    fn binding_object_targets_node() {
        let b = binding_for(&PodBuilder::new("p").info(), "n1");
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["metadata"]["name"], "p");
        assert_eq!(v["metadata"]["namespace"], "default");
        assert_eq!(v["target"]["kind"], "Node");
        assert_eq!(v["target"]["name"], "n1");
    }

    #[tokio::test]
    async fn without_client_bind_is_an_error() {
        let st = DefaultBinder::new(None)
            .bind(&PodBuilder::new("p").info(), "n")
            .await;
        assert_eq!(st.code, crate::framework::Code::Error);
    }
}
