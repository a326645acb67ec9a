//! The shipped deployment files (systemd units, static pod) only use flags the kube-apiserver
//! binary accepts, and the static pod is a valid Pod.

use std::path::PathBuf;

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube_apiserver::config::{Options, StorageConfig};

fn repo_file(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// The ExecStart command of a unit file, continuation lines joined, split on whitespace.
fn exec_start(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("unit has an ExecStart line");
    line.split_whitespace().map(String::from).collect()
}

#[test]
fn systemd_unit_flags_parse() {
    let unit = repo_file("manifests/systemd/kube-apiserver.service");
    let mut argv = exec_start(&unit);
    assert_eq!(argv[0], "/usr/local/bin/kube-apiserver");
    // The environment file's extra flags are not part of the unit.
    argv.retain(|a| !a.starts_with('$'));
    let opts = Options::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let cfg = opts.into_config().expect("valid config");
    assert!(matches!(cfg.storage, StorageConfig::Etcd { .. }));
    assert_eq!(cfg.listen.port(), 6443);

    let etcd = exec_start(&repo_file("manifests/systemd/etcd.service"));
    assert_eq!(etcd[0], "/usr/bin/etcd");
    assert!(
        etcd.contains(&"--listen-client-urls=http://127.0.0.1:2379".to_string()),
        "{etcd:?}"
    );
}

#[test]
fn static_pod_is_a_pod_with_accepted_flags() {
    let pod: Pod = serde_yaml::from_str(&repo_file("manifests/static-pods/kube-apiserver.yaml")).expect("valid Pod");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.host_network, Some(true));
    let c = &spec.containers[0];
    let argv = c.command.clone().expect("command");
    assert_eq!(argv[0], "kube-apiserver");
    let cfg = Options::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .into_config()
        .unwrap();
    assert_eq!(cfg.listen.port(), 6443);
    assert!(cfg.tls_cert_file.is_some() && cfg.client_ca_file.is_some());
    for probe in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe] {
        let get = probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("httpGet probe");
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
}
