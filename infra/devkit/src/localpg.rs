//! Finding Postgres for tests, local mode and benchmarks, and starting a private cluster
//! when none answers (docs/architecture.md).
//!
//! The server is `$DATABASE_URL` when set, else `postgres://postgres@127.0.0.1:5432`. When
//! that does not answer and `DATABASE_URL` was not set explicitly, a private cluster is
//! created under `target/pg/` with the machine's `initdb` and `pg_ctl` and started on port
//! 54329; it keeps running for the next test run. Not for Lambda functions.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const PRIVATE_PORT: u16 = 54329;

#[derive(Debug, Clone)]
pub struct Server {
    /// A URL of the server's `postgres` database (for CREATE DATABASE and the like).
    pub admin_url: String,
    /// Whether this process (or an earlier run) started it under `target/pg`.
    pub private: Option<PathBuf>,
}

impl Server {
    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        with_database(&self.admin_url, name)
    }
}

/// Replaces the database name in a `postgres://` URL, keeping everything else.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{}", &base[..path_start], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

pub use crate::workspace_root;

pub async fn answers(url: &str) -> bool {
    let Ok(mut cfg) = url.parse::<tokio_postgres::Config>() else {
        return false;
    };
    cfg.connect_timeout(Duration::from_secs(2));
    match tokio::time::timeout(Duration::from_secs(3), cfg.connect(tokio_postgres::NoTls)).await {
        Ok(Ok((client, conn))) => {
            drop(client);
            let _ = conn.await;
            true
        }
        _ => false,
    }
}

/// A Postgres server that answers, starting the private cluster if need be.
pub async fn ensure() -> Result<Server, String> {
    let explicit = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let admin_url = with_database(explicit.as_deref().unwrap_or(DEFAULT_URL), "postgres");
    if answers(&admin_url).await {
        return Ok(Server {
            admin_url,
            private: None,
        });
    }
    if explicit.is_some() {
        return Err(format!(
            "DATABASE_URL is set but no Postgres answers at {admin_url}; start it or unset DATABASE_URL \
             to use a private cluster under target/pg"
        ));
    }
    let dir = workspace_root().join("target").join("pg");
    let started = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || start_private(&dir)
    })
    .await
    .map_err(|e| e.to_string())??;
    let admin_url = format!("postgres://postgres@127.0.0.1:{PRIVATE_PORT}/postgres");
    for _ in 0..50 {
        if answers(&admin_url).await {
            return Ok(Server {
                admin_url,
                private: Some(started),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!(
        "started a private Postgres in {} but it does not answer; see {}",
        dir.display(),
        dir.join("postgres.log").display()
    ))
}

/// Stops the private cluster in `dir` (local mode does this on Ctrl-C).
pub fn stop_private(dir: &Path) -> Result<(), String> {
    let bin = binaries()?;
    run_as_owner(
        Command::new(bin.join("pg_ctl"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-m", "fast", "-w", "stop"]),
    )
}

fn start_private(dir: &Path) -> Result<PathBuf, String> {
    start_cluster(dir, PRIVATE_PORT)?;
    Ok(dir.to_path_buf())
}

/// A port nothing listens on right now (for a throwaway cluster or a test's server).
pub fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
}

/// A throwaway cluster of a test's own (for tests that restart Postgres), stopped and
/// deleted on drop.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    pub fn start(dir: &Path, port: u16) -> Result<Cluster, String> {
        start_cluster(dir, port)?;
        Ok(Cluster {
            dir: dir.to_path_buf(),
            port,
        })
    }

    pub fn server(&self) -> Server {
        Server {
            admin_url: format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            private: Some(self.dir.clone()),
        }
    }

    /// `pg_ctl restart -m fast`: every session is cut, as in a real restart.
    pub fn restart(&self) -> Result<(), String> {
        let bin = binaries()?;
        // `-l` again: without it the new postmaster would write to (and hold open) our pipe.
        run_as_owner(
            Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("postgres.log"))
                .args(["-m", "fast", "-w", "-t", "30", "restart"]),
        )
    }
}

impl Cluster {
    /// Turns TLS on with the given PEM certificate chain and key (`ssl = on`, then a restart).
    pub fn enable_tls(&self, cert_pem: &str, key_pem: &str) -> Result<(), String> {
        let data = self.dir.join("data");
        let write = |name: &str, text: &str| {
            fs::write(data.join(name), text).map_err(|e| format!("cannot write {name}: {e}"))
        };
        write("server.crt", cert_pem)?;
        write("server.key", key_pem)?;
        // Postgres refuses a key that others can read.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(data.join("server.key"), fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let mut conf =
            fs::read_to_string(data.join("postgresql.conf")).map_err(|e| e.to_string())?;
        conf.push_str("\nssl = on\n");
        write("postgresql.conf", &conf)?;
        if is_root() {
            chown_postgres(&self.dir)?;
        }
        self.restart()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(bin) = binaries() {
            let _ = run_as_owner(
                Command::new(bin.join("pg_ctl"))
                    .arg("-D")
                    .arg(self.dir.join("data"))
                    .args(["-m", "immediate", "-w", "stop"]),
            );
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn start_cluster(dir: &Path, port: u16) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // One process initialises and starts it; parallel test processes wait here.
    let lock = File::create(dir.join(".lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| e.to_string())?;
    let bin = binaries()?;
    let data = dir.join("data");
    let as_root = is_root();
    if as_root {
        // initdb and postgres refuse to run as root; the cluster belongs to `postgres`.
        chown_postgres(dir)?;
    }
    if !data.join("PG_VERSION").exists() {
        let _ = fs::remove_dir_all(&data);
        run_as_owner(Command::new(bin.join("initdb")).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-instructions",
        ]))?;
    }
    let running = status_as_owner(
        Command::new(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("status"),
    );
    if !running {
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {} -c max_connections=300",
            dir.display()
        );
        run_as_owner(
            Command::new(bin.join("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("postgres.log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]),
        )?;
    }
    Ok(())
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn binaries() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    // Debian and Ubuntu keep server binaries per version, off PATH.
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<(u32, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let v = e.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = e.path().join("bin");
                bin.join("initdb").exists().then_some((v, bin))
            })
            .collect();
        versions.sort();
        if let Some((_, bin)) = versions.pop() {
            return Ok(bin);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([
        PathBuf::from("/usr/local/pgsql/bin"),
        PathBuf::from("/opt/homebrew/bin"),
    ]) {
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return Ok(dir);
        }
    }
    Err("no Postgres answers at 127.0.0.1:5432 and no initdb/pg_ctl to start one: install the \
         PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql) \
         or set DATABASE_URL"
        .into())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_postgres(dir: &Path) -> Result<(), String> {
    let ok = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "running as root, but cannot give {} to the `postgres` user (does it exist?)",
            dir.display()
        ))
    }
}

/// Runs `cmd` as the cluster's owner: `postgres` when we are root, else ourselves.
fn owner_command(cmd: &Command) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        c
    } else {
        let mut c = Command::new(cmd.get_program());
        c.args(cmd.get_args());
        c
    }
}

fn run_as_owner(cmd: &mut Command) -> Result<(), String> {
    let out = owner_command(cmd)
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{:?} failed: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn status_as_owner(cmd: &mut Command) -> bool {
    owner_command(cmd)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_is_swapped() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/app?sslmode=disable", "x"),
            "postgres://u:p@h:5432/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
        assert_eq!(
            with_database("postgres://u@h:1/", "x"),
            "postgres://u@h:1/x"
        );
    }
}
