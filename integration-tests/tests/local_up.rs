//! `hack/local-up-cluster.sh`, the README's run command: two copies side by side (one on etcd,
//! one on the embedded store, different LOCAL_UP_DIR and ports) come up with every component
//! binary that was built, serve kubectl through their admin.kubeconfig, and on SIGTERM stop
//! everything they started. Uses the already-built binaries (`BUILD=none`, `KUBE_BIN_DIR`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use integration_tests::{KUBECTL, find_binary, free_port, within};

struct LocalUp {
    dir: tempfile::TempDir,
    child: tokio::process::Child,
    log: PathBuf,
}

impl LocalUp {
    fn start(storage: &str, bin_dir: &Path) -> LocalUp {
        let dir = tempfile::Builder::new().prefix("local-up-test-").tempdir().unwrap();
        let log = dir.path().join("script.log");
        let out = std::fs::File::create(&log).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hack/local-up-cluster.sh");
        let child = tokio::process::Command::new("bash")
            .arg(script)
            .env("LOCAL_UP_DIR", dir.path().join("state"))
            .env("API_SECURE_PORT", free_port().unwrap().to_string())
            .env("STORAGE", storage)
            .env("BUILD", "none")
            .env("KUBE_BIN_DIR", bin_dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        LocalUp { dir, child, log }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn kubectl(&self, args: &[&str]) -> std::process::Output {
        let kubeconfig = self.state().join("admin.kubeconfig");
        tokio::process::Command::new(KUBECTL)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .output()
            .await
            .unwrap()
    }

    /// Processes whose command line mentions this copy's state directory (all it started).
    fn started_processes(&self) -> Vec<u32> {
        let needle = self.state().display().to_string();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                pids.push(pid);
            }
        }
        pids
    }
}

/// A failed test must not leave a cluster behind: SIGTERM the script (it stops what it
/// started), then kill whatever still mentions this copy's state directory.
impl Drop for LocalUp {
    fn drop(&mut self) {
        if let (Ok(None), Some(pid)) = (self.child.try_wait(), self.child.id()) {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
            for _ in 0..150 {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        for pid in self.started_processes() {
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
    }
}

/// The HTTPS health port a component's log line announces.
fn health_port(log: &str, component: &str) -> Option<u16> {
    let marker = format!("{component} health and metrics: https://127.0.0.1:");
    let rest = &log[log.find(&marker)? + marker.len()..];
    rest.split('/').next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_local_clusters_side_by_side_start_serve_and_stop() {
    let apiserver = find_binary("kube-apiserver").expect("kube-apiserver is built");
    let bin_dir = apiserver.parent().unwrap().to_path_buf();
    let mut clusters = [LocalUp::start("etcd", &bin_dir), LocalUp::start("embedded", &bin_dir)];

    for c in &clusters {
        within(180, "the cluster to serve kubectl", async {
            loop {
                // The script prints this once every component has been started.
                if c.log_text().contains("Local cluster is running") && c.kubectl(&["get", "ns", "default"]).await.status.success() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
        .await;
        let out = c.kubectl(&["create", "configmap", "hello", "--from-literal=greeting=hi"]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let log = c.log_text();
        assert!(log.contains("export KUBECONFIG="), "{log}");
        // The other components this build produced come up and serve HTTPS health.
        let http = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
        for component in ["kube-scheduler", "kube-controller-manager"] {
            if !bin_dir.join(component).exists() {
                continue;
            }
            let port = health_port(&log, component).unwrap_or_else(|| panic!("no {component} health line in:\n{log}"));
            within(60, "component health", async {
                loop {
                    if let Ok(r) = http.get(format!("https://127.0.0.1:{port}/healthz")).send().await {
                        if r.status() == 200 {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
            })
            .await;
        }
    }
    // Each copy is its own cluster.
    let out = clusters[1].kubectl(&["get", "cm", "hello", "-o", "jsonpath={.data.greeting}"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hi");

    for c in &mut clusters {
        assert!(!c.started_processes().is_empty(), "nothing running for {}", c.state().display());
        let pid = c.child.id().expect("script running") as libc::pid_t;
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = within(90, "the script to stop", c.child.wait()).await.unwrap();
        assert_eq!(status.code(), Some(143), "the script exits as terminated by SIGTERM:\n{}", c.log_text());
        let left = c.started_processes();
        assert!(left.is_empty(), "still running after SIGTERM: {left:?}\n{}", c.log_text());
    }
}
