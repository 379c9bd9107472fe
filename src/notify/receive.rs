//! Receiving: a generation's NOTIFY_SOCKET, read in bounded batches, each datagram with who
//! sent it and the fds it carried.

use super::*;

/// Datagrams read per [`Notify::recv`]. The kernel queues at most `net.unix.max_dgram_qlen`
/// (default 10) datagrams per socket, so this drains a full default queue in one wake-up; what it
/// bounds is a flood whose senders refill the queue while it is read (each recvmsg wakes a
/// blocked sender), which would otherwise keep PID 1 in this loop, away from signals and
/// deadlines, for as long as they like. What is left stays queued and keeps the socket readable
/// for the next wake-up.
pub const BATCH: usize = 16;

/// The longest datagram read whole: systemd's own NOTIFY_BUFFER_MAX (PIPE_BUF). Longer ones are
/// [`Body::Truncated`], as systemd refuses them too.
pub const MAX_DATAGRAM: usize = 4096;

/// The kernel passes at most this many fds in one datagram (SCM_MAX_FD).
const SCM_MAX_FD: usize = 253;

/// Room for every control message a datagram can carry here: credentials, a pidfd and a full
/// SCM_RIGHTS. With less, a datagram with many fds would push the pidfd out (MSG_CTRUNC).
// SAFETY: CMSG_SPACE only computes a length; it dereferences nothing.
const CMSG_BUF: usize = unsafe {
    libc::CMSG_SPACE(size_of::<libc::ucred>() as u32)
        + libc::CMSG_SPACE(size_of::<RawFd>() as u32)
        + libc::CMSG_SPACE((SCM_MAX_FD * size_of::<RawFd>()) as u32)
} as usize;

/// SO_PASSPIDFD / SCM_PIDFD (Linux 6.5), missing from libc 0.2: the asm-generic value, which these
/// architectures use; the others (alpha, mips, parisc, sparc) number their own and get no pidfds.
const SO_PASSPIDFD: Option<libc::c_int> = if cfg!(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64",
    target_arch = "s390x",
    target_arch = "powerpc64",
    target_arch = "powerpc",
    target_arch = "loongarch64"
)) {
    Some(76)
} else {
    None
};
/// The control message that carries it: include/linux/socket.h, after SCM_SECURITY, on every
/// architecture.
const SCM_PIDFD: libc::c_int = 0x04;

const PROBE_UNKNOWN: u8 = 0;
const PROBE_YES: u8 = 1;
const PROBE_NO: u8 = 2;
/// Whether SO_PASSPIDFD works, learned by the first socket that tries it.
static PIDFD_PROBE: AtomicU8 = AtomicU8::new(PROBE_UNKNOWN);

/// Asks for a pidfd of each sender, unless an earlier socket learned that the kernel has none.
fn pass_pidfd(sock: BorrowedFd) {
    let Some(option) = SO_PASSPIDFD else {
        return;
    };
    if PIDFD_PROBE.load(Ordering::Relaxed) == PROBE_NO {
        return;
    }
    let one: libc::c_int = 1;
    // SAFETY: setsockopt(2) on an open socket with a valid int and its size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (&raw const one).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        PIDFD_PROBE.store(PROBE_YES, Ordering::Relaxed);
    } else if Errno::last() == Errno::ENOPROTOOPT {
        // Linux < 6.5: senders are known by pid only.
        PIDFD_PROBE.store(PROBE_NO, Ordering::Relaxed);
    }
}

/// `Some(true)` once a notify socket got SO_PASSPIDFD, `Some(false)` once the kernel refused it,
/// `None` before any socket tried.
#[cfg(test)]
pub fn pidfds_supported() -> Option<bool> {
    match PIDFD_PROBE.load(Ordering::Relaxed) {
        PROBE_YES => Some(true),
        PROBE_NO => Some(false),
        _ => None,
    }
}

/// One generation's NOTIFY_SOCKET: an abstract unix datagram socket that tells who sent each
/// datagram (SO_PASSCRED, and SO_PASSPIDFD where the kernel has it).
///
/// Its name is chosen by the kernel (autobind), unique in the network namespace: a fixed name
/// built from sigward's pid would collide between containers that share one network namespace
/// (a Kubernetes pod), where every sigward is PID 1.
pub struct Notify {
    pub(super) sock: UnixDatagram,
    /// The NOTIFY_SOCKET value, `@` and the kernel-chosen name.
    pub addr: String,
}

impl Notify {
    /// A fresh socket: nonblocking and close-on-exec (the generation gets its name, not the fd).
    pub fn new() -> std::io::Result<Notify> {
        let sock = UnixDatagram::unbound()?;
        let family = libc::sockaddr_un {
            sun_family: libc::AF_UNIX as libc::sa_family_t,
            sun_path: [0; 108],
        };
        let family_only = size_of::<libc::sa_family_t>() as libc::socklen_t;
        // SAFETY: bind(2) with a valid sockaddr_un of which only the family is passed: autobind.
        let rc = unsafe { libc::bind(sock.as_raw_fd(), (&raw const family).cast(), family_only) };
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
        pass_pidfd(sock.as_fd());
        Ok(Notify {
            sock,
            addr: format!("@{name}"),
        })
    }

    /// Reads what is queued, at most [`BATCH`] datagrams; the rest waits for the next wake-up
    /// (the socket stays readable). Never blocks.
    pub fn recv(&self) -> Batch {
        let mut batch = Batch {
            datagrams: Vec::new(),
            more: false,
            error: None,
        };
        let mut buf = [0u8; MAX_DATAGRAM];
        for _ in 0..BATCH {
            match recv_one(self.sock.as_fd(), &mut buf) {
                Ok(datagram) => batch.datagrams.push(datagram),
                // Counted against the bound too, so even a storm of these ends.
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return batch,
                Err(e) => {
                    batch.error = Some(e);
                    return batch;
                }
            }
        }
        batch.more = true;
        batch
    }
}

impl AsFd for Notify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// What one [`Notify::recv`] read.
#[derive(Debug)]
pub struct Batch {
    /// In arrival order.
    pub datagrams: Vec<Datagram>,
    /// The bound was reached: more may be queued.
    pub more: bool,
    /// A receive error other than "nothing queued", which ended the batch early.
    pub error: Option<Errno>,
}

/// Who sent a datagram.
#[derive(Debug)]
pub struct Sender {
    /// From SCM_CREDENTIALS; `None` when the kernel named no pid (0: the sender is outside
    /// sigward's pid namespace).
    pub pid: Option<i32>,
    /// From SCM_PIDFD (Linux >= 6.5); `None` on older kernels or when the sender was already
    /// reaped. Closed with the datagram.
    pub pidfd: Option<OwnedFd>,
}

impl Sender {
    /// Whether the sender still exists (a zombie does: its pid is still taken), asked through
    /// its pidfd; `None` without a pidfd, or when the kernel's answer says neither.
    ///
    /// To learn the sender's process group without a pid-reuse race: read `/proc/PID/stat`
    /// first, then ask this. `Some(true)` means the pid was never free in between, so the stat
    /// was the sender's.
    pub fn alive(&self) -> Option<bool> {
        // Signal 0 only checks.
        match crate::os::procs::pidfd_send_signal(self.pidfd.as_ref()?.as_fd(), 0) {
            Ok(()) | Err(Errno::EPERM) => Some(true), // EPERM: there, but not ours to signal
            Err(Errno::ESRCH) => Some(false),
            Err(_) => None,
        }
    }
}

/// A datagram's content: its text, or only its length when it did not fit.
#[derive(Debug, PartialEq, Eq)]
pub enum Body {
    /// The whole datagram; bytes that are not UTF-8 replaced (U+FFFD).
    Text(String),
    /// Longer than [`MAX_DATAGRAM`] (MSG_TRUNC): the real length. A cut message is not parsed,
    /// since its last line may have lost digits.
    Truncated { len: usize },
}

/// One received datagram. It owns the fds that came with it (SCM_RIGHTS: a BARRIER=1 pipe,
/// FDSTORE=1 fds, anything), and closes them when dropped. Closing the BARRIER=1 pipe is how
/// sd_notify_barrier(3) and `systemd-notify --barrier` learn that everything sent before it was
/// processed: drop a datagram only after acting on its messages.
#[derive(Debug)]
pub struct Datagram {
    pub sender: Sender,
    pub body: Body,
    /// Held only to be closed when the datagram is dropped.
    pub(super) _fds: Vec<OwnedFd>,
}

impl Datagram {
    /// Its messages in order; none when it was truncated.
    pub fn msgs(&self) -> impl Iterator<Item = Msg<'_>> + Clone {
        let text = match &self.body {
            Body::Text(text) => text.as_str(),
            Body::Truncated { .. } => "",
        };
        parse(text)
    }

    /// How many fds came with it (all closed when it is dropped).
    #[cfg(test)]
    pub fn fd_count(&self) -> usize {
        self._fds.len()
    }
}

/// The control buffer, aligned for `cmsghdr` as CMSG_FIRSTHDR assumes.
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BUF]);

/// One recvmsg(2): the datagram with its sender and fds, or the errno (EAGAIN: none queued).
fn recv_one(sock: BorrowedFd, buf: &mut [u8; MAX_DATAGRAM]) -> Result<Datagram, Errno> {
    let mut control = CmsgBuf([0; CMSG_BUF]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data (musl adds padding fields), for which all-zero is valid.
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = &raw mut iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = control.0.as_mut_ptr().cast();
    hdr.msg_controllen = CMSG_BUF as _;
    // MSG_TRUNC: return the datagram's real length, so a cut one is known as such.
    // MSG_CMSG_CLOEXEC: received fds must not leak into the next generation.
    let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC | libc::MSG_TRUNC;
    // SAFETY: hdr points at one iovec over `buf` and at `control`, both live and writable for the
    // call, with their true lengths.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut hdr, flags) };
    let Ok(len) = usize::try_from(n) else {
        return Err(Errno::last());
    };
    let (sender, fds) = take_control(&hdr);
    let body = if hdr.msg_flags & libc::MSG_TRUNC != 0 || len > buf.len() {
        Body::Truncated { len }
    } else {
        Body::Text(String::from_utf8_lossy(buf.get(..len).unwrap_or_default()).into_owned())
    };
    Ok(Datagram {
        sender,
        body,
        _fds: fds,
    })
}

/// Takes the sender and every fd out of a received message's control data, so that no fd the
/// kernel installed is left unowned (even under MSG_CTRUNC, the fds it did install are listed).
// msg_controllen and cmsg_len are size_t in glibc but socklen_t in musl: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
fn take_control(hdr: &libc::msghdr) -> (Sender, Vec<OwnedFd>) {
    let mut sender = Sender {
        pid: None,
        pidfd: None,
    };
    let mut fds = Vec::new();
    let control_end = (hdr.msg_control as usize).saturating_add(hdr.msg_controllen as usize);
    // SAFETY: CMSG_LEN only computes a length.
    let header_len = unsafe { libc::CMSG_LEN(0) } as usize;
    // SAFETY: hdr was filled by a successful recvmsg: msg_control/msg_controllen describe the
    // control data the kernel wrote; CMSG_FIRSTHDR checks that a header fits.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(hdr) };
    while !cmsg.is_null() {
        // SAFETY: non-null, so it points at a whole cmsghdr inside the control buffer.
        let (level, kind, cmsg_len) = unsafe {
            (
                (*cmsg).cmsg_level,
                (*cmsg).cmsg_type,
                (*cmsg).cmsg_len as usize,
            )
        };
        // SAFETY: pointer arithmetic to just past that header.
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        // Trust the header's length only as far as the buffer goes.
        let data_len = cmsg_len
            .saturating_sub(header_len)
            .min(control_end.saturating_sub(data as usize));
        let ints = data_len / size_of::<libc::c_int>();
        let int_at = |i: usize| -> libc::c_int {
            // SAFETY: i < ints, so the int lies inside this message's data, written by the kernel;
            // cmsg data need not be aligned for c_int.
            unsafe {
                data.add(i * size_of::<libc::c_int>())
                    .cast::<libc::c_int>()
                    .read_unaligned()
            }
        };
        let own = |fd: libc::c_int| {
            // SAFETY: the kernel installed this fd for us in this recvmsg; nothing else owns it.
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        };
        match (level, kind) {
            (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) if data_len >= size_of::<libc::ucred>() => {
                // SAFETY: a whole ucred lies inside this message's data (checked above).
                let cred = unsafe { data.cast::<libc::ucred>().read_unaligned() };
                sender.pid = (cred.pid > 0).then_some(cred.pid);
            }
            (libc::SOL_SOCKET, libc::SCM_RIGHTS) => fds.extend(
                (0..ints)
                    .filter_map(|i| own(int_at(i)))
                    .inspect(disarm_linger),
            ),
            // A negative value is the kernel's errno for "no pidfd" (sender already reaped).
            (libc::SOL_SOCKET, SCM_PIDFD) if ints >= 1 => sender.pidfd = own(int_at(0)),
            _ => {}
        }
        // SAFETY: cmsg is a header inside hdr's control data; CMSG_NXTHDR returns null at its end.
        cmsg = unsafe { libc::CMSG_NXTHDR(hdr, cmsg) };
    }
    (sender, fds)
}

/// A received socket with SO_LINGER set would make its last close() wait (up to forever) for
/// its unsent data: switch lingering off so dropping the datagram returns at once. Not a
/// socket (ENOTSOCK): nothing to do.
fn disarm_linger(fd: &OwnedFd) {
    let off = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on an fd we own, with a valid linger struct and its size.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const off).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}
