//! Whether a port is free, and if not, which process holds it: the listening socket's inode
//! from /proc/net/tcp and tcp6, then the process with that inode among its open files.

use crate::procfs;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub command: String,
}

/// The inodes of the sockets listening on TCP `port`, on any address, IPv4 or IPv6.
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            const LISTEN: &str = "0A";
            let local_port = local
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if *state == LISTEN && local_port == Some(port) {
                if let Ok(inode) = inode.parse::<u64>() {
                    if inode != 0 && !inodes.contains(&inode) {
                        inodes.push(inode);
                    }
                }
            }
        }
    }
    inodes
}

/// The processes listening on TCP `port` that this user can see.
pub fn holders(port: u16) -> Vec<Holder> {
    let mut found: Vec<Holder> = Vec::new();
    for inode in listening_inodes(port) {
        for pid in procfs::socket_owners(inode) {
            if !found.iter().any(|h| h.pid == pid) {
                let command = procfs::cmdline(pid).unwrap_or_else(|| "?".into());
                found.push(Holder { pid, command });
            }
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

/// Whether something keeps us from listening on 127.0.0.1:`port`.
pub fn taken(port: u16) -> bool {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_err()
}

/// `Ok` when 127.0.0.1:`port` is free; else what holds it and what to do, e.g.
/// "port 8001 (the gateway) is taken by pid 1234 (target/debug/gateway): stop it ...".
pub fn check_free(port: u16, what: &str) -> Result<(), String> {
    if !taken(port) {
        return Ok(());
    }
    let holders = holders(port);
    if holders.is_empty() {
        return Err(format!(
            "port {port} ({what}) is taken by a process this user cannot see \
             (try `sudo ss -ltnp 'sport = :{port}'`): stop it, then try again"
        ));
    }
    let who: Vec<String> = holders
        .iter()
        .map(|h| format!("pid {} ({})", h.pid, shorten(&h.command, 120)))
        .collect();
    let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
    let ours = holders
        .iter()
        .any(|h| h.command.contains("xtask") || h.command.contains("target/debug/"));
    let hint = if ours {
        " (another `cargo xtask dev` still running?)"
    } else {
        ""
    };
    Err(format!(
        "port {port} ({what}) is taken by {}{hint}: stop it (`kill {}`), then try again",
        who.join(", "),
        pids.join(" ")
    ))
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}...")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_names_its_holder() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a listener");
        let port = listener.local_addr().expect("an address").port();
        assert!(taken(port));
        let me = std::process::id();
        assert!(
            holders(port).iter().any(|h| h.pid == me),
            "{:?}",
            holders(port)
        );
        let message = check_free(port, "a test").expect_err("taken");
        assert!(
            message.starts_with(&format!("port {port} (a test) is taken by pid {me} (")),
            "{message}"
        );
        drop(listener);
        assert!(check_free(port, "a test").is_ok());
    }

    #[test]
    fn ipv6_listeners_are_found_too() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            return; // no IPv6 on this machine
        };
        let port = listener.local_addr().expect("an address").port();
        assert!(holders(port).iter().any(|h| h.pid == std::process::id()));
    }
}
