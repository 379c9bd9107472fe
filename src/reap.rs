//! Reaping zombies and finding the processes sigward is responsible for.
//!
//! Standard signals coalesce, so one SIGCHLD may stand for thousands of exits: [`reap_all`] calls
//! waitpid until nothing is left to collect. Processes are found by walking /proc (the kernel's
//! per-task `children` file is not always built in): as PID 1 that is the whole namespace;
//! otherwise only sigward's own descendants, so nothing outside its tree is ever named or
//! signalled.

use nix::errno::Errno;
use std::fs;

/// How a child ended, as waitpid's raw status decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code itself, or 128 + the signal number.
    pub fn status(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }
}

/// Whether any child is left after a reaping pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Children {
    Remain,
    None,
}

/// Collects every zombie child, calling `each` for each one.
pub fn reap_all(mut each: impl FnMut(i32, Exit)) -> Children {
    loop {
        let mut raw = 0;
        // SAFETY: `raw` is a valid, writable int; WNOHANG makes the call non-blocking. libc rather
        // than nix: nix cannot decode a child killed by a real-time signal and would drop its status.
        let pid = unsafe { libc::waitpid(-1, &mut raw, libc::WNOHANG) };
        match pid {
            0 => return Children::Remain,
            -1 => match Errno::last() {
                Errno::EINTR => continue,
                // ECHILD: nothing left. Any other error cannot name a child; treat it alike
                // rather than spin.
                Errno::ECHILD => return Children::None,
                _ => return Children::Remain,
            },
            pid => {
                if libc::WIFEXITED(raw) {
                    each(pid, Exit::Code(libc::WEXITSTATUS(raw)));
                } else if libc::WIFSIGNALED(raw) {
                    each(pid, Exit::Signal(libc::WTERMSIG(raw)));
                }
            }
        }
    }
}

/// One process as /proc/PID/stat shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub state: u8,
    pub comm: String,
}

/// Parses `PID (COMM) STATE PPID PGRP ...`; COMM may itself hold spaces and parentheses.
fn parse_stat(text: &str) -> Option<Proc> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let pid = text[..open].trim().parse().ok()?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_ascii_whitespace();
    let state = *rest.next()?.as_bytes().first()?;
    let ppid = rest.next()?.parse().ok()?;
    let pgid = rest.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        state,
        comm,
    })
}

/// The process group of `pid`, from /proc (None when it is gone or /proc is not mounted).
pub fn pgid_of(pid: i32) -> Option<i32> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|p| p.pgid)
}

/// Every process visible in /proc except sigward itself. Empty when /proc is not mounted.
pub fn all_processes() -> Vec<Proc> {
    let me = std::process::id() as i32;
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let name = entry.ok()?.file_name();
        let pid: i32 = name.to_str()?.parse().ok()?;
        if pid == me {
            return None;
        }
        // A process may vanish between listing and reading: just skip it.
        parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    })
    .collect()
}

/// The processes sigward answers for: as PID 1 everything in the namespace, otherwise its
/// descendants. Zombies are left out: they are already dead and only wait to be reaped.
pub fn responsible_for(pid1: bool) -> Vec<Proc> {
    let all = all_processes();
    let mut mine: Vec<Proc> = if pid1 {
        all
    } else {
        descendants(std::process::id() as i32, all)
    };
    mine.retain(|p| p.state != b'Z' && p.state != b'X');
    mine
}

fn descendants(root: i32, mut all: Vec<Proc>) -> Vec<Proc> {
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        let (kids, rest): (Vec<Proc>, Vec<Proc>) = all.into_iter().partition(|p| p.ppid == parent);
        all = rest;
        frontier.extend(kids.iter().map(|p| p.pid));
        found.extend(kids);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let p = parse_stat("42 (a) b (c)) S 7 42 42 0 -1 4194560").unwrap();
        assert_eq!(
            (p.pid, p.comm.as_str(), p.state, p.ppid, p.pgid),
            (42, "a) b (c)", b'S', 7, 42)
        );
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn descendants_follow_the_tree_only() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            pgid: pid,
            state: b'S',
            comm: String::new(),
        };
        let all = vec![p(2, 1), p(3, 2), p(4, 3), p(5, 1), p(6, 5)];
        let mut d: Vec<i32> = descendants(2, all).iter().map(|p| p.pid).collect();
        d.sort();
        assert_eq!(d, vec![3, 4]);
    }

    #[test]
    fn exit_status_convention() {
        assert_eq!(Exit::Code(3).status(), 3);
        assert_eq!(Exit::Signal(15).status(), 143);
    }
}
