//! kube-scheduler binary (wired up in the next commit).
fn main() {
    eprintln!("kube-scheduler: not wired up yet");
    std::process::exit(1);
}
