//! What ECS asks the container: is this connector alive? The running process records each
//! time its control session answers (as leader or standby) and keeps a small file fresh
//! while that is recent; `connector health`, the container's health check command, reads
//! the file. A process whose loop is stuck, or whose database is gone, stops refreshing it
//! and is reported unhealthy, so ECS replaces it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use tokio_util::sync::CancellationToken;

/// How long after the last good answer from Postgres the process still counts as healthy.
const ALIVE_FOR: Duration = Duration::from_secs(20);
/// How often the file is refreshed.
const REFRESH: Duration = Duration::from_secs(2);
/// How old the file may be for `connector health` to pass.
pub const MAX_AGE: Duration = Duration::from_secs(30);

pub struct Health {
    path: PathBuf,
    last: Mutex<Option<(Instant, bool)>>,
}

impl Health {
    pub fn new(path: PathBuf) -> Health {
        Health {
            path,
            last: Mutex::new(None),
        }
    }

    /// The control session just answered; `leader` says in which role.
    pub fn beat(&self, leader: bool) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some((Instant::now(), leader));
        }
    }

    fn status(&self) -> Option<&'static str> {
        let last = *self.last.lock().ok()?;
        match last {
            Some((at, leader)) if at.elapsed() < ALIVE_FOR => {
                Some(if leader { "leader" } else { "standby" })
            }
            _ => None,
        }
    }

    /// Keeps the file fresh while the session answers, and removes it when it does not or
    /// when the process stops.
    pub async fn keep_fresh(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let result = match self.status() {
                Some(role) => write_atomically(&self.path, role),
                None => remove(&self.path),
            };
            if let Err(e) = result {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot update the health file");
            }
        }
        let _ = remove(&self.path);
    }
}

fn write_atomically(path: &Path, role: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, format!("{role}\n"))?;
    std::fs::rename(&tmp, path)
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `connector health`: Ok with the role when the running connector refreshed the file
/// within [`MAX_AGE`], else why not.
pub fn check(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "no health file at {} ({e}): the connector is not running, or its database session is not answering",
            path.display()
        )
    })?;
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age > MAX_AGE {
        return Err(format!(
            "the health file is {}s old: the connector has stopped refreshing it",
            age.as_secs()
        ));
    }
    let role = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok(role.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_is_fresh_only_while_the_session_answers() {
        let dir = std::env::temp_dir().join(format!("health-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("connector.health");
        assert!(check(&path).is_err(), "no file before the first beat");
        let health = std::sync::Arc::new(Health::new(path.clone()));
        let shutdown = CancellationToken::new();
        health.beat(true);
        let task = tokio::spawn({
            let (health, shutdown) = (health.clone(), shutdown.clone());
            async move { health.keep_fresh(shutdown).await }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while check(&path).is_err() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(check(&path), Ok("leader".to_string()));
        shutdown.cancel();
        task.await.unwrap();
        assert!(check(&path).is_err(), "a stopped connector is not healthy");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
