//! The supervisor's promise: what it starts dies with it, grandchildren included, even
//! those in process groups or sessions of their own, even when the supervisor is SIGKILLed.
//! The process trees come from `devkit-probe` (src/bin/devkit-probe.rs).

use devkit::procfs::{self, Stat};
use devkit::supervisor::Proc;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PROBE: &str = env!("CARGO_BIN_EXE_devkit-probe");

fn free_port() -> u16 {
    devkit::localpg::free_port().expect("a free port")
}

fn wait_until(timeout: Duration, done: impl FnMut() -> bool) -> bool {
    devkit::wait_until(timeout, Duration::from_millis(50), done)
}

/// `pid`'s descendants once the probe's whole tree is up: middle, listen and idle under
/// whatever `pid` is, the port taken.
fn tree_up(pid: u32, port: u16, at_least: usize) -> Vec<Stat> {
    let mut tree = Vec::new();
    let up = wait_until(Duration::from_secs(60), || {
        tree = procfs::descendants(pid);
        tree.len() >= at_least && devkit::ports::taken(port)
    });
    assert!(
        up,
        "the probe's tree did not come up: {tree:?}, port {port} taken: {}",
        devkit::ports::taken(port)
    );
    tree
}

fn assert_all_gone(tree: &[Stat], port: u16) {
    let gone = wait_until(Duration::from_secs(60), || {
        tree.iter().all(|p| !procfs::still_alive(p)) && !devkit::ports::taken(port)
    });
    let left: Vec<String> = tree
        .iter()
        .filter(|p| procfs::still_alive(p))
        .map(|p| format!("{} ({:?})", p.pid, procfs::cmdline(p.pid)))
        .collect();
    assert!(
        gone,
        "still running after 60 s: {left:?}; port {port} taken: {:?}",
        devkit::ports::holders(port)
    );
}

#[test]
fn a_sigkilled_supervisor_takes_its_whole_tree_down() {
    let port = free_port();
    let mut parent = Command::new(PROBE)
        .args(["parent", &port.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the probe starts");
    // The reaper knows the grandchildren (it learns them every half second).
    let mut said = String::new();
    if let Some(out) = parent.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut said);
    }
    assert_eq!(said.trim(), "tracked");
    // The reaper, middle, listen and two idles.
    let tree = tree_up(parent.id(), port, 5);
    let sessions: std::collections::BTreeSet<u32> = tree.iter().map(|p| p.session).collect();
    let groups: std::collections::BTreeSet<u32> = tree.iter().map(|p| p.pgrp).collect();
    assert!(
        sessions.len() >= 3 && groups.len() >= 4,
        "expected grandchildren in sessions and groups of their own: {tree:?}"
    );

    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(parent.id() as libc::pid_t, libc::SIGKILL);
    }
    let _ = parent.wait();
    assert_all_gone(&tree, port);
}

#[tokio::test]
async fn dropping_a_proc_kills_everything_it_started() {
    let port = free_port();
    let logs = std::env::temp_dir().join(format!("devkit-test-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("a log dir");
    let mut cmd = tokio::process::Command::new(PROBE);
    cmd.args(["middle", &port.to_string()]);
    let mut middle = Proc::spawn("middle", cmd, &logs).expect("spawned");
    middle
        .wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(60))
        .await
        .expect("the listener is up");
    let pid = middle.pid().expect("a pid");
    let mut tree = tree_up(pid, port, 3);
    tree.extend(procfs::stat(pid));
    drop(middle);
    assert_all_gone(&tree, port);
}

#[tokio::test]
async fn stop_ends_the_child_and_what_it_left_behind() {
    let port = free_port();
    let logs = std::env::temp_dir().join(format!("devkit-test-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("a log dir");
    let mut cmd = tokio::process::Command::new(PROBE);
    cmd.args(["middle", &port.to_string()]);
    let mut middle = Proc::spawn("middle", cmd, &logs).expect("spawned");
    let pid = middle.pid().expect("a pid");
    let tree = tree_up(pid, port, 3);
    // middle exits on SIGTERM; the others, in groups and sessions of their own, get SIGKILL.
    let status = middle.stop(Duration::from_secs(30)).await;
    assert!(status.is_some(), "stop() returns the exit status");
    assert_all_gone(&tree, port);
    assert!(middle.pid().is_none());
}

#[tokio::test]
async fn wait_for_port_fails_at_once_when_the_child_exits() {
    let logs = std::env::temp_dir().join(format!("devkit-test-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("a log dir");
    let mut cmd = tokio::process::Command::new(PROBE);
    cmd.arg("no-such-mode");
    let mut proc = Proc::spawn("bad-probe", cmd, &logs).expect("spawned");
    let started = Instant::now();
    let err = proc
        .wait_for_port(
            &format!("127.0.0.1:{}", free_port()),
            Duration::from_secs(120),
        )
        .await
        .expect_err("it never listens");
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");
    assert!(err.contains("bad-probe exited"), "{err}");
    assert!(err.contains("usage: devkit-probe"), "{err}");
}
