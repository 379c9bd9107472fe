//! The notify sockets sigward holds for its generations (`--listen`): READY=1 from the right
//! generation feeds the restart machine, what sigward's own parent must see goes up, strangers
//! are refused (whose datagram counts is `reach::sender_in`'s rule).

use super::dispatcher::Dispatcher;
use super::effects::Launch;
use crate::engine::generations::{self, Up};
use crate::engine::reach;
use crate::listen::Listeners;
use crate::log::{self, Event};
use crate::notify::{self, Body, Msg, Notify, RateLimit, Upstream};
use crate::os::clock::Mono;
use crate::os::procs;
use crate::os::spawn::{self, SpawnError};
use nix::errno::Errno;

/// What sigward holds for generations: the sockets, each generation's notify socket, and the way
/// up to its own notify-aware parent.
pub struct Held {
    pub listeners: Listeners,
    /// Notify sockets: `[current generation's, starting generation's]`.
    pub notify: [Option<Notify>; 2],
    pub upstream: Option<Upstream>,
    refusals: RateLimit,
}

impl Held {
    pub fn new(listeners: Listeners, notify: Notify) -> Held {
        Held {
            listeners,
            notify: [Some(notify), None],
            upstream: Upstream::from_env().unwrap_or_else(|e| {
                let err = Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL));
                log::emit(&Event::UpstreamUnusable { err });
                None
            }),
            refusals: RateLimit::new(notify::REFUSAL_WARNING_INTERVAL),
        }
    }

    /// Starts generation `n` on the held sockets with its own notify socket.
    pub fn spawn(
        &self,
        launch: &Launch,
        command: &[std::ffi::OsString],
        n: u32,
        notify: &Notify,
    ) -> Result<i32, SpawnError> {
        let fdnames = self.listeners.fdnames();
        let sockets = spawn::Sockets {
            fds: &self.listeners.fds,
            fdnames: &fdnames,
            notify: &notify.addr,
        };
        launch.spawn(command, n, Some(sockets))
    }

    pub(super) fn tell(&self, up: Up) {
        if let Some(upstream) = &self.upstream {
            let msg = match up {
                Up::Ready => Msg::Ready,
                Up::Reloading => Msg::Reloading,
                Up::Stopping => Msg::Stopping,
            };
            let _ = upstream.send(&[msg]);
        }
    }
}

impl Dispatcher<'_> {
    /// Datagrams on a generation's notify socket (0: the current one's, 1: the starting one's).
    pub(super) fn on_notify(&mut self, slot: usize) {
        let generation = match slot {
            0 => Some(self.gens.current),
            _ => self.gens.starting(),
        };
        let Some(held) = self.held.as_mut() else {
            return;
        };
        let Some(socket) = held.notify.get(slot).and_then(|n| n.as_ref()) else {
            return;
        };
        let batch = socket.recv();
        let Some(generation) = generation else { return };
        let n = generation.n;
        let mut ready = false;
        // Each datagram is dropped once handled: the fds it carried (a BARRIER=1 pipe) close then,
        // not 16 datagrams' worth at once.
        for datagram in batch.datagrams {
            let sender = &datagram.sender;
            let pgid_of = |pid| procs::stat_of(pid).map(|p| p.pgid);
            if !reach::sender_in(generation.pid, sender.pid, pgid_of, || sender.alive()) {
                if let Some(suppressed) = held.refusals.allow(Mono::now().0) {
                    log::emit(&Event::NotifyRefused {
                        sender: sender.pid.unwrap_or(0),
                        generation: n,
                        suppressed,
                    });
                }
                continue;
            }
            if let Body::Truncated { len } = datagram.body {
                log::emit(&Event::NotifyTruncated { generation: n, len });
                continue;
            }
            for msg in datagram.msgs() {
                ready |= said(n, &msg);
            }
            // What the parent must see (watchdog pings, status...) from the serving generation.
            if slot == 0
                && let Some(up) = &held.upstream
            {
                let _ = up.relay(datagram.msgs());
            }
        }
        if let Some(err) = batch.error {
            log::emit(&Event::NotifyFailed { generation: n, err });
        }
        if ready {
            self.on_gens(generations::Event::Ready { n }, Mono::now());
        }
    }
}

/// Logs what generation `n` said; returns whether it said READY=1.
fn said(n: u32, msg: &Msg) -> bool {
    match msg {
        Msg::Ready => return true,
        Msg::Status(status) => log::emit(&Event::AppStatus {
            generation: n,
            status: status.as_bytes(),
        }),
        Msg::Stopping => log::emit(&Event::AppStopping { generation: n }),
        Msg::Reloading => log::emit(&Event::AppReloading { generation: n }),
        _ => {}
    }
    false
}
