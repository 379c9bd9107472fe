//! The listening sockets sigward holds for its generations, in the order they are handed on as
//! fds 3... (sd_listen_fds(3)): first those a socket-activating parent (systemd, podman) handed to
//! sigward itself, with their LISTEN_FDNAMES names, then those bound here for --listen. Both kinds
//! are kept, so socket activation works with or without --listen.
//!
//! The sockets are bound once and never per generation: a listening socket that closes drops the
//! connections queued on it, so the same socket passes from generation to generation.

use crate::config::{Listen, ListenAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Backlog for the held sockets: connections queue here while generations change hands.
const BACKLOG: i32 = 4096;

/// The most sockets sigward accepts from a socket-activating parent (a sanity bound on
/// LISTEN_FDS, not a systemd limit).
const MAX_INHERITED: i32 = 1024;

/// The listening sockets, in LISTEN_FDS order, with their LISTEN_FDNAMES names.
pub struct Listeners {
    pub fds: Vec<OwnedFd>,
    pub names: Vec<String>,
}

impl Listeners {
    /// Every socket to hand on: the inherited ones (when LISTEN_PID names sigward) first, then
    /// one per `specs` entry, bound here. None when there are neither.
    pub fn new(specs: &[Listen]) -> Result<Option<Listeners>, String> {
        let mut all = Listeners::inherited().unwrap_or(Listeners {
            fds: Vec::new(),
            names: Vec::new(),
        });
        let bound = Listeners::bind(specs)?;
        all.fds.extend(bound.fds);
        all.names.extend(bound.names);
        Ok((!all.fds.is_empty()).then_some(all))
    }

    /// Binds every --listen address (SO_REUSEADDR, close-on-exec, a deep backlog).
    fn bind(specs: &[Listen]) -> Result<Listeners, String> {
        let mut fds = Vec::with_capacity(specs.len());
        for spec in specs {
            let fd: OwnedFd = match &spec.addr {
                ListenAddr::Tcp(sa) => std::net::TcpListener::bind(sa)
                    .map_err(|e| format!("cannot listen on {sa}: {e}"))?
                    .into(),
                ListenAddr::Unix(path) => {
                    // A socket file left by an earlier run would make bind fail; other files are kept.
                    if std::fs::symlink_metadata(path)
                        .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                    {
                        let _ = std::fs::remove_file(path);
                    }
                    std::os::unix::net::UnixListener::bind(path)
                        .map_err(|e| format!("cannot listen on unix:{}: {e}", path.display()))?
                        .into()
                }
            };
            // SAFETY: listen(2) on a socket we own; a second listen() only changes the backlog.
            unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) };
            fds.push(fd);
        }
        Ok(Listeners {
            fds,
            names: specs.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// Sockets handed to sigward itself by a socket-activating parent: fds 3... when LISTEN_PID
    /// names sigward. They are made close-on-exec: sigward passes them on itself. sigward's own
    /// environment is left as it is (nothing is unset); each generation's is rewritten.
    fn inherited() -> Option<Listeners> {
        let var = |name| std::env::var(name).ok();
        let (count, names) = activation(
            var("LISTEN_PID").as_deref(),
            var("LISTEN_FDS").as_deref(),
            var("LISTEN_FDNAMES").as_deref(),
            std::process::id(),
        )?;
        let is_socket = |fd: i32| {
            let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
            // SAFETY: fstat(2) on a plain fd number into a valid buffer; a closed fd fails (EBADF).
            unsafe {
                libc::fstat(fd, st.as_mut_ptr()) == 0
                    && st.assume_init().st_mode & libc::S_IFMT == libc::S_IFSOCK
            }
        };
        if !(3..3 + count).all(is_socket) {
            return None; // not what the protocol promised: hand nothing over rather than garbage
        }
        let fds = (3..3 + count)
            .map(|fd| {
                // SAFETY: fcntl on an open socket fd (checked above).
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
                // SAFETY: LISTEN_PID names us, so fds 3..3+LISTEN_FDS were passed to us to own.
                unsafe { OwnedFd::from_raw_fd(fd) }
            })
            .collect();
        Some(Listeners { fds, names })
    }

    /// `a:b:c`, the LISTEN_FDNAMES value.
    pub fn fdnames(&self) -> String {
        self.names.join(":")
    }
}

/// What the socket-activation variables promise sigward (pid `me`): how many fds from 3, and
/// their names (missing ones are `unknown`, as sd_listen_fds_with_names(3) reports them). None
/// when they are absent, malformed, or meant for another process.
fn activation(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    listen_fdnames: Option<&str>,
    me: u32,
) -> Option<(i32, Vec<String>)> {
    let pid: u32 = listen_pid?.parse().ok()?;
    let count: i32 = listen_fds?.parse().ok()?;
    if pid != me || !(1..=MAX_INHERITED).contains(&count) {
        return None;
    }
    let mut names: Vec<String> = match listen_fdnames {
        None | Some("") => Vec::new(),
        Some(names) => names.split(':').map(String::from).collect(),
    };
    names.resize(usize::try_from(count).ok()?, "unknown".into());
    Some((count, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_meant_for_sigward_gives_count_and_names() {
        assert_eq!(
            activation(Some("7"), Some("2"), Some("web:admin"), 7),
            Some((2, vec!["web".into(), "admin".into()]))
        );
    }

    #[test]
    fn missing_names_are_unknown_and_extra_names_are_dropped() {
        assert_eq!(
            activation(Some("7"), Some("2"), None, 7),
            Some((2, vec!["unknown".into(), "unknown".into()]))
        );
        assert_eq!(
            activation(Some("7"), Some("2"), Some("a"), 7),
            Some((2, vec!["a".into(), "unknown".into()]))
        );
        assert_eq!(
            activation(Some("7"), Some("1"), Some("a:b:c"), 7),
            Some((1, vec!["a".into()]))
        );
        assert_eq!(
            activation(Some("7"), Some("1"), Some(""), 7),
            Some((1, vec!["unknown".into()]))
        );
    }

    #[test]
    fn activation_for_another_process_or_malformed_is_ignored() {
        for (pid, fds) in [
            (Some("8"), Some("1")),
            (None, Some("1")),
            (Some("7"), None),
            (Some("7"), Some("0")),
            (Some("7"), Some("-1")),
            (Some("7"), Some("1025")),
            (Some("7"), Some("x")),
            (Some(" 7"), Some("1")),
        ] {
            assert_eq!(activation(pid, fds, Some("a"), 7), None, "{pid:?} {fds:?}");
        }
    }

    #[test]
    fn bound_sockets_keep_their_names_in_order() {
        let specs = [
            Listen {
                name: "a".into(),
                addr: ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            },
            Listen {
                name: "b".into(),
                addr: ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            },
        ];
        let l = Listeners::bind(&specs).unwrap();
        assert_eq!(l.fds.len(), 2);
        assert_eq!(l.fdnames(), "a:b");
    }
}
