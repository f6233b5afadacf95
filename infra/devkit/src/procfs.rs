//! The little of Linux's /proc the supervisor and the port check read. Elsewhere every
//! function finds nothing.

use std::path::Path;

/// From `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    /// `R`, `S`, `D`, `Z` (zombie: exited, not yet reaped), ...
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    pub session: u32,
    /// Clock ticks after boot; with the pid, names a process even if its pid is reused.
    pub start_time: u64,
}

impl Stat {
    /// Running or able to run: neither a zombie nor dead.
    pub fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

pub fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain anything, ')' included.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 of proc(5): state; then ppid, pgrp, session, ... starttime (22).
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// Every process this user can see.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

pub fn all() -> Vec<Stat> {
    pids().into_iter().filter_map(stat).collect()
}

/// The live processes of session `sid`.
pub fn session(sid: u32) -> Vec<Stat> {
    all()
        .into_iter()
        .filter(|s| s.session == sid && s.alive())
        .collect()
}

/// `pid`'s live descendants (children, their children, ...), not `pid` itself.
pub fn descendants(pid: u32) -> Vec<Stat> {
    descendants_in(&all(), pid)
}

/// [`descendants`] in a snapshot of [`all`].
pub fn descendants_in(all: &[Stat], pid: u32) -> Vec<Stat> {
    let mut found: Vec<Stat> = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for s in all.iter().filter(|s| s.ppid == parent && s.alive()) {
            if !found.iter().any(|f| f.pid == s.pid) {
                found.push(*s);
                frontier.push(s.pid);
            }
        }
    }
    found
}

/// Whether this very process (pid and start time) still runs.
pub fn still_alive(process: &Stat) -> bool {
    stat(process.pid).is_some_and(|s| s.start_time == process.start_time && s.alive())
}

/// The command line, arguments separated by spaces; `[name]` for kernel threads and
/// processes whose command line cannot be read.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !args.is_empty() {
        return Some(args.join(" "));
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(format!("[{}]", comm.trim()))
}

/// The pids that have socket `inode` open.
pub fn socket_owners(inode: u64) -> Vec<u32> {
    let wanted = format!("socket:[{inode}]");
    pids()
        .into_iter()
        .filter(|pid| {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                return false;
            };
            fds.filter_map(|fd| fd.ok())
                .any(|fd| link_is(&fd.path(), &wanted))
        })
        .collect()
}

fn link_is(path: &Path, wanted: &str) -> bool {
    std::fs::read_link(path).is_ok_and(|target| target.as_os_str() == wanted)
}
