//! The shipped kube-scheduler deployment files only use flags the binary accepts, and the
//! static pod is a valid Pod probing the port the binary serves.

use std::path::PathBuf;

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use kube_scheduler::Options;

fn repo_file(rel: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

#[test]
fn systemd_unit_flags_parse() {
    let unit = repo_file("manifests/systemd/kube-scheduler.service").replace("\\\n", " ");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let argv: Vec<&str> = line
        .split_whitespace()
        .filter(|a| !a.starts_with('$'))
        .collect();
    assert_eq!(argv[0], "/usr/local/bin/kube-scheduler");
    let o = Options::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(o.leader_election.leader_elect);
    assert_eq!(o.secure_port, 10259);
}

#[test]
fn static_pod_is_a_pod_with_accepted_flags() {
    let pod: Pod = serde_yaml::from_str(&repo_file("manifests/static-pods/kube-scheduler.yaml"))
        .expect("valid Pod");
    assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
    let spec = pod.spec.expect("spec");
    let c = &spec.containers[0];
    let argv = c.command.clone().expect("command");
    assert_eq!(argv[0], "kube-scheduler");
    let o = Options::try_parse_from(&argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    for probe in [&c.liveness_probe, &c.readiness_probe, &c.startup_probe] {
        let get = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .expect("httpGet probe");
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(o.secure_port as i32)
        );
        assert_eq!(get.scheme.as_deref(), Some("HTTPS"));
    }
}
