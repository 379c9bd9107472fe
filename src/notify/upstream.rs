//! Sending: sigward's own NOTIFY_SOCKET, to a notify-aware parent (systemd, podman).

use super::*;

/// sigward's own NOTIFY_SOCKET, when a notify-aware parent (systemd, podman) started it: what it
/// decides itself (READY=1, RELOADING=1, STOPPING=1) and what it relays from the app go there.
/// One unbound socket is kept for the whole run; each send names the address.
pub struct Upstream {
    sock: UnixDatagram,
    addr: UnixAddr,
}

impl Upstream {
    /// From sigward's own NOTIFY_SOCKET: `Ok(None)` when it is unset or empty; an error when it
    /// names something sigward cannot speak to (`vsock:`, a path too long) or no socket can be
    /// made, so the caller can say so instead of leaving the parent waiting for READY=1.
    pub fn from_env() -> std::io::Result<Option<Upstream>> {
        match std::env::var_os("NOTIFY_SOCKET") {
            Some(addr) if !addr.is_empty() => Upstream::to(&addr).map(Some),
            _ => Ok(None),
        }
    }

    /// To `/path` or `@abstract-name`.
    pub fn to(addr: &OsStr) -> std::io::Result<Upstream> {
        let bytes = addr.as_bytes();
        let addr = match bytes.first() {
            Some(b'/') => UnixAddr::new(addr)?,
            Some(b'@') => UnixAddr::new_abstract(bytes.get(1..).unwrap_or_default())?,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "NOTIFY_SOCKET={}: only /path and @abstract are supported",
                        addr.display()
                    ),
                ));
            }
        };
        Ok(Upstream {
            sock: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends the messages as one datagram, never blocking: a parent that does not read gets
    /// nothing (EAGAIN), one that is gone gets nothing (ECONNREFUSED, ENOENT). EMSGSIZE when they
    /// do not fit in [`MAX_DATAGRAM`] (systemd would refuse them).
    pub fn send(&self, msgs: &[Msg]) -> Result<(), Errno> {
        let mut text = Text::new();
        format(msgs.iter().copied(), &mut text).map_err(|_| Errno::EMSGSIZE)?;
        self.send_text(text.as_bytes())
    }

    /// Sends those of `msgs` the parent must hear ([`relayed`]) as one datagram; nothing when
    /// none is. Returns how many were sent.
    pub fn relay<'m>(
        &self,
        msgs: impl IntoIterator<Item = Msg<'m>> + Clone,
    ) -> Result<usize, Errno> {
        let mut text = Text::new();
        let mut count = 0usize;
        let kept = msgs
            .clone()
            .into_iter()
            .filter(relayed)
            .inspect(|_| count = count.saturating_add(1));
        if format(kept, &mut text).is_err() {
            // Too long once made lossy (a long STATUS=): the free text gives way, the watchdog
            // and timeout messages a parent acts on still go.
            (text, count) = (Text::new(), 0);
            let vital = msgs
                .into_iter()
                .filter(|m| relayed(m) && !matches!(m, Msg::Status(_)))
                .inspect(|_| count = count.saturating_add(1));
            format(vital, &mut text).map_err(|_| Errno::EMSGSIZE)?;
        }
        if count > 0 {
            self.send_text(text.as_bytes())?;
        }
        Ok(count)
    }

    fn send_text(&self, text: &[u8]) -> Result<(), Errno> {
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        // EINTR cannot come from a nonblocking send in practice; retry it a bounded few times.
        let mut result = Err(Errno::EINTR);
        for _ in 0..3 {
            result = socket::sendto(self.sock.as_raw_fd(), text, &self.addr, flags);
            if result != Err(Errno::EINTR) {
                break;
            }
        }
        result.map(drop)
    }
}

/// A datagram's text built on the stack: no allocation per message sent upstream.
struct Text {
    bytes: [u8; MAX_DATAGRAM],
    len: usize,
}

impl Text {
    fn new() -> Text {
        Text {
            bytes: [0; MAX_DATAGRAM],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
        room.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl AsFd for Upstream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
