//! `cargo xtask dev` dies cleanly however it is ended: after SIGHUP (a closed terminal)
//! and after SIGKILL, nothing it started survives and its ports are free again.
//!
//! Runs the real local mode (Postgres from DATABASE_URL or the default, cargo lambda
//! watch, the gateway, the connector) on free ports, so that it can run beside a developer's
//! `cargo xtask dev`. `cargo xtask test` builds the binaries and provides cargo-lambda.

use devkit::procfs::{self, Stat};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const XTASK: &str = env!("CARGO_BIN_EXE_xtask");
const BANNER: &str = "Billwire is running locally";

fn free_port() -> u16 {
    devkit::localpg::free_port().expect("a free port")
}

fn wait_until(timeout: Duration, done: impl FnMut() -> bool) -> bool {
    devkit::wait_until(timeout, Duration::from_millis(100), done)
}

struct Dev {
    child: Child,
    gateway: u16,
    functions: u16,
    /// Lines of its stdout (the banner) and stderr, as they come.
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Dev {
    /// `database_url`: the server's, explicitly, so that xtask dev neither starts nor stops
    /// a private cluster other tests may be using.
    fn start(database_url: &str) -> Dev {
        let (gateway, functions) = (free_port(), free_port());
        let mut child = Command::new(XTASK)
            .arg("dev")
            .env("DATABASE_URL", database_url)
            .env("BILLWIRE_DEV_GATEWAY_PORT", gateway.to_string())
            .env("BILLWIRE_DEV_FUNCTIONS_PORT", functions.to_string())
            .env("PATH", devkit::tools::path(&devkit::workspace_root()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xtask dev starts");
        let (tx, lines) = mpsc::channel();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Dev {
            child,
            gateway,
            functions,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `text`; panics with everything said so far if it does
    /// not come within `timeout` or xtask exits first.
    fn wait_for_line(&mut self, text: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!(
            "xtask dev never said {text:?}; it said:\n{}",
            self.seen.join("\n")
        );
    }

    fn listening(port: u16) -> bool {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    }

    /// Everything xtask started, with the sessions they lead: children are session leaders,
    /// and their children (and theirs) stay in those sessions.
    fn tree(&self) -> (Vec<Stat>, Vec<u32>) {
        let tree = procfs::descendants(self.child.id());
        let sessions = tree
            .iter()
            .filter(|p| p.ppid == self.child.id() && p.session == p.pid)
            .map(|p| p.session)
            .collect();
        (tree, sessions)
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, sig);
        }
    }

    /// Asserts that every process of `tree` is gone, nothing is left in `sessions`, and
    /// both ports are free, within a generous deadline.
    fn assert_all_gone(&self, tree: &[Stat], sessions: &[u32]) {
        let clean = wait_until(Duration::from_secs(60), || {
            tree.iter().all(|p| !procfs::still_alive(p))
                && sessions.iter().all(|s| procfs::session(*s).is_empty())
                && !devkit::ports::taken(self.gateway)
                && !devkit::ports::taken(self.functions)
        });
        let left: Vec<String> = tree
            .iter()
            .filter(|p| procfs::still_alive(p))
            .chain(
                sessions
                    .iter()
                    .flat_map(|s| procfs::session(*s))
                    .collect::<Vec<_>>()
                    .iter(),
            )
            .map(|p| format!("{} {:?}", p.pid, procfs::cmdline(p.pid)))
            .collect();
        assert!(
            clean,
            "after 60 s still running: {left:?}; gateway port {} held by {:?}, functions port {} by {:?}",
            self.gateway,
            devkit::ports::holders(self.gateway),
            self.functions,
            devkit::ports::holders(self.functions),
        );
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One test, two runs in turn: both use local mode's database, which each run prepares.
#[test]
fn xtask_dev_leaves_nothing_behind_after_sighup_or_sigkill() {
    let server = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(devkit::localpg::ensure())
        .expect("a Postgres");
    // SIGHUP as soon as the stack listens, while the functions are still starting: the
    // stop must cover whatever has started by then.
    let mut dev = Dev::start(&server.admin_url);
    let both_listen = wait_until(Duration::from_secs(600), || {
        Dev::listening(dev.gateway) && Dev::listening(dev.functions)
    });
    assert!(
        both_listen,
        "xtask dev did not listen on {} and {}",
        dev.gateway, dev.functions
    );
    let (tree, sessions) = dev.tree();
    assert!(
        tree.len() >= 2 && sessions.len() >= 2,
        "expected cargo lambda watch and the gateway among {tree:?}"
    );
    dev.signal(libc::SIGHUP);
    dev.wait_for_line("SIGHUP", Duration::from_secs(60));
    let exited = wait_until(Duration::from_secs(60), || {
        matches!(dev.child.try_wait(), Ok(Some(_)))
    });
    assert!(exited, "xtask dev did not exit after SIGHUP");
    assert!(
        matches!(dev.child.try_wait(), Ok(Some(s)) if s.success()),
        "a SIGHUP is a clean stop"
    );
    dev.assert_all_gone(&tree, &sessions);
    drop(dev);

    // SIGKILL once it is fully up: every function running under cargo lambda watch (each a
    // grandchild), the gateway, the connector.
    let mut dev = Dev::start(&server.admin_url);
    dev.wait_for_line(BANNER, Duration::from_secs(900));
    let (tree, sessions) = dev.tree();
    let functions = tree.iter().filter(|p| p.ppid != dev.child.id()).count();
    assert!(
        functions >= 5,
        "expected the functions to run as grandchildren: {tree:?}"
    );
    dev.signal(libc::SIGKILL);
    let _ = dev.child.wait();
    dev.assert_all_gone(&tree, &sessions);
}
