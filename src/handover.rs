//! What each generation is handed for zero-downtime restarts, by systemd's own protocols, so apps
//! that already speak socket activation need no change:
//! - the listening sockets sigward holds (bound here, or inherited from a socket-activating parent),
//!   passed as fds 3... with LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES (sd_listen_fds(3));
//! - a notify socket of its own (NOTIFY_SOCKET, sd_notify(3)) on which READY=1 says it can serve.
//!
//! The sockets are bound once and never per generation: a listening socket that closes drops the
//! connections queued on it, so the same socket passes from generation to generation.

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, UnixCredentials, sockopt};
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// One generation's NOTIFY_SOCKET: an abstract unix datagram socket that only that generation's
/// processes may speak on (checked with SO_PASSCRED).
///
/// Its name is chosen by the kernel (autobind), unique in the network namespace: a fixed name
/// built from sigward's pid would collide between containers that share one network namespace
/// (a Kubernetes pod), where every sigward is PID 1.
pub struct Notify {
    sock: UnixDatagram,
    /// The NOTIFY_SOCKET value, `@` and the kernel-chosen name.
    pub addr: String,
}

impl Notify {
    pub fn new() -> std::io::Result<Notify> {
        let sock = UnixDatagram::unbound()?;
        let family = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; 108],
        };
        let family_only = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
        // SAFETY: bind(2) with a valid sockaddr_un of which only the family is passed: autobind.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                (&family as *const libc::sockaddr_un).cast(),
                family_only,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let local = sock.local_addr()?;
        let name = local
            .as_abstract_name()
            .map(|n| String::from_utf8_lossy(n).into_owned());
        let name = name.ok_or_else(|| std::io::Error::other("autobind gave no abstract name"))?;
        sock.set_nonblocking(true)?;
        socket::setsockopt(&sock, sockopt::PassCred, &true).map_err(std::io::Error::from)?;
        Ok(Notify {
            sock,
            addr: format!("@{name}"),
        })
    }

    /// Reads every pending datagram; calls `each(sender_pid, text)`.
    pub fn recv(&self, mut each: impl FnMut(i32, &str)) {
        let mut buf = [0u8; 4096];
        loop {
            let (len, pid) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let mut cmsg = nix::cmsg_space!(UnixCredentials);
                let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_CMSG_CLOEXEC;
                match socket::recvmsg::<()>(self.sock.as_raw_fd(), &mut iov, Some(&mut cmsg), flags)
                {
                    Ok(msg) => {
                        let pid = msg
                            .cmsgs()
                            .ok()
                            .into_iter()
                            .flatten()
                            .find_map(|c| match c {
                                ControlMessageOwned::ScmCredentials(cred) => Some(cred.pid()),
                                _ => None,
                            });
                        (msg.bytes, pid.unwrap_or(0))
                    }
                    Err(Errno::EINTR) => continue,
                    Err(_) => return, // EAGAIN: nothing more
                }
            };
            each(pid, &String::from_utf8_lossy(&buf[..len]));
        }
    }
}

impl AsFd for Notify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// sigward's own NOTIFY_SOCKET, when it runs under systemd or another notify-aware parent: what
/// the generations say (ready, reloading, stopping) is passed upward. Only the address is kept;
/// messages are rare, so each gets a fresh socket (sigward holds no fd for it).
pub struct Upstream {
    addr: String,
}

impl Upstream {
    pub fn from_env() -> Option<Upstream> {
        let addr = std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|a| a.starts_with('/') || a.starts_with('@'))?;
        Some(Upstream { addr })
    }

    pub fn send(&self, msg: &str) {
        let Ok(sock) = UnixDatagram::unbound() else {
            return;
        };
        let _ = match self.addr.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a)),
            None => sock.send_to(msg.as_bytes(), &self.addr),
        };
    }
}
