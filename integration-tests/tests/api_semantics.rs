//! Object semantics of the REST API as upstream defines them: metadata, generation, finalizers,
//! graceful deletion, dry run, namespace lifecycle, Service allocation, subresources (binding,
//! eviction, finalize, status, scale), field selectors, compaction and the watch window, and
//! response compression.

use std::time::Duration;

use integration_tests::{ApiServer, ApiServerOptions, within};
use serde_json::{Value, json};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn new(s: &ApiServer) -> Self {
        Api { http: s.http(), base: s.url() }
    }
    async fn send(&self, method: reqwest::Method, path: &str, body: Option<(&str, Value)>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some((ct, b)) = body {
            req = req.header("Content-Type", ct).body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let code = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(("application/json", body))).await
    }
    async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, Some(("application/json", body))).await
    }
    async fn merge(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PATCH, path, Some(("application/merge-patch+json", body))).await
    }
    async fn delete(&self, path: &str, body: Option<Value>) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, body.map(|b| ("application/json", b))).await
    }
}

fn deployment(name: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
    })
}

fn pod(name: &str, node: Option<&str>) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}], "terminationGracePeriodSeconds": 20},
    });
    if let Some(n) = node {
        p["spec"]["nodeName"] = json!(n);
    }
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_generation_finalizers_and_dry_run() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    let deps = "/apis/apps/v1/namespaces/default/deployments";

    let (code, d) = api.post(deps, deployment("web")).await;
    assert_eq!(code, 201, "{d}");
    assert_eq!(d["metadata"]["generation"], 1);
    assert!(d["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(d["metadata"]["creationTimestamp"].is_string());
    assert!(d.get("status").is_none() || d["status"] == json!({}), "status is reset on create: {d}");

    // Labels are metadata: no generation bump. Spec changes bump it.
    let (_, d) = api.merge(&format!("{deps}/web"), json!({"metadata": {"labels": {"x": "y"}}})).await;
    assert_eq!(d["metadata"]["generation"], 1);
    let (_, d) = api.merge(&format!("{deps}/web"), json!({"spec": {"replicas": 3}})).await;
    assert_eq!(d["metadata"]["generation"], 2);
    // Status writes go through the status subresource only, and do not bump generation.
    let (_, d) = api.merge(&format!("{deps}/web"), json!({"status": {"replicas": 9}})).await;
    assert!(d["status"]["replicas"].is_null(), "main resource ignores status: {d}");
    let (code, d) = api.merge(&format!("{deps}/web/status"), json!({"status": {"replicas": 2}, "spec": {"replicas": 7}})).await;
    assert_eq!(code, 200, "{d}");
    assert_eq!(d["status"]["replicas"], 2);
    assert_eq!(d["spec"]["replicas"], 3, "status subresource ignores spec");
    assert_eq!(d["metadata"]["generation"], 2);

    // generateName.
    let (code, g) = api
        .post("/api/v1/namespaces/default/configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}}))
        .await;
    assert_eq!(code, 201);
    assert!(g["metadata"]["name"].as_str().unwrap().starts_with("gen-"));

    // dryRun=All persists nothing.
    let (code, _) = api.post(&format!("{deps}?dryRun=All"), deployment("dry")).await;
    assert_eq!(code, 201);
    assert_eq!(api.get(&format!("{deps}/dry")).await.0, 404);
    let (code, _) = api.delete(&format!("{deps}/web"), Some(json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}))).await;
    assert_eq!(code, 200);
    assert_eq!(api.get(&format!("{deps}/web")).await.0, 200);

    // Finalizers keep an object until they are removed; deletionTimestamp marks it.
    let cms = "/api/v1/namespaces/default/configmaps";
    api.post(cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fin", "finalizers": ["example.com/hold"]}})).await;
    let (code, obj) = api.delete(&format!("{cms}/fin"), None).await;
    assert_eq!(code, 202, "{obj}");
    let (_, obj) = api.get(&format!("{cms}/fin")).await;
    assert!(obj["metadata"]["deletionTimestamp"].is_string(), "{obj}");
    // New finalizers cannot be added once deleting.
    let (code, _) = api.merge(&format!("{cms}/fin"), json!({"metadata": {"finalizers": ["example.com/hold", "other.io/x"]}})).await;
    assert_eq!(code, 422);
    let (code, _) = api.merge(&format!("{cms}/fin"), json!({"metadata": {"finalizers": null}})).await;
    assert_eq!(code, 200);
    assert_eq!(api.get(&format!("{cms}/fin")).await.0, 404, "gone once the last finalizer is removed");

    // propagationPolicy is stored as upstream: Foreground adds foregroundDeletion, Orphan adds orphan.
    api.post(deps, deployment("fg")).await;
    let (code, d) = api.delete(&format!("{deps}/fg"), Some(json!({"propagationPolicy": "Foreground"}))).await;
    assert_eq!(code, 202);
    assert_eq!(d["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    api.post(deps, deployment("or")).await;
    let (_, d) = api.delete(&format!("{deps}/or?propagationPolicy=Orphan"), None).await;
    assert_eq!(d["metadata"]["finalizers"], json!(["orphan"]));

    // deletecollection honours the label selector.
    for (name, team) in [("dc1", "a"), ("dc2", "a"), ("dc3", "b")] {
        api.post(cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"team": team}}})).await;
    }
    let (code, gone) = api.delete(&format!("{cms}?labelSelector=team%3Da"), None).await;
    assert_eq!(code, 200, "{gone}");
    assert_eq!(gone["items"].as_array().map(Vec::len), Some(2));
    let (_, left) = api.get(&format!("{cms}?labelSelector=team")).await;
    let names: Vec<&str> = left["items"].as_array().unwrap().iter().map(|o| o["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["dc3"]);

    // Preconditions.
    api.post(deps, deployment("pre")).await;
    let (code, st) = api.delete(&format!("{deps}/pre"), Some(json!({"preconditions": {"uid": "not-the-uid"}}))).await;
    assert_eq!(code, 409, "{st}");
    assert!(st["message"].as_str().unwrap().contains("Precondition failed: UID in precondition"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_binding_graceful_deletion_eviction_and_field_selectors() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    let pods = "/api/v1/namespaces/default/pods";

    let (code, p) = api.post(pods, pod("a", None)).await;
    assert_eq!(code, 201, "{p}");
    assert_eq!(p["status"]["phase"], "Pending");
    // Bind it.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "a"}, "target": {"kind": "Node", "name": "n1"}});
    let (code, st) = api.post(&format!("{pods}/a/binding"), binding.clone()).await;
    assert_eq!(code, 201, "{st}");
    let (_, p) = api.get(&format!("{pods}/a")).await;
    assert_eq!(p["spec"]["nodeName"], "n1");
    assert_eq!(p["status"]["conditions"][0]["type"], "PodScheduled");
    let (code, st) = api.post(&format!("{pods}/a/binding"), binding).await;
    assert_eq!(code, 409);
    assert!(st["message"].as_str().unwrap().contains("is already assigned to node \"n1\""), "{st}");

    // Field selectors on pods.
    api.post(pods, pod("b", Some("n2"))).await;
    let (_, list) = api.get(&format!("{pods}?fieldSelector=spec.nodeName%3Dn1")).await;
    let names: Vec<&str> = list["items"].as_array().unwrap().iter().map(|p| p["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["a"]);
    let (code, st) = api.get(&format!("{pods}?fieldSelector=spec.bogus%3Dx")).await;
    assert_eq!(code, 400);
    assert!(st["message"].as_str().unwrap().contains("field label not supported: spec.bogus"), "{st}");

    // A bound, running pod is deleted gracefully: it stays with a deletionTimestamp until a
    // grace-0 delete (the kubelet's) removes it.
    api.merge(&format!("{pods}/a/status"), json!({"status": {"phase": "Running"}})).await;
    let (code, p) = api.delete(&format!("{pods}/a"), None).await;
    assert_eq!(code, 202, "{p}");
    assert_eq!(p["metadata"]["deletionGracePeriodSeconds"], 20);
    assert_eq!(api.get(&format!("{pods}/a")).await.0, 200);
    let (code, _) = api.delete(&format!("{pods}/a"), Some(json!({"gracePeriodSeconds": 0}))).await;
    assert_eq!(code, 200);
    assert_eq!(api.get(&format!("{pods}/a")).await.0, 404);
    // An unbound pod goes at once.
    api.post(pods, pod("c", None)).await;
    assert_eq!(api.delete(&format!("{pods}/c"), None).await.0, 200);

    // Eviction respects PodDisruptionBudgets.
    api.merge(&format!("{pods}/b/status"), json!({"status": {"phase": "Running"}})).await;
    let pdb = json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
                     "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
    let pdbs = "/apis/policy/v1/namespaces/default/poddisruptionbudgets";
    assert_eq!(api.post(pdbs, pdb).await.0, 201);
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "b"}});
    // Until the disruption controller has observed the budget: 429, come back in 10 s.
    let (code, st) = api.post(&format!("{pods}/b/eviction"), eviction.clone()).await;
    assert_eq!(code, 429, "{st}");
    assert_eq!(st["message"], "Cannot evict pod as it would violate the pod's disruption budget.");
    assert_eq!(st["details"]["retryAfterSeconds"], 10, "{st}");
    assert_eq!(st["details"]["causes"][0]["reason"], "DisruptionBudget");
    assert_eq!(st["details"]["causes"][0]["message"], "The disruption budget pdb is still being processed by the server.");
    let resp = api
        .http
        .post(format!("{}{pods}/b/eviction", api.base))
        .header("Content-Type", "application/json")
        .body(eviction.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "10");
    let observed = json!({"status": {"observedGeneration": 1, "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}});
    assert_eq!(api.merge(&format!("{pdbs}/pdb/status"), observed).await.0, 200);
    within(10, "eviction refused by the observed budget", async {
        loop {
            let (code, st) = api.post(&format!("{pods}/b/eviction"), eviction.clone()).await;
            assert_eq!(code, 429, "{st}");
            if st["details"]["causes"][0]["message"] == "The disruption budget pdb needs 1 healthy pods and has 1 currently" {
                assert!(st["details"].get("retryAfterSeconds").is_none(), "{st}");
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let (code, _) = api.merge(&format!("{pdbs}/pdb/status"), json!({"status": {"disruptionsAllowed": 1}})).await;
    assert_eq!(code, 200);
    // The PDB status reaches the watch cache asynchronously.
    within(10, "eviction allowed", async {
        loop {
            let (code, _) = api.post(&format!("{pods}/b/eviction"), eviction.clone()).await;
            if code == 201 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let (_, pdb) = api.get(&format!("{pdbs}/pdb")).await;
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
    assert!(pdb["status"]["disruptedPods"]["b"].is_string());
    let (_, p) = api.get(&format!("{pods}/b")).await;
    assert!(p["metadata"]["deletionTimestamp"].is_string(), "evicted pod is being deleted: {p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_lifecycle_and_finalize() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let (code, obj) = api.get(&format!("/api/v1/namespaces/{ns}")).await;
        assert_eq!(code, 200);
        assert_eq!(obj["status"]["phase"], "Active");
    }
    let (code, _) = api.delete("/api/v1/namespaces/kube-system", None).await;
    assert_eq!(code, 403);

    api.post("/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})).await;
    let (code, ns) = api.delete("/api/v1/namespaces/doomed", None).await;
    assert_eq!(code, 202, "{ns}");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late"}});
    let (code, st) = within(10, "terminating namespace refuses content", async {
        loop {
            let r = api.post("/api/v1/namespaces/doomed/configmaps", cm.clone()).await;
            if r.0 != 201 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert_eq!(code, 403, "{st}");
    assert_eq!(st["message"], "unable to create new content in namespace doomed because it is being terminated");
    // The namespace controller's last step: clear spec.finalizers through namespaces/finalize.
    let (_, mut ns) = api.get("/api/v1/namespaces/doomed").await;
    ns["spec"]["finalizers"] = json!([]);
    let (code, _) = api.put("/api/v1/namespaces/doomed/finalize", ns).await;
    assert_eq!(code, 200);
    assert_eq!(api.get("/api/v1/namespaces/doomed").await.0, 404);
    let (code, st) = api.post("/api/v1/namespaces/nope/configmaps", cm).await;
    assert_eq!(code, 404);
    assert_eq!(st["message"], "namespaces \"nope\" not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_ips_and_ports_that_survive_restarts() {
    let mut s = ApiServer::start(ApiServerOptions::from_env().arg("--service-node-port-range=30000-30010")).await;
    let api = Api::new(&s);
    let (_, k) = api.get("/api/v1/namespaces/default/services/kubernetes").await;
    assert_eq!(k["spec"]["clusterIP"], "10.0.0.1");
    assert_eq!(k["spec"]["ports"][0]["port"], 443);
    let (_, ep) = api.get("/api/v1/namespaces/default/endpoints/kubernetes").await;
    assert_eq!(ep["subsets"][0]["ports"][0]["port"], s.port());

    let svcs = "/api/v1/namespaces/default/services";
    let svc = |name: &str, ty: &str| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": {"type": ty, "selector": {"app": name}, "ports": [{"port": 80}]}})
    };
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..5 {
        let (code, o) = api.post(svcs, svc(&format!("s{i}"), "NodePort")).await;
        assert_eq!(code, 201, "{o}");
        assert!(ips.insert(o["spec"]["clusterIP"].as_str().unwrap().to_string()));
        let np = o["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=30010).contains(&np));
        assert!(ports.insert(np));
    }
    assert!(!ips.contains("10.0.0.1"));
    let taken_ip = ips.iter().next().unwrap().clone();
    let taken_port = *ports.iter().next().unwrap();

    s.restart().await;
    let api = Api::new(&s);
    let mut dup = svc("dup", "ClusterIP");
    dup["spec"]["clusterIP"] = json!(taken_ip);
    let (code, st) = api.post(svcs, dup).await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"].as_str().unwrap().contains("provided IP is already allocated"), "{st}");
    let mut dup = svc("dup2", "NodePort");
    dup["spec"]["ports"][0]["nodePort"] = json!(taken_port);
    let (code, st) = api.post(svcs, dup).await;
    assert_eq!(code, 422, "{st}");
    assert!(st["message"].as_str().unwrap().contains("provided port is already allocated"), "{st}");
    // Every address is held by an IPAddress object pointing at its Service (the kubernetes
    // Service's too), inside the default ServiceCIDR.
    let ipas = "/apis/networking.k8s.io/v1/ipaddresses";
    let (_, k_ip) = api.get(&format!("{ipas}/10.0.0.1")).await;
    assert_eq!(k_ip["spec"]["parentRef"], json!({"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"}));
    let (_, s0) = api.get(&format!("{svcs}/s0")).await;
    let s0_ip = s0["spec"]["clusterIP"].as_str().unwrap().to_string();
    let (code, o) = api.get(&format!("{ipas}/{s0_ip}")).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["spec"]["parentRef"]["name"], "s0");
    assert_eq!(o["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"], "ipallocator.k8s.io");
    assert_eq!(o["metadata"]["labels"]["ipaddress.kubernetes.io/ip-family"], "IPv4");
    let (_, cidr) = api.get("/apis/networking.k8s.io/v1/servicecidrs/kubernetes").await;
    assert_eq!(cidr["spec"]["cidrs"], json!(["10.0.0.0/24"]));
    assert_eq!(cidr["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(cidr["status"]["conditions"][0]["status"], "True");
    let out = s.kubectl_ok(&["get", "ipaddresses"]).await;
    assert!(out.lines().next().unwrap().split_whitespace().eq(["NAME", "PARENTREF"]), "{out}");
    assert!(out.lines().any(|l| l.split_whitespace().eq([s0_ip.as_str(), "services/default/s0"])), "{out}");
    assert!(out.contains("services/default/kubernetes"), "{out}");
    assert_eq!(out.lines().count(), 7, "{out}");
    let out = s.kubectl_ok(&["get", "servicecidrs"]).await;
    assert!(out.contains("kubernetes   10.0.0.0/24"), "{out}");

    // A create that fails after allocating (the name is taken) leaks no address, a dry run
    // allocates nothing.
    let (code, _) = api.post(svcs, svc("s1", "NodePort")).await;
    assert_eq!(code, 409);
    let (code, o) = api.post(&format!("{svcs}?dryRun=All"), svc("dry", "NodePort")).await;
    assert_eq!(code, 201, "{o}");
    assert!(o["spec"]["ports"][0]["nodePort"].as_u64().is_some());
    let (_, list) = api.get(ipas).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 6, "{list}");
    let (code, _) = api.get(&format!("{svcs}/dry")).await;
    assert_eq!(code, 404);

    // Deleting a Service frees its address.
    api.delete(&format!("{svcs}/s0"), None).await;
    let (code, _) = api.get(&format!("{ipas}/{s0_ip}")).await;
    assert_eq!(code, 404);
    let mut again = svc("again", "ClusterIP");
    again["spec"]["clusterIP"] = json!(s0_ip);
    let (code, o) = api.post(svcs, again).await;
    assert_eq!(code, 201, "{o}");
}

/// Services written before allocation went through IPAddress objects (no IPAddress, no
/// NodePort bitmap) get them at the next start, so their addresses are never handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_of_services_without_ipaddress_objects_are_recorded_at_start_up() {
    let mut s = ApiServer::start(ApiServerOptions::from_env().arg("--service-node-port-range=30000-30001")).await;
    let api = Api::new(&s);
    let svcs = "/api/v1/namespaces/default/services";
    let ipas = "/apis/networking.k8s.io/v1/ipaddresses";
    let (code, o) = api
        .post(svcs, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "old"},
                           "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}]}}))
        .await;
    assert_eq!(code, 201, "{o}");
    let ip = o["spec"]["clusterIP"].as_str().unwrap().to_string();
    // Forget the allocation as the old scheme stored it: only the Service holds the address.
    let (code, st) = api.delete(&format!("{ipas}/{ip}"), None).await;
    assert_eq!(code, 200, "{st}");
    if let Some(etcd) = s.etcd() {
        let prefix = s.etcd_prefix().expect("etcd server");
        let out = etcd.etcdctl(&["del", &format!("{prefix}/services/nodeports")]).unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).trim() == "1", "{out:?}");
    }
    s.restart().await;
    let api = Api::new(&s);
    let (code, o) = api.get(&format!("{ipas}/{ip}")).await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["spec"]["parentRef"]["name"], "old");
    let mut dup = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "dup"},
                         "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    let (code, st) = api.post(svcs, dup.clone()).await;
    assert_eq!(code, 500, "both node ports are still held: {st}");
    dup["spec"]["type"] = json!("ClusterIP");
    dup["spec"]["clusterIP"] = json!(ip);
    let (code, st) = api.post(svcs, dup).await;
    assert_eq!(code, 422, "{st}");
}

/// The repair loop (every second here, every 3 minutes by default) fixes allocations while the
/// server runs, as upstream's repair controllers: a lost IPAddress is re-created, orphaned
/// IPAddresses go once older than the request timeout, and a NodePort marked without a Service
/// (a crash between allocation and the Service's write) is freed after several passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_allocations_are_repaired_while_running() {
    let s = ApiServer::start(
        ApiServerOptions::from_env()
            .arg("--service-repair-interval=1s")
            .arg("--request-timeout=4s")
            .arg("--service-node-port-range=30000-30009"),
    )
    .await;
    let api = Api::new(&s);
    let svcs = "/api/v1/namespaces/default/services";
    let ipas = "/apis/networking.k8s.io/v1/ipaddresses";
    let (code, o) = api
        .post(svcs, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                           "spec": {"type": "NodePort", "clusterIP": "10.0.0.10", "ports": [{"port": 80, "nodePort": 30001}]}}))
        .await;
    assert_eq!(code, 201, "{o}");

    // An IPAddress deleted by hand is re-created for its Service, with an Event.
    let (code, st) = api.delete(&format!("{ipas}/10.0.0.10"), None).await;
    assert_eq!(code, 200, "{st}");
    let held = within(20, "the IPAddress to be re-created", async {
        loop {
            let (code, o) = api.get(&format!("{ipas}/10.0.0.10")).await;
            if code == 200 {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(held["spec"]["parentRef"], json!({"group": "", "resource": "services", "namespace": "default", "name": "web"}));
    assert_eq!(held["metadata"]["labels"]["ipaddress.kubernetes.io/managed-by"], "ipallocator.k8s.io");
    let events = "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dweb";
    let (_, list) = api.get(events).await;
    let evs = list["items"].as_array().unwrap();
    let ev = evs.iter().find(|e| e["reason"] == "ClusterIPNotAllocated").unwrap_or_else(|| panic!("no event: {list}"));
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["involvedObject"]["kind"], "Service");
    assert_eq!(ev["source"]["component"], "ipallocator-repair-controller");

    // Orphans: parent missing, parent holding another address. Not the one another manager owns.
    let ipaddress = |ip: &str, parent: &str, managed: bool| {
        let mut labels = json!({"ipaddress.kubernetes.io/ip-family": "IPv4"});
        if managed {
            labels["ipaddress.kubernetes.io/managed-by"] = json!("ipallocator.k8s.io");
        }
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "IPAddress", "metadata": {"name": ip, "labels": labels},
               "spec": {"parentRef": {"group": "", "resource": "services", "namespace": "default", "name": parent}}})
    };
    for (ip, parent, managed) in [("10.0.0.77", "missing", true), ("10.0.0.78", "web", true), ("10.0.0.79", "missing", false)] {
        let (code, o) = api.post(ipas, ipaddress(ip, parent, managed)).await;
        assert_eq!(code, 201, "{o}");
    }
    // Within the grace period (the 4 s request timeout) a Service create may still be in
    // flight: they stay.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for ip in ["10.0.0.77", "10.0.0.78"] {
        assert_eq!(api.get(&format!("{ipas}/{ip}")).await.0, 200, "{ip} deleted within the grace period");
    }
    within(20, "orphaned IPAddresses to be deleted", async {
        loop {
            let (a, _) = api.get(&format!("{ipas}/10.0.0.77")).await;
            let (b, _) = api.get(&format!("{ipas}/10.0.0.78")).await;
            if a == 404 && b == 404 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(api.get(&format!("{ipas}/10.0.0.79")).await.0, 200, "not managed by the allocator");
    assert_eq!(api.get(&format!("{ipas}/10.0.0.10")).await.0, 200);

    // A port marked in the bitmap with no Service: taken at first, freed after three passes.
    let Some(etcd) = s.etcd() else { return }; // the embedded store is held by the server
    let key = format!("{}/services/nodeports", s.etcd_prefix().unwrap());
    let mut client = etcd_client::Client::connect([etcd.endpoint()], None).await.unwrap();
    let marked = |kvs: &[etcd_client::KeyValue]| kube_apiserver::allocator::range_allocation_ports(kvs[0].value()).unwrap();
    let mut used = marked(client.get(key.as_str(), None).await.unwrap().kvs());
    assert!(used.contains(&30001), "{used:?}");
    used.insert(30007);
    client.put(key.as_str(), kube_apiserver::allocator::range_allocation(30000, 30009, &used), None).await.unwrap();
    let marked_at = std::time::Instant::now();
    let leaky = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "leaky"},
                       "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30007}]}});
    let (code, st) = api.post(svcs, leaky.clone()).await;
    assert_eq!(code, 422, "{st}");
    within(20, "the leaked node port to be freed", async {
        while marked(client.get(key.as_str(), None).await.unwrap().kvs()).contains(&30007) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    // Seen leaked on two passes a second apart before the third frees it.
    assert!(marked_at.elapsed() >= Duration::from_millis(1900), "freed after {:?}", marked_at.elapsed());
    let log = std::fs::read_to_string(s.log_path()).unwrap();
    assert!(log.contains("the node port may have leaked: flagging for later clean up"), "{}", s.log_tail(30));
    assert!(marked(client.get(key.as_str(), None).await.unwrap().kvs()).contains(&30001));
    let (code, o) = api.post(svcs, leaky).await;
    assert_eq!(code, 201, "{o}");
}

/// Two API servers on one etcd prefix (an HA control plane) creating Services at the same time
/// never hand out one address or port twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apiservers_on_one_etcd_never_share_an_ip_or_port() {
    if matches!(ApiServerOptions::from_env().storage, integration_tests::Storage::Embedded) {
        return; // two processes cannot open one embedded store
    }
    let etcd = integration_tests::Etcd::start().await;
    let prefix = integration_tests::unique_etcd_prefix();
    let opts = || {
        ApiServerOptions::shared_etcd(etcd.endpoint(), &prefix)
            .arg("--service-cluster-ip-range=10.0.0.0/26")
            .arg("--service-node-port-range=30000-30049")
    };
    let a = ApiServer::start(opts()).await;
    let b = ApiServer::start(opts()).await;
    let apis = [Api::new(&a), Api::new(&b)];
    let svcs = "/api/v1/namespaces/default/services";
    // 40 NodePort Services, 20 through each server at once: 61 addresses (less the kubernetes
    // one) and 50 ports, so random picks collide often.
    let creates = (0..40).map(|i| {
        let api = &apis[i % 2];
        async move {
            let body = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": format!("s{i}")},
                              "spec": {"type": "NodePort", "ports": [{"port": 80}]}});
            let (code, o) = api.post(svcs, body).await;
            assert_eq!(code, 201, "{o}");
            o
        }
    });
    let created = futures::future::join_all(creates).await;
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for o in &created {
        let ip = o["spec"]["clusterIP"].as_str().unwrap();
        assert!(ips.insert(ip.to_string()), "{ip} given twice");
        assert_ne!(ip, "10.0.0.1");
        let np = o["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(ports.insert(np), "node port {np} given twice");
    }
    // Both servers see every address held by an IPAddress of its Service.
    for api in &apis {
        let (_, list) = api.get("/apis/networking.k8s.io/v1/ipaddresses").await;
        let items = list["items"].as_array().unwrap();
        assert_eq!(items.len(), 41, "40 Services and the kubernetes Service");
        for o in &created {
            let ip = o["spec"]["clusterIP"].as_str().unwrap();
            let held = items.iter().find(|i| i["metadata"]["name"] == ip).unwrap_or_else(|| panic!("no IPAddress for {ip}"));
            assert_eq!(held["spec"]["parentRef"]["name"], o["metadata"]["name"]);
        }
    }
    // One ServiceCIDR, one kubernetes Service, whichever server created them.
    let (_, cidrs) = apis[1].get("/apis/networking.k8s.io/v1/servicecidrs").await;
    assert_eq!(cidrs["items"].as_array().unwrap().len(), 1);
    // A port freed through one server is free for the other.
    let (_, s0) = apis[0].get(&format!("{svcs}/s0")).await;
    apis[0].delete(&format!("{svcs}/s0"), None).await;
    let mut again = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "again"},
                           "spec": {"type": "NodePort", "clusterIP": s0["spec"]["clusterIP"], "ports": [{"port": 80, "nodePort": s0["spec"]["ports"][0]["nodePort"]}]}});
    let (code, o) = apis[1].post(svcs, again.clone()).await;
    assert_eq!(code, 201, "{o}");
    again["metadata"]["name"] = json!("again2");
    let (code, _) = apis[0].post(svcs, again).await;
    assert_eq!(code, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_continue_tokens_and_watch_window_give_410() {
    let s = ApiServer::start(ApiServerOptions::from_env().arg("--etcd-compaction-interval=1s").arg("--default-watch-cache-size=100")).await;
    let api = Api::new(&s);
    let cms = "/api/v1/namespaces/default/configmaps";
    for i in 0..5 {
        api.post(cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}})).await;
    }
    let (_, page) = api.get(&format!("{cms}?limit=2")).await;
    let token = page["metadata"]["continue"].as_str().unwrap().to_string();
    let first_rv = page["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    assert_eq!(page["metadata"]["remainingItemCount"], 3);
    // Enough writes that the watch window (100 events) no longer reaches back to first_rv,
    // and enough time for two compactions.
    for i in 0..150 {
        api.post(cms, json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("w{i}")}})).await;
    }
    let (code, st) = within(20, "continue token expires", async {
        loop {
            let r = api.get(&format!("{cms}?limit=2&continue={}", urlencode(&token))).await;
            if r.0 != 200 {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    assert_eq!(code, 410, "{st}");
    assert_eq!(st["reason"], "Expired");

    let resp = s.http().get(format!("{}{cms}?watch=1&resourceVersion={first_rv}", s.url())).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let text = within(10, "watch error event", resp.text()).await.unwrap();
    let ev: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(ev["type"], "ERROR");
    assert_eq!(ev["object"]["code"], 410);
    assert!(ev["object"]["message"].as_str().unwrap().starts_with("too old resource version"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_authentication() {
    let s = ApiServer::start_default().await;
    let anon = s.http_factory().anonymous();
    for path in ["/healthz", "/livez", "/readyz", "/version"] {
        let r = anon.get(format!("{}{path}", s.url())).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let r = anon.get(format!("{}/api/v1/namespaces", s.url())).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let api = Api::new(&s);
    api.get("/api/v1/namespaces/default/configmaps").await;
    let metrics = s.http().get(format!("{}/metrics", s.url())).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("apiserver_request_total{")
            && l.contains("verb=\"LIST\"")
            && l.contains("resource=\"configmaps\"")
            && l.contains("code=\"200\"")),
        "{metrics}"
    );
    assert!(metrics.contains("apiserver_request_duration_seconds_bucket{"));
    assert!(metrics.contains("apiserver_storage_objects{resource=\"namespaces\"} 4"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_etcd_is_gone() {
    let mut s = ApiServer::start(ApiServerOptions::own_etcd()).await;
    let anon = s.http_factory().anonymous();
    assert_eq!(anon.get(format!("{}/readyz", s.url())).send().await.unwrap().status().as_u16(), 200);
    let url = s.url();
    s.etcd_mut().expect("own etcd").stop().await;
    let code = within(20, "readyz turns red", async {
        loop {
            let code = anon.get(format!("{url}/readyz")).send().await.unwrap().status().as_u16();
            if code != 200 {
                return code;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(code, 500);
    assert_eq!(anon.get(format!("{url}/livez")).send().await.unwrap().status().as_u16(), 200);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_one_resource_in_two_shapes() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    let ev = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "default-scheduler", "reportingInstance": "sched-1",
        "action": "Binding", "reason": "Scheduled", "type": "Normal",
        "note": "Successfully assigned default/p to n1",
        "regarding": {"kind": "Pod", "namespace": "default", "name": "p", "apiVersion": "v1"},
    });
    let (code, created) = api.post("/apis/events.k8s.io/v1/namespaces/default/events", ev).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["note"], "Successfully assigned default/p to n1");
    let (code, core) = api.get("/api/v1/namespaces/default/events/e1").await;
    assert_eq!(code, 200);
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "Successfully assigned default/p to n1");
    assert_eq!(core["involvedObject"]["name"], "p");
    let (_, list) = api.get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dp").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    let (_, back) = api.get("/apis/events.k8s.io/v1/namespaces/default/events/e1").await;
    assert_eq!(back["regarding"]["name"], "p");
    assert_eq!(back["reportingController"], "default-scheduler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn horizontal_pod_autoscalers_are_served_as_v2_and_v1() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    let v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers";
    let v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});

    // Created as v1: read as v2 with the CPU target as a metric.
    let (code, created) = api.post(v1, json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "cpu"}, "spec": {"scaleTargetRef": target, "maxReplicas": 5, "targetCPUUtilizationPercentage": 50}})).await;
    assert_eq!(code, 201, "{created}");
    assert_eq!((created["apiVersion"].as_str(), created["spec"]["minReplicas"].as_i64()), (Some("autoscaling/v1"), Some(1)));
    let (_, as_v2) = api.get(&format!("{v2}/cpu")).await;
    assert_eq!(as_v2["apiVersion"], "autoscaling/v2");
    assert_eq!(as_v2["spec"]["metrics"], json!([{"type": "Resource", "resource": {"name": "cpu",
        "target": {"type": "Utilization", "averageUtilization": 50}}}]));
    assert_eq!(as_v2["metadata"]["resourceVersion"], created["metadata"]["resourceVersion"]);

    // Created as v2 with a metric v1 cannot express: v1 carries it in an annotation, and a v1
    // update keeps it.
    let (code, _) = api.post(v2, json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "mem"}, "spec": {"scaleTargetRef": target, "maxReplicas": 4, "metrics": [
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "1Gi"}}}]}})).await;
    assert_eq!(code, 201);
    let (_, mut as_v1) = api.get(&format!("{v1}/mem")).await;
    assert_eq!(as_v1["apiVersion"], "autoscaling/v1");
    assert!(as_v1["spec"].get("targetCPUUtilizationPercentage").is_none(), "{as_v1}");
    assert!(as_v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"].as_str().unwrap().contains("memory"));
    as_v1["spec"]["maxReplicas"] = json!(6);
    let (code, updated) = api.put(&format!("{v1}/mem"), as_v1).await;
    assert_eq!(code, 200, "{updated}");
    let (_, as_v2) = api.get(&format!("{v2}/mem")).await;
    assert_eq!(as_v2["spec"]["maxReplicas"], 6);
    assert_eq!(as_v2["spec"]["metrics"][0]["resource"]["name"], "memory");
    assert!(as_v2["metadata"].get("annotations").is_none(), "{as_v2}");

    // Both versions are discoverable, v2 preferred; kubectl reads either.
    let (_, group) = api.get("/apis/autoscaling").await;
    assert_eq!(group["preferredVersion"]["version"], "v2");
    let versions: Vec<&str> = group["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["v2", "v1"]);
    let out = s.kubectl_ok(&["get", "horizontalpodautoscalers.v1.autoscaling", "cpu", "-o", "jsonpath={.spec.targetCPUUtilizationPercentage}"]).await;
    assert_eq!(out, "50");
    let out = s.kubectl_ok(&["get", "hpa"]).await;
    assert!(out.contains("cpu") && out.contains("Deployment/web") && out.contains("mem"), "{out}");
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut out).expect("a valid gzip stream");
    out
}

/// Upstream's APIResponseCompression: a body larger than 128 KiB is gzipped when the client sends
/// `Accept-Encoding: gzip` (as Go's client does); smaller bodies and watches are sent as is.
/// The raw client here does not decompress, so the bytes on the wire are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_responses_are_gzipped_when_the_client_accepts_gzip() {
    // --v=4 logs each request with the encoding of its response.
    let s = ApiServer::start(ApiServerOptions::from_env().arg("--v=4")).await;
    let api = Api::new(&s);
    let (code, _) = api.post("/api/v1/namespaces", json!({"metadata": {"name": "bulk"}})).await;
    assert_eq!(code, 201);
    // 24 ConfigMaps with 6 KiB of data and a 6 KiB annotation each: the list is ~300 KiB and
    // kubectl's Table (rows carry the object metadata) is above 128 KiB too.
    let filler = "x".repeat(6 * 1024);
    let creates = (0..24).map(|i| {
        api.post(
            "/api/v1/namespaces/bulk/configmaps",
            json!({"metadata": {"name": format!("cm-{i:02}"), "annotations": {"filler": filler}}, "data": {"filler": filler}}),
        )
    });
    for (code, body) in futures::future::join_all(creates).await {
        assert_eq!(code, 201, "{body}");
    }
    let list_url = format!("{}/api/v1/namespaces/bulk/configmaps", s.url());

    // (a) gzip accepted: compressed, Vary names the request header, and the JSON list inside.
    let r = api.http.get(&list_url).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-encoding"], "gzip");
    assert_eq!(r.headers()["content-type"], "application/json");
    let vary: Vec<_> = r.headers().get_all("vary").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(vary.iter().any(|v| v == "Accept-Encoding"), "{vary:?}");
    let wire = r.bytes().await.unwrap();
    let plain = gunzip(&wire);
    assert!(plain.len() > 128 * 1024, "{}", plain.len());
    assert!(wire.len() * 10 < plain.len(), "{} compressed to {}", plain.len(), wire.len());
    let list: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(list["kind"], "ConfigMapList");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 24);
    assert_eq!(items[0]["data"]["filler"], filler.as_str());

    // Also when gzip is one of several codings, as curl --compressed sends them.
    let r = api.http.get(&list_url).header("Accept-Encoding", "deflate, gzip, br").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");

    // (b) the same list without Accept-Encoding: sent as is.
    let r = api.http.get(&list_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    assert!(r.headers().get_all("vary").iter().all(|v| v != "Accept-Encoding"));
    let body = r.bytes().await.unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["items"].as_array().unwrap().len(), 24);
    // A coding upstream does not serve is the same as none.
    let r = api.http.get(&list_url).header("Accept-Encoding", "br").send().await.unwrap();
    assert!(r.headers().get("content-encoding").is_none());

    // (c) a small object with gzip accepted: below the threshold, sent as is.
    let r = api.http.get(format!("{list_url}/cm-00")).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let cm: Value = r.json().await.unwrap();
    assert_eq!(cm["metadata"]["name"], "cm-00");

    // The Table form kubectl asks for is compressed like any API response.
    let table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let r = api.http.get(&list_url).header("Accept", table_accept).header("Accept-Encoding", "gzip").send().await.unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");
    let table: Value = serde_json::from_slice(&gunzip(&r.bytes().await.unwrap())).unwrap();
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["rows"].as_array().unwrap().len(), 24);

    // A watch is a stream: never compressed, even when its initial events are large.
    let r = api
        .http
        .get(format!("{list_url}?watch=true&timeoutSeconds=1"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("content-encoding").is_none());
    let events = r.text().await.unwrap();
    let added = events.lines().filter(|l| serde_json::from_str::<Value>(l).unwrap()["type"] == "ADDED").count();
    assert_eq!(added, 24, "{events}");

    // kubectl (Go's client asks for gzip and decompresses) reads the large list and Table.
    let gzipped_lists = || {
        let log = std::fs::read_to_string(s.log_path()).unwrap();
        // Without the terminal colours of the log.
        let mut plain = String::with_capacity(log.len());
        let mut chars = log.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|&c| c == 'm');
            } else {
                plain.push(c);
            }
        }
        plain
            .lines()
            .filter(|l| l.contains("path=/api/v1/namespaces/bulk/configmaps ") && l.contains("encoding=\"gzip\""))
            .count()
    };
    let before = gzipped_lists();
    let out = s.kubectl_ok(&["get", "configmaps", "-n", "bulk"]).await;
    assert_eq!(out.lines().count(), 25, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("cm-00 "), "{out}");
    let out = s.kubectl_ok(&["get", "configmaps", "-n", "bulk", "-o", "json"]).await;
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 24);
    assert_eq!(list["items"][23]["data"]["filler"], filler.as_str());
    assert_eq!(gzipped_lists(), before + 2, "kubectl's two lists went out gzipped");
}

/// The `status` a new object is created with, as upstream returns it: Go's zero status, whose
/// fields without `omitempty` are always written (`replicas: 0`), so that writing back an
/// unchanged status is a no-op (same resourceVersion, no `status` manager).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_objects_carry_the_zero_status() {
    let s = ApiServer::start_default().await;
    let api = Api::new(&s);
    let selector = json!({"matchLabels": {"app": "web"}});
    let template = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    let ns = "/namespaces/default";
    let cases: Vec<(String, Value, Value)> = vec![
        (
            format!("/apis/apps/v1{ns}/replicasets"),
            json!({"kind": "ReplicaSet", "apiVersion": "apps/v1", "spec": {"selector": selector, "template": template}}),
            json!({"replicas": 0}),
        ),
        (
            format!("/apis/apps/v1{ns}/statefulsets"),
            json!({"kind": "StatefulSet", "apiVersion": "apps/v1", "spec": {"selector": selector, "template": template, "serviceName": "web"}}),
            json!({"replicas": 0, "availableReplicas": 0}),
        ),
        (
            format!("/apis/apps/v1{ns}/deployments"),
            json!({"kind": "Deployment", "apiVersion": "apps/v1", "spec": {"selector": selector, "template": template}}),
            json!({}),
        ),
        (
            format!("/apis/apps/v1{ns}/daemonsets"),
            json!({"kind": "DaemonSet", "apiVersion": "apps/v1", "spec": {"selector": selector, "template": template}}),
            json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
        ),
        (
            format!("/api/v1{ns}/replicationcontrollers"),
            json!({"kind": "ReplicationController", "apiVersion": "v1", "spec": {"selector": {"app": "web"}, "template": template}}),
            json!({"replicas": 0}),
        ),
        (
            format!("/apis/policy/v1{ns}/poddisruptionbudgets"),
            json!({"kind": "PodDisruptionBudget", "apiVersion": "policy/v1", "spec": {"selector": selector, "minAvailable": 1}}),
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
        ),
        (
            format!("/apis/autoscaling/v2{ns}/horizontalpodautoscalers"),
            json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2", "spec": {"scaleTargetRef": target, "maxReplicas": 3}}),
            json!({"desiredReplicas": 0, "currentMetrics": null}),
        ),
        (
            format!("/apis/autoscaling/v1{ns}/horizontalpodautoscalers"),
            json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v1", "spec": {"scaleTargetRef": target, "maxReplicas": 3}}),
            json!({"currentReplicas": 0, "desiredReplicas": 0}),
        ),
        (
            format!("/apis/batch/v1{ns}/jobs"),
            json!({"kind": "Job", "apiVersion": "batch/v1", "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}),
            json!({}),
        ),
        (
            format!("/api/v1{ns}/services"),
            json!({"kind": "Service", "apiVersion": "v1", "spec": {"ports": [{"port": 80}]}}),
            json!({"loadBalancer": {}}),
        ),
        (
            format!("/api/v1{ns}/resourcequotas"),
            json!({"kind": "ResourceQuota", "apiVersion": "v1", "spec": {"hard": {"pods": "10"}}}),
            json!({}),
        ),
        (
            format!("/apis/networking.k8s.io/v1{ns}/ingresses"),
            json!({"kind": "Ingress", "apiVersion": "networking.k8s.io/v1", "spec": {"defaultBackend": {"service": {"name": "web", "port": {"number": 80}}}}}),
            json!({"loadBalancer": {}}),
        ),
        (
            "/apis/storage.k8s.io/v1/volumeattachments".to_string(),
            json!({"kind": "VolumeAttachment", "apiVersion": "storage.k8s.io/v1", "spec": {"attacher": "csi.example.com",
                "nodeName": "n1", "source": {"persistentVolumeName": "pv1"}}}),
            json!({"attached": false}),
        ),
    ];
    for (i, (path, mut body, want)) in cases.into_iter().enumerate() {
        let kind = body["kind"].as_str().unwrap().to_string();
        let name = format!("zero-{i}");
        body["metadata"] = json!({"name": name});
        // A status in the body of a create is dropped.
        body["status"] = json!({"observedGeneration": 7});
        let (code, created) = api.post(&path, body).await;
        assert_eq!(code, 201, "{kind}: {created}");
        assert_eq!(created["status"], want, "{kind}: created");
        let (_, read) = api.get(&format!("{path}/{name}")).await;
        assert_eq!(read["status"], want, "{kind}: read back");
        let rv = read["metadata"]["resourceVersion"].clone();
        assert_eq!(rv, created["metadata"]["resourceVersion"], "{kind}");

        // Writing the status back unchanged writes nothing; neither does a status that leaves
        // out its zero fields, as Go decodes both into the same struct.
        let (code, put) = api.put(&format!("{path}/{name}/status"), read.clone()).await;
        assert_eq!(code, 200, "{kind}: {put}");
        assert_eq!(put["metadata"]["resourceVersion"], rv, "{kind}: unchanged status written");
        assert_eq!(put["status"], want, "{kind}");
        let mut sparse = read.clone();
        sparse["status"] = json!({});
        let (code, put) = api.put(&format!("{path}/{name}/status"), sparse).await;
        assert_eq!(code, 200, "{kind}: {put}");
        assert_eq!(put["metadata"]["resourceVersion"], rv, "{kind}: empty status written");
        let (_, after) = api.get(&format!("{path}/{name}")).await;
        assert_eq!(after["metadata"]["resourceVersion"], rv, "{kind}");
        let managers = after["metadata"]["managedFields"].as_array().cloned().unwrap_or_default();
        assert!(managers.iter().all(|m| m.get("subresource").is_none()), "{kind}: {managers:?}");

        // A status update that leaves out zero fields stores them anyway.
        let has_generation = !["Service", "Ingress", "VolumeAttachment"].contains(&kind.as_str());
        if has_generation && want.as_object().is_some_and(|w| !w.is_empty()) {
            let mut partial = after.clone();
            partial["status"] = json!({"observedGeneration": 1});
            let (code, put) = api.put(&format!("{path}/{name}/status"), partial).await;
            assert_eq!(code, 200, "{kind}: {put}");
            let mut expected = want.clone();
            expected["observedGeneration"] = json!(1);
            assert_eq!(put["status"], expected, "{kind}: partial status");
        }
    }

    // Kinds whose strategy sets a status of its own keep it: pods, namespaces, claims.
    let (_, pod) = api.post("/api/v1/namespaces/default/pods", pod("p", None)).await;
    assert_eq!(pod["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
    let (_, nsobj) = api.post("/api/v1/namespaces", json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "zero"}})).await;
    assert_eq!(nsobj["status"], json!({"phase": "Active"}));
    let (_, pvc) = api.post("/api/v1/namespaces/default/persistentvolumeclaims", json!({"apiVersion": "v1",
        "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})).await;
    assert_eq!(pvc["status"], json!({"phase": "Pending"}));
    let (code, pv) = api.post("/api/v1/persistentvolumes", json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": "pv1"}, "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/tmp/pv1"}}, "status": {"phase": "Bound"}})).await;
    assert_eq!(code, 201, "{pv}");
    assert_eq!(pv["status"]["phase"], "Pending");
    assert!(pv["status"]["lastPhaseTransitionTime"].as_str().is_some_and(|t| t.ends_with('Z')), "{pv}");
    // ConfigMaps have no status at all.
    let (_, cm) = api.post("/api/v1/namespaces/default/configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}})).await;
    assert!(cm.get("status").is_none(), "{cm}");
    // A CustomResourceDefinition starts with its storage version stored and no accepted names.
    let (code, crd) = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}]}})).await;
    assert_eq!(code, 201, "{crd}");
    assert_eq!(crd["status"], json!({"acceptedNames": {"plural": "", "kind": ""}, "storedVersions": ["v1"]}));
}

/// HEAD answers as over HTTP/1.1 on HTTP/2 too: the headers of the answer, no body (a body on a
/// HEAD response is a protocol error in HTTP/2, so every HEAD used to fail there). Health and
/// version paths answer HEAD like GET; resource paths answer 405 as upstream's go-restful does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_requests_answer_on_both_protocols() {
    let s = ApiServer::start_default().await;
    let h1 = s.http_builder().http1_only().build().unwrap();
    let h2 = s.http_builder().http2_prior_knowledge().build().unwrap();
    let api = Api::new(&s);
    api.post("/api/v1/namespaces/default/configmaps", json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).await;
    // The default client negotiates HTTP/2 by ALPN.
    let head = s.http().head(format!("{}/healthz", s.url())).send().await.expect("HEAD /healthz with ALPN");
    assert_eq!((head.version(), head.status().as_u16()), (reqwest::Version::HTTP_2, 200));
    let like_get = ["/healthz", "/livez", "/readyz", "/healthz/ping", "/version", "/openapi/v2"];
    let others = ["/api/v1/namespaces/default/configmaps/c", "/api/v1/namespaces/default/configmaps"];
    for path in like_get.iter().chain(&others) {
        let url = format!("{}{path}", s.url());
        let mut answers = Vec::new();
        for (client, version) in [(&h1, reqwest::Version::HTTP_11), (&h2, reqwest::Version::HTTP_2)] {
            let head = client.head(&url).send().await.unwrap_or_else(|e| panic!("HEAD {path} over {version:?}: {e:?}"));
            assert_eq!(head.version(), version, "{path}");
            let headers: Vec<Option<String>> = ["content-type", "content-length", "cache-control"]
                .iter()
                .map(|h| head.headers().get(*h).map(|v| v.to_str().unwrap().to_string()))
                .collect();
            let code = head.status().as_u16();
            assert!(head.bytes().await.unwrap().is_empty(), "body of HEAD {path} over {version:?}");
            answers.push((code, headers));
        }
        assert_eq!(answers[0], answers[1], "HEAD {path} over HTTP/1.1 and HTTP/2");
        let (code, headers) = &answers[1];
        if like_get.contains(path) {
            let get = h2.get(&url).send().await.unwrap();
            assert_eq!(*code, get.status().as_u16(), "{path}");
            let ct = get.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
            assert_eq!(headers[0], ct, "{path}");
            let body = get.bytes().await.unwrap();
            assert_eq!(headers[1], Some(body.len().to_string()), "content-length of HEAD {path}");
        } else {
            assert_eq!(*code, 405, "HEAD {path}");
        }
    }
}
