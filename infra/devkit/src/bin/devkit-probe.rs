//! A process tree for devkit's own tests (tests/supervisor.rs), shaped like
//! `cargo lambda watch`'s: a supervisor, its child, and grandchildren, one of them in a
//! process group of its own, listening on a port.
//!
//!   devkit-probe parent PORT   starts `middle PORT` through the supervisor, says
//!                              "tracked" once the reaper knows its grandchildren, waits
//!   devkit-probe middle PORT   starts `listen PORT` in a session of its own (as cargo
//!                              lambda watch starts functions), `idle` in a process group
//!                              of its own, and `idle` beside itself; then waits
//!   devkit-probe listen PORT   listens on 127.0.0.1:PORT, then waits
//!   devkit-probe idle          waits

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = args.get(1).cloned().unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("parent") => parent(&port),
        Some("middle") => middle(&port),
        Some("listen") => listen(&port),
        Some("idle") => {
            idle();
            Ok(())
        }
        _ => Err("usage: devkit-probe parent|middle|listen PORT | idle".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devkit-probe: {e}");
            ExitCode::FAILURE
        }
    }
}

fn me() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| e.to_string())
}

fn parent(port: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let logs = std::env::temp_dir().join(format!("devkit-probe-{}", std::process::id()));
        std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new(me()?);
        cmd.args(["middle", port]);
        let middle = devkit::supervisor::Proc::spawn("middle", cmd, &logs)?;
        let pid = middle.pid().ok_or("middle has no pid")?;
        loop {
            let tree = devkit::procfs::descendants(pid);
            let known = devkit::supervisor::known_to_reaper();
            if tree.len() >= 3 && tree.iter().all(|p| known.contains(&p.pid)) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        println!("tracked");
        std::future::pending::<()>().await;
        Ok(())
    })
}

fn middle(port: &str) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let me = me()?;
    let mut listener = std::process::Command::new(&me);
    listener.args(["listen", port]);
    // SAFETY: setsid(2) between fork and exec is async-signal-safe.
    unsafe {
        listener.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let _listener = listener.spawn().map_err(|e| e.to_string())?;
    let _grouped = std::process::Command::new(&me)
        .arg("idle")
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    let _beside = std::process::Command::new(&me)
        .arg("idle")
        .spawn()
        .map_err(|e| e.to_string())?;
    idle();
    Ok(())
}

fn listen(port: &str) -> Result<(), String> {
    let _listener =
        std::net::TcpListener::bind(format!("127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    idle();
    Ok(())
}

fn idle() {
    loop {
        std::thread::park();
    }
}
