//! Shared helpers for the scheduler's end-to-end tests: a real kube-apiserver (embedded store)
//! from the integration-tests harness, the real kube-scheduler binary as a child process, and
//! small builders/waiters for nodes and pods.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, free_port, tail_file};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};

pub async fn apiserver() -> ApiServer {
    ApiServer::start(ApiServerOptions::embedded()).await
}

/// A kube-scheduler process; killed on drop (log tail printed when the test panics).
pub struct SchedulerProc {
    child: Option<Child>,
    pub log: PathBuf,
    pub port: u16,
}

impl SchedulerProc {
    pub fn start(server: &ApiServer, name: &str, extra: &[&str]) -> SchedulerProc {
        let port = free_port().expect("free port");
        let log = server.root_dir().join(format!("{name}.log"));
        let f = std::fs::File::create(&log).expect("log file");
        let f2 = f.try_clone().expect("log file");
        let mut args = vec![
            format!("--kubeconfig={}", server.kubeconfig_path().display()),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={port}"),
            "-v=4".to_string(),
        ];
        if !extra.iter().any(|a| a.starts_with("--leader-elect")) {
            args.push("--leader-elect=false".into());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_kube-scheduler"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .expect("spawning kube-scheduler");
        SchedulerProc {
            child: Some(child),
            log,
            port,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no lease release, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub async fn metrics(&self) -> String {
        let url = format!("https://127.0.0.1:{}/metrics", self.port);
        for _ in 0..100 {
            if let Ok(r) = reqwest_get(&url).await {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("metrics endpoint never answered");
    }
}

/// GET over HTTPS, accepting the scheduler's self-signed serving certificate.
pub async fn reqwest_get(url: &str) -> Result<String, reqwest::Error> {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()?
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

impl Drop for SchedulerProc {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- kube-scheduler log {} ----\n{}\n----",
                self.log.display(),
                tail_file(&self.log, 80)
            );
        }
    }
}

pub fn node_json(
    name: &str,
    cpu: &str,
    mem: &str,
    labels: &[(&str, &str)],
    taints: Value,
) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/hostname".into(), json!(name));
    for (k, v) in labels {
        l.insert(k.to_string(), json!(v));
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": l},
        "spec": {"taints": taints},
        "status": {"capacity": {"cpu": cpu, "memory": mem, "pods": "110"}, "allocatable": {"cpu": cpu, "memory": mem, "pods": "110"}}
    })
}

pub async fn create_node(client: &kube::Client, node: Value) {
    let api: Api<Node> = Api::all(client.clone());
    let status = node["status"].clone();
    let n: Node = serde_json::from_value(node).expect("node json");
    let created = api
        .create(&PostParams::default(), &n)
        .await
        .expect("create node");
    // Like a kubelet, report capacity through the status subresource too.
    let name = created.metadata.name.unwrap_or_default();
    api.patch_status(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("patch node status");
}

pub fn pod_json(name: &str, cpu: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]}
    })
}

pub async fn create_pod(client: &kube::Client, pod: Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let p: Pod = serde_json::from_value(pod).expect("pod json");
    api.create(&PostParams::default(), &p)
        .await
        .expect("create pod")
}

pub async fn get_pod(client: &kube::Client, name: &str) -> Option<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.get_opt(name).await.expect("get pod")
}

/// Wait until the pod is bound and return its node.
pub async fn wait_bound(client: &kube::Client, name: &str, secs: u64) -> String {
    integration_tests::within(secs, &format!("pod {name} to be bound"), async {
        loop {
            if let Some(n) = get_pod(client, name)
                .await
                .and_then(|p| p.spec.and_then(|s| s.node_name))
            {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// Wait for PodScheduled=False and return its (reason, message).
pub async fn wait_unschedulable(client: &kube::Client, name: &str, secs: u64) -> (String, String) {
    integration_tests::within(
        secs,
        &format!("pod {name} to be marked unschedulable"),
        async {
            loop {
                let p = get_pod(client, name).await.expect("pod exists");
                let c = p
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|c| c.type_ == "PodScheduled" && c.status == "False");
                if let Some(c) = c {
                    return (c.reason.unwrap_or_default(), c.message.unwrap_or_default());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        },
    )
    .await
}

pub async fn node_of(client: &kube::Client, name: &str) -> Option<String> {
    get_pod(client, name)
        .await
        .and_then(|p| p.spec.and_then(|s| s.node_name))
}

/// events.k8s.io/v1 events about pod `name` with `reason`.
pub async fn events_for(client: &kube::Client, name: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    let list = api.list(&Default::default()).await.expect("list events");
    list.items
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

/// Wait for at least one event with `reason` about pod `name`; returns the notes.
pub async fn wait_event(client: &kube::Client, name: &str, reason: &str, secs: u64) -> Vec<String> {
    integration_tests::within(secs, &format!("{reason} event for {name}"), async {
        loop {
            let evs = events_for(client, name, reason).await;
            if !evs.is_empty() {
                return evs.into_iter().filter_map(|e| e.note).collect();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}
