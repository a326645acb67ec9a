//! End-to-end test harness.
//!
//! The integration tests exercise the real binaries the way an operator would: a real etcd
//! process, the `kube-apiserver` binary serving HTTPS on a free loopback port, and real clients
//! (kubectl 1.33, kube-rs, raw HTTP). This module owns the process lifecycles (free ports, temp
//! dirs, readiness waits, SIGTERM/restart, kill on drop) so each test only says what it checks.
//!
//! Environment knobs:
//! - `TEST_STORAGE=etcd|embedded` picks the backend used by [`ApiServer::start_default`].
//! - `KUBE_BIN_DIR` overrides where `kube-apiserver` is looked up.
//! - `KEEP_TEST_DIRS=1` keeps the temp dirs (logs, certs, data) after a test.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// kubectl matching the API version this project implements.
pub const KUBECTL: &str = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33";

/// How long a process gets to become ready before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a process gets to exit after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the harness itself (not of the system under test).
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} exited before becoming ready ({status}); log {log}:\n{tail}")]
    Exited {
        what: &'static str,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{what} not ready after {waited:?} (last error: {last}); log {log}:\n{tail}")]
    NotReady {
        what: &'static str,
        waited: Duration,
        last: String,
        log: PathBuf,
        tail: String,
    },
    #[error("binary {0} not found: build it (`cargo build -p kube-apiserver`) or set KUBE_BIN_DIR")]
    MissingBinary(PathBuf),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("kube client: {0}")]
    Kube(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let context = context.into();
    move |source| HarnessError::Io { context, source }
}

/// A free TCP port on 127.0.0.1 (bound then released; callers retry on the rare collision).
pub fn free_port() -> Result<u16, HarnessError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io_err("binding 127.0.0.1:0"))?;
    let port = l.local_addr().map_err(io_err("local_addr"))?.port();
    Ok(port)
}

/// Raise the soft open-files limit to the hard limit, once per process; children inherit it
/// (a thousand watchers need a thousand sockets on each side when HTTP/2 is not negotiated).
fn raise_nofile_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain libc calls on a stack-allocated struct.
        unsafe {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
    });
}

/// Random lowercase hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_err()
    {
        // Not security relevant here: fall back to time and pid.
        let seed = Instant::now().elapsed().as_nanos() ^ u128::from(std::process::id());
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The last `lines` lines of a log file (for failure messages).
pub fn tail_file(path: &Path, lines: usize) -> String {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) => return format!("<cannot read {}: {e}>", path.display()),
    };
    // Read at most the last 64 KiB: logs can be large.
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut s = String::new();
    let mut raw = Vec::new();
    let _ = f.read_to_end(&mut raw);
    s.push_str(&String::from_utf8_lossy(&raw));
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run `fut`, panicking with `what` if it takes longer than `secs` (hang protection, not a
/// performance assertion).
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {secs}s: {what}"),
    }
}

fn new_tempdir(prefix: &str) -> Result<TempDir, HarnessError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(io_err("creating temp dir"))
}

fn keep_dirs() -> bool {
    std::env::var("KEEP_TEST_DIRS").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn log_file(path: &Path) -> Result<(Stdio, Stdio), HarnessError> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(io_err(format!("opening log {}", path.display())))?;
    let f2 = f.try_clone().map_err(io_err("cloning log handle"))?;
    Ok((Stdio::from(f), Stdio::from(f2)))
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: sending a signal to a pid we spawned and have not reaped yet.
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// SIGTERM, then wait (asynchronously) up to `STOP_TIMEOUT`, then SIGKILL.
async fn terminate(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    signal(child, libc::SIGTERM);
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(st)) => return Some(st),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            _ => break,
        }
    }
    let _ = child.kill();
    child.wait().ok()
}

fn kill_now(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn describe(st: Option<ExitStatus>) -> String {
    st.map(|s| s.to_string()).unwrap_or_else(|| "unknown status".into())
}

// ---------------------------------------------------------------------------------------------
// etcd
// ---------------------------------------------------------------------------------------------

/// A real etcd member on free loopback ports with its own temp data dir; killed on drop.
pub struct Etcd {
    child: Option<Child>,
    client_url: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    dir: Option<TempDir>,
}

impl Etcd {
    /// Start etcd and wait until `/health` reports healthy. Panics on failure.
    pub async fn start() -> Etcd {
        match Self::try_start().await {
            Ok(e) => e,
            Err(e) => panic!("starting etcd: {e}"),
        }
    }

    pub async fn try_start() -> Result<Etcd, HarnessError> {
        let dir = new_tempdir("it-etcd-")?;
        let log_path = dir.path().join("etcd.log");
        let mut last_err = None;
        for attempt in 0..3 {
            let client_port = free_port()?;
            let mut peer_port = free_port()?;
            while peer_port == client_port {
                peer_port = free_port()?;
            }
            let client_url = format!("http://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            // A fresh member dir per attempt: a failed attempt may have initialised one.
            let data_dir = dir.path().join(format!("data-{attempt}"));
            let (out, err) = log_file(&log_path)?;
            let child = Command::new("etcd")
                .arg("--name=it")
                .arg(format!("--data-dir={}", data_dir.display()))
                .arg(format!("--listen-client-urls={client_url}"))
                .arg(format!("--advertise-client-urls={client_url}"))
                .arg(format!("--listen-peer-urls={peer_url}"))
                .arg(format!("--initial-advertise-peer-urls={peer_url}"))
                .arg(format!("--initial-cluster=it={peer_url}"))
                .arg("--initial-cluster-state=new")
                .arg("--logger=zap")
                .arg("--log-outputs=stderr")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(io_err("spawning etcd (is etcd-server installed?)"))?;
            let mut etcd = Etcd {
                child: Some(child),
                client_url,
                data_dir,
                log_path: log_path.clone(),
                dir: None,
            };
            match etcd.wait_healthy().await {
                Ok(()) => {
                    etcd.dir = Some(dir);
                    return Ok(etcd);
                }
                Err(e) => {
                    if let Some(mut c) = etcd.child.take() {
                        kill_now(&mut c);
                    }
                    let in_use = tail_file(&log_path, 40).contains("address already in use");
                    if !in_use {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::Kube("etcd start attempts exhausted".into())))
    }

    async fn wait_healthy(&mut self) -> Result<(), HarnessError> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let url = format!("{}/health", self.client_url);
        let start = Instant::now();
        let mut last = String::from("no attempt");
        while start.elapsed() < READY_TIMEOUT {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(st)) = child.try_wait()
            {
                return Err(HarnessError::Exited {
                    what: "etcd",
                    status: st.to_string(),
                    log: self.log_path.clone(),
                    tail: tail_file(&self.log_path, 40),
                });
            }
            match http.get(&url).send().await {
                Ok(resp) => {
                    let body = resp.text().await.unwrap_or_default();
                    if body.contains("\"health\":\"true\"") {
                        return Ok(());
                    }
                    last = body;
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(HarnessError::NotReady {
            what: "etcd",
            waited: READY_TIMEOUT,
            last,
            log: self.log_path.clone(),
            tail: tail_file(&self.log_path, 40),
        })
    }

    /// Client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> &str {
        &self.client_url
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// PID of the running member, if any.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Run `etcdctl` against this member.
    pub fn etcdctl(&self, args: &[&str]) -> Result<Output, HarnessError> {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client_url))
            .args(args)
            .output()
            .map_err(io_err("running etcdctl (is etcd-client installed?)"))
    }

    /// SIGTERM and wait for exit.
    pub async fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c).await;
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_now(&mut c);
        }
        if let Some(dir) = self.dir.take()
            && keep_dirs()
        {
            eprintln!("keeping etcd dir {}", dir.keep().display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// kube-apiserver
// ---------------------------------------------------------------------------------------------

/// Which store the API server uses.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// A dedicated etcd started (and owned) by the [`ApiServer`] handle.
    #[default]
    OwnEtcd,
    /// An existing etcd; the server gets a unique `--etcd-prefix`.
    Etcd { endpoint: String },
    /// The embedded store, with its data dir inside the server's temp dir.
    Embedded,
    /// An existing etcd under a given `--etcd-prefix`: servers started with the same prefix
    /// share every object, as the API servers of an HA control plane do.
    SharedEtcd { endpoint: String, prefix: String },
}

/// What [`ApiServer::start`] launches.
#[derive(Debug, Clone, Default)]
pub struct ApiServerOptions {
    pub storage: Storage,
    /// Extra flags appended to the command line.
    pub extra_args: Vec<String>,
}

impl ApiServerOptions {
    /// Backend from `TEST_STORAGE` (`etcd`, the default, or `embedded`).
    pub fn from_env() -> Self {
        match std::env::var("TEST_STORAGE").as_deref() {
            Ok("embedded") => Self::embedded(),
            Ok("etcd") | Ok("etcd3") | Ok("") | Err(_) => Self::own_etcd(),
            Ok(other) => panic!("TEST_STORAGE={other:?}: expected etcd or embedded"),
        }
    }

    pub fn own_etcd() -> Self {
        Self {
            storage: Storage::OwnEtcd,
            extra_args: Vec::new(),
        }
    }

    pub fn embedded() -> Self {
        Self {
            storage: Storage::Embedded,
            extra_args: Vec::new(),
        }
    }

    pub fn with_etcd(endpoint: &str) -> Self {
        Self {
            storage: Storage::Etcd {
                endpoint: endpoint.to_string(),
            },
            extra_args: Vec::new(),
        }
    }

    /// Several servers started with these options (same `endpoint`, same `prefix`) serve one
    /// cluster; see [`unique_etcd_prefix`].
    pub fn shared_etcd(endpoint: &str, prefix: &str) -> Self {
        Self {
            storage: Storage::SharedEtcd {
                endpoint: endpoint.to_string(),
                prefix: prefix.to_string(),
            },
            extra_args: Vec::new(),
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }
}

/// Locate a project binary: `$KUBE_BIN_DIR`, the profile dir of the running test executable,
/// `$CARGO_TARGET_DIR/debug`, then `<workspace>/target/debug`.
pub fn find_binary(name: &str) -> Result<PathBuf, HarnessError> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("KUBE_BIN_DIR")
        && !dir.is_empty()
    {
        // An explicit choice is the only candidate.
        let p = PathBuf::from(dir).join(name);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(HarnessError::MissingBinary(p))
        };
    }
    if let Ok(exe) = std::env::current_exe() {
        // A binary such as target/<profile>/apiserver-bench -> target/<profile>/<name>.
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join(name));
        }
        // A test in target/<profile>/deps/<test-exe> -> target/<profile>/<name>.
        if let Some(profile_dir) = exe.parent().and_then(Path::parent) {
            candidates.push(profile_dir.join(name));
        }
    }
    if let Ok(dir) = std::env::var("CARGO_TARGET_DIR")
        && !dir.is_empty()
    {
        candidates.push(PathBuf::from(dir).join("debug").join(name));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    candidates.push(workspace.join("target").join("debug").join(name));
    for c in &candidates {
        if c.is_file() {
            return Ok(c.clone());
        }
    }
    Err(HarnessError::MissingBinary(
        candidates.pop().unwrap_or_else(|| PathBuf::from(name)),
    ))
}

/// Kubeconfig text for `server` with the admin `token`. `ca` of `None` means skip verification.
pub fn render_kubeconfig(server: &str, ca: Option<&Path>, token: &str) -> String {
    let tls = match ca {
        Some(p) => format!("certificate-authority: {}", p.display()),
        None => "insecure-skip-tls-verify: true".to_string(),
    };
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: it
  cluster:
    server: {server}
    {tls}
users:
- name: admin
  user:
    token: {token}
contexts:
- name: it
  context:
    cluster: it
    user: admin
    namespace: default
current-context: it
"
    )
}

/// Builds reqwest clients for one server; `Send + Clone`, so tasks can rebuild their client
/// (e.g. after a restart) without holding the [`ApiServer`].
#[derive(Debug, Clone)]
pub struct HttpFactory {
    ca_path: Option<PathBuf>,
    token: String,
}

impl HttpFactory {
    /// A builder trusting the server's CA (or accepting any cert in fallback mode), with the
    /// admin bearer token preset.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(mut v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        tls_builder(self.ca_path.as_deref()).default_headers(headers)
    }

    pub fn build(&self) -> reqwest::Client {
        self.builder().build().expect("building reqwest client")
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> reqwest::Client {
        tls_builder(self.ca_path.as_deref())
            .build()
            .expect("building reqwest client")
    }
}

fn tls_builder(ca: Option<&Path>) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false);
    match ca.and_then(|p| std::fs::read(p).ok()) {
        Some(pem) => {
            for cert in reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default() {
                b = b.add_root_certificate(cert);
            }
        }
        None => b = b.danger_accept_invalid_certs(true),
    }
    b
}

static SERVER_SEQ: AtomicU64 = AtomicU64::new(0);

/// A running `kube-apiserver` process with its own port, cert dir, token file and kubeconfig.
/// Killed on drop (after printing its log tail if the test is panicking).
pub struct ApiServer {
    child: Option<Child>,
    binary: PathBuf,
    args: Vec<String>,
    port: u16,
    token: String,
    storage_name: &'static str,
    root: PathBuf,
    cert_dir: PathBuf,
    log_path: PathBuf,
    kubeconfig_path: PathBuf,
    cache_dir: PathBuf,
    /// CA the clients trust; `None` when the harness fell back to not verifying.
    ca_path: Option<PathBuf>,
    dir: Option<TempDir>,
    etcd: Option<Etcd>,
}

impl ApiServer {
    /// Start with the backend chosen by `TEST_STORAGE` (default etcd). Panics on failure.
    pub async fn start_default() -> ApiServer {
        Self::start(ApiServerOptions::from_env()).await
    }

    /// Start and wait for `/readyz`. Panics on failure (with the server log tail).
    pub async fn start(opts: ApiServerOptions) -> ApiServer {
        match Self::try_start(opts).await {
            Ok(s) => s,
            Err(e) => panic!("starting kube-apiserver: {e}"),
        }
    }

    pub async fn try_start(opts: ApiServerOptions) -> Result<ApiServer, HarnessError> {
        raise_nofile_limit();
        let binary = find_binary("kube-apiserver")?;
        let dir = new_tempdir("it-apiserver-")?;
        let root = dir.path().to_path_buf();
        let cert_dir = root.join("certs");
        let data_dir = root.join("data");
        let cache_dir = root.join("kubectl-cache");
        for d in [&cert_dir, &data_dir, &cache_dir] {
            std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
        }
        let token = random_hex(16);
        let token_file = root.join("tokens.csv");
        std::fs::write(&token_file, format!("{token},admin,admin-uid,\"system:masters\"\n"))
            .map_err(io_err("writing token file"))?;

        let (etcd, storage_args, storage_name) = match opts.storage {
            Storage::OwnEtcd => {
                let etcd = Etcd::try_start().await?;
                let args = etcd_args(etcd.endpoint());
                (Some(etcd), args, "etcd")
            }
            Storage::Etcd { endpoint } => (None, etcd_args(&endpoint), "etcd"),
            Storage::SharedEtcd { endpoint, prefix } => (None, etcd_args_with_prefix(&endpoint, &prefix), "etcd"),
            Storage::Embedded => (
                None,
                vec![
                    "--storage-backend=embedded".to_string(),
                    format!("--data-dir={}", data_dir.display()),
                ],
                "embedded",
            ),
        };

        let mut server = ApiServer {
            child: None,
            binary,
            args: Vec::new(),
            port: 0,
            token,
            storage_name,
            log_path: root.join("apiserver.log"),
            kubeconfig_path: root.join("kubeconfig"),
            cert_dir: cert_dir.clone(),
            cache_dir,
            root,
            ca_path: None,
            dir: Some(dir),
            etcd,
        };
        let mut last_err = None;
        for _attempt in 0..3 {
            server.port = free_port()?;
            let mut args = storage_args.clone();
            args.extend([
                "--bind-address=127.0.0.1".to_string(),
                "--advertise-address=127.0.0.1".to_string(),
                format!("--secure-port={}", server.port),
                format!("--cert-dir={}", cert_dir.display()),
                format!("--token-auth-file={}", token_file.display()),
            ]);
            // The test's own range replaces the default one (the flag may be given only once).
            if !opts.extra_args.iter().any(|a| a.starts_with("--service-cluster-ip-range")) {
                args.push("--service-cluster-ip-range=10.0.0.0/24".to_string());
            }
            args.extend(opts.extra_args.iter().cloned());
            server.args = args;
            match server.spawn_and_wait().await {
                Ok(()) => return Ok(server),
                Err(e) => {
                    if let Some(mut c) = server.child.take() {
                        kill_now(&mut c);
                    }
                    if !tail_file(&server.log_path, 40).contains("in use") {
                        return Err(e);
                    }
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| HarnessError::Kube("start attempts exhausted".into())))
    }

    async fn spawn_and_wait(&mut self) -> Result<(), HarnessError> {
        let (out, err) = log_file(&self.log_path)?;
        {
            let mut f = OpenOptions::new()
                .append(true)
                .open(&self.log_path)
                .map_err(io_err("log"))?;
            let _ = writeln!(f, "=== harness: {} {}", self.binary.display(), self.args.join(" "));
        }
        let child = Command::new(&self.binary)
            .args(&self.args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err(format!("spawning {}", self.binary.display())))?;
        self.child = Some(child);
        self.wait_ready().await
    }

    /// Wait until `/readyz` answers 200, then settle which CA clients trust and write the
    /// kubeconfig.
    async fn wait_ready(&mut self) -> Result<(), HarnessError> {
        let insecure = tls_builder(None).timeout(Duration::from_secs(5)).build()?;
        let url = format!("{}/readyz", self.url());
        let start = Instant::now();
        let mut last = String::from("no attempt");
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(st)) = child.try_wait()
            {
                return Err(HarnessError::Exited {
                    what: "kube-apiserver",
                    status: st.to_string(),
                    log: self.log_path.clone(),
                    tail: tail_file(&self.log_path, 60),
                });
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(HarnessError::NotReady {
                    what: "kube-apiserver",
                    waited: READY_TIMEOUT,
                    last,
                    log: self.log_path.clone(),
                    tail: tail_file(&self.log_path, 60),
                });
            }
            match insecure.get(&url).send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => last = format!("HTTP {}", r.status()),
                Err(e) => last = format!("{e:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // The serving cert exists now. Prefer a separate CA when the server wrote one.
        let ca = ["ca.crt", "apiserver.crt"]
            .iter()
            .map(|f| self.cert_dir.join(f))
            .find(|p| p.is_file());
        self.ca_path = None;
        if let Some(ca) = ca {
            let verified = tls_builder(Some(&ca)).timeout(Duration::from_secs(5)).build()?;
            match verified.get(&url).send().await {
                Ok(r) if r.status().is_success() => self.ca_path = Some(ca),
                Ok(r) => eprintln!("harness: verified /readyz got HTTP {}; not verifying TLS", r.status()),
                Err(e) => eprintln!(
                    "harness: WARNING: serving cert does not verify against {}: {e:?}; tests continue without TLS verification",
                    ca.display()
                ),
            }
        } else {
            eprintln!(
                "harness: WARNING: no apiserver.crt/ca.crt in {}; not verifying TLS",
                self.cert_dir.display()
            );
        }
        let kubeconfig = render_kubeconfig(&self.url(), self.ca_path.as_deref(), &self.token);
        std::fs::write(&self.kubeconfig_path, kubeconfig).map_err(io_err("writing kubeconfig"))?;
        Ok(())
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The admin bearer token (user `admin`, group `system:masters`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// `"etcd"` or `"embedded"`.
    /// The `--etcd-prefix` the server was started with (etcd servers only).
    pub fn etcd_prefix(&self) -> Option<String> {
        self.args.iter().find_map(|a| a.strip_prefix("--etcd-prefix=")).map(String::from)
    }

    pub fn storage_name(&self) -> &'static str {
        self.storage_name
    }

    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    /// The CA file clients trust (`None` in the no-verification fallback).
    pub fn ca_path(&self) -> Option<&Path> {
        self.ca_path.as_deref()
    }

    /// Whether clients verify the serving certificate.
    pub fn tls_verified(&self) -> bool {
        self.ca_path.is_some()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_file(&self.log_path, lines)
    }

    /// The server's temp dir (holds certs/, data/, the log, the kubeconfig).
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    /// The etcd this server owns, if it was started with [`Storage::OwnEtcd`].
    pub fn etcd(&self) -> Option<&Etcd> {
        self.etcd.as_ref()
    }

    /// The server's own etcd, mutably (e.g. to stop it under the server).
    pub fn etcd_mut(&mut self) -> Option<&mut Etcd> {
        self.etcd.as_mut()
    }

    /// PID of the server process, if running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A kube-rs client built from [`Self::kubeconfig_path`].
    pub async fn client(&self) -> kube::Client {
        match self.try_client().await {
            Ok(c) => c,
            Err(e) => panic!("building kube client: {e}"),
        }
    }

    pub async fn try_client(&self) -> Result<kube::Client, HarnessError> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig_path)
            .map_err(|e| HarnessError::Kube(e.to_string()))?;
        let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| HarnessError::Kube(e.to_string()))?;
        kube::Client::try_from(cfg).map_err(|e| HarnessError::Kube(e.to_string()))
    }

    pub fn http_factory(&self) -> HttpFactory {
        HttpFactory {
            ca_path: self.ca_path.clone(),
            token: self.token.clone(),
        }
    }

    /// A reqwest builder with TLS trust and the admin bearer token preset.
    pub fn http_builder(&self) -> reqwest::ClientBuilder {
        self.http_factory().builder()
    }

    /// A reqwest client with TLS trust and the admin bearer token preset.
    pub fn http(&self) -> reqwest::Client {
        self.http_factory().build()
    }

    /// A kubectl 1.33 command bound to this server (`--kubeconfig`, per-server `--cache-dir`).
    pub fn kubectl_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(KUBECTL);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig_path.display()))
            .arg(format!("--cache-dir={}", self.cache_dir.display()))
            .args(args)
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Run kubectl with `args` and return its output.
    pub async fn kubectl(&self, args: &[&str]) -> Output {
        let out = self.kubectl_command(args).output().await;
        match out {
            Ok(o) => o,
            Err(e) => panic!("running {KUBECTL}: {e}"),
        }
    }

    /// Run kubectl with `stdin` fed to it (e.g. `create -f -`).
    pub async fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.kubectl_command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("running {KUBECTL}: {e}"));
        if let Some(mut si) = child.stdin.take() {
            si.write_all(stdin.as_bytes()).await.expect("writing kubectl stdin");
        }
        child.wait_with_output().await.expect("waiting for kubectl")
    }

    /// Run kubectl, assert success, return stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert_kubectl_ok(args, &out)
    }

    /// Run kubectl with stdin, assert success, return stdout.
    pub async fn kubectl_stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl_stdin(args, stdin).await;
        assert_kubectl_ok(args, &out)
    }

    /// Run kubectl, assert failure, return stderr.
    pub async fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded\nstdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Write `contents` to a file in the server's temp dir and return its path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.root.join(name);
        std::fs::write(&p, contents).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }

    /// SIGTERM the server and wait for it to exit (SIGKILL after a grace period).
    pub async fn stop(&mut self) -> Option<ExitStatus> {
        let st = match self.child.take() {
            Some(mut c) => terminate(&mut c).await,
            None => None,
        };
        if let Ok(mut f) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(f, "=== harness: stopped ({})", describe(st));
        }
        st
    }

    /// Stop (if running) and start again with the same flags, port, cert dir and data.
    pub async fn restart(&mut self) {
        if let Err(e) = self.try_restart().await {
            panic!("restarting kube-apiserver: {e}");
        }
    }

    pub async fn try_restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await;
        self.spawn_and_wait().await
    }
}

/// An etcd prefix no other server of this test process uses (what each server gets unless
/// it is started with [`ApiServerOptions::shared_etcd`]).
pub fn unique_etcd_prefix() -> String {
    let seq = SERVER_SEQ.fetch_add(1, Ordering::Relaxed);
    format!("/registry-it-{}-{seq}", std::process::id())
}

fn etcd_args(endpoint: &str) -> Vec<String> {
    etcd_args_with_prefix(endpoint, &unique_etcd_prefix())
}

fn etcd_args_with_prefix(endpoint: &str, prefix: &str) -> Vec<String> {
    vec![
        "--storage-backend=etcd3".to_string(),
        format!("--etcd-servers={endpoint}"),
        format!("--etcd-prefix={prefix}"),
    ]
}

fn assert_kubectl_ok(args: &[&str], out: &Output) -> String {
    assert!(
        out.status.success(),
        "kubectl {args:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_now(&mut c);
        }
        if std::thread::panicking() {
            eprintln!(
                "---- kube-apiserver ({}) log tail {} ----\n{}\n----",
                self.storage_name,
                self.log_path.display(),
                tail_file(&self.log_path, 80)
            );
        }
        if let Some(dir) = self.dir.take()
            && keep_dirs()
        {
            eprintln!("keeping apiserver dir {}", dir.keep().display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // SAFETY: signal 0 only checks for existence.
        unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
    }

    #[tokio::test]
    async fn etcd_starts_serves_and_dies_on_drop() {
        let etcd = Etcd::start().await;
        let put = etcd.etcdctl(&["put", "/harness/k", "v1"]).unwrap();
        assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
        let get = etcd.etcdctl(&["get", "/harness/k", "--print-value-only"]).unwrap();
        assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "v1");
        let health = etcd.etcdctl(&["endpoint", "health"]).unwrap();
        assert!(health.status.success(), "{}", String::from_utf8_lossy(&health.stderr));
        assert!(etcd.log_path().is_file());
        let pid = etcd.pid().unwrap();
        let port: u16 = etcd.endpoint().rsplit(':').next().unwrap().parse().unwrap();
        drop(etcd);
        assert!(!alive(pid), "etcd pid {pid} still alive after drop");
        // The client port is free again.
        TcpListener::bind(("127.0.0.1", port)).expect("client port released");
    }

    #[tokio::test]
    async fn etcd_stop_is_graceful_and_two_members_coexist() {
        let mut a = Etcd::start().await;
        let b = Etcd::start().await;
        assert_ne!(a.endpoint(), b.endpoint());
        let pid = a.pid().unwrap();
        a.stop().await;
        assert!(!alive(pid));
        assert!(a.pid().is_none());
        let get = b.etcdctl(&["endpoint", "health"]).unwrap();
        assert!(get.status.success());
        // The stopped member's data dir survives a stop (only Drop removes it).
        assert!(a.data_dir().join("member").is_dir());
    }

    #[test]
    fn kubeconfig_is_readable_by_kube() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        let text = render_kubeconfig("https://127.0.0.1:1234", Some(&ca), "tok");
        let path = dir.path().join("kc");
        std::fs::write(&path, text).unwrap();
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("it"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
        assert_eq!(cluster.certificate_authority.as_deref(), Some(ca.to_str().unwrap()));
        let insecure = render_kubeconfig("https://127.0.0.1:1", None, "tok");
        std::fs::write(&path, insecure).unwrap();
        let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().insecure_skip_tls_verify,
            Some(true)
        );
    }

    #[test]
    fn options_follow_test_storage() {
        // Only checks the mapping function; the env var is process-global so read, don't set.
        let opts = ApiServerOptions::embedded().arg("--v=4");
        assert!(matches!(opts.storage, Storage::Embedded));
        assert_eq!(opts.extra_args, vec!["--v=4".to_string()]);
        assert!(matches!(
            ApiServerOptions::with_etcd("http://x").storage,
            Storage::Etcd { .. }
        ));
        let prefixes: Vec<String> = (0..2).map(|_| etcd_args("http://e")[2].clone()).collect();
        assert_ne!(prefixes[0], prefixes[1], "each server gets its own etcd prefix");
        assert_eq!(etcd_args_with_prefix("http://e", "/shared")[2], "--etcd-prefix=/shared");
    }

    #[test]
    fn find_binary_honours_kube_bin_dir() {
        // KUBE_BIN_DIR is read, not set, here; exercise the explicit-missing path via a fake name.
        let err = find_binary("definitely-not-a-binary-xyz").unwrap_err();
        assert!(matches!(err, HarnessError::MissingBinary(_)));
    }

    #[test]
    fn random_tokens_differ_and_tail_reads_end() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_hex(16));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, (0..100).map(|i| format!("line{i}\n")).collect::<String>()).unwrap();
        assert_eq!(tail_file(&p, 2), "line98\nline99");
    }
}

// ---------------------------------------------------------------------------------------------
// kube-controller-manager
// ---------------------------------------------------------------------------------------------

/// A running `kube-controller-manager` against an [`ApiServer`] (built with
/// `cargo build -p kube-controller-manager`); killed on drop, log tail printed on panic.
pub struct ControllerManager {
    child: Option<Child>,
    log_path: PathBuf,
}

impl ControllerManager {
    /// Start with `--kubeconfig` of `server`, leader election off, no health port, plus `args`.
    pub fn start(server: &ApiServer, args: &[&str]) -> ControllerManager {
        let binary = find_binary("kube-controller-manager").unwrap_or_else(|e| panic!("{e}"));
        let seq = SERVER_SEQ.fetch_add(1, Ordering::Relaxed);
        let log_path = server.root_dir().join(format!("kube-controller-manager-{seq}.log"));
        let (out, err) = log_file(&log_path).unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(&binary);
        cmd.arg(format!("--kubeconfig={}", server.kubeconfig_path().display()));
        if !args.iter().any(|a| a.starts_with("--leader-elect")) {
            cmd.arg("--leader-elect=false");
        }
        if !args.iter().any(|a| a.starts_with("--secure-port")) {
            cmd.arg("--secure-port=0");
        }
        let child = cmd
            .args(args)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", binary.display()));
        ControllerManager { child: Some(child), log_path }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGTERM and wait for exit.
    pub async fn stop(&mut self) -> Option<ExitStatus> {
        match self.child.take() {
            Some(mut c) => terminate(&mut c).await,
            None => None,
        }
    }

    /// SIGKILL (an abrupt crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_now(&mut c);
        }
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_now(&mut c);
        }
        if std::thread::panicking() {
            eprintln!("---- kube-controller-manager log tail {} ----\n{}\n----", self.log_path.display(), tail_file(&self.log_path, 80));
        }
    }
}
