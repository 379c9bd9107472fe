//! The terminal and the job sigward runs as, read for the job-control rules of
//! `engine::jobs` (which decide; these only read and set).

use crate::os::procs;
use nix::errno::Errno;
use nix::unistd::{Pid, getpgid, getpgrp, getppid, getsid, tcgetpgrp, tcsetpgrp};

/// What the job-control rules ask of the system. A trait so that they are tested without one.
pub trait Job {
    /// The terminal's foreground process group (stdin), if it has one.
    fn foreground(&self) -> Option<i32>;
    /// sigward's own process group.
    fn own_group(&self) -> i32;
    /// Whether anyone can continue sigward once it stops itself (see [`continuable`]).
    fn continuable(&self) -> bool;
    /// Whether process group `pgid` has nobody left.
    fn group_gone(&self, pgid: i32) -> bool;
    /// Whether process group `pgid` is one of sigward's descendants' (the app's own jobs).
    fn descendants_group(&self, pgid: i32) -> bool;
}

/// The real terminal and process tree.
pub struct Os;

impl Job for Os {
    fn foreground(&self) -> Option<i32> {
        tcgetpgrp(std::io::stdin()).ok().map(Pid::as_raw)
    }

    fn own_group(&self) -> i32 {
        getpgrp().as_raw()
    }

    fn continuable(&self) -> bool {
        continuable()
    }

    fn group_gone(&self, pgid: i32) -> bool {
        crate::os::signals::send(-pgid, 0) == Err(Errno::ESRCH)
    }

    fn descendants_group(&self, pgid: i32) -> bool {
        procs::responsible_for(false).iter().any(|p| p.pgid == pgid)
    }
}

/// Gives the terminal's foreground to process group `pgid`. (SIGTTOU is blocked: sigward may set
/// the foreground from a background group.)
pub fn set_foreground(pgid: i32) -> Result<(), Errno> {
    tcsetpgrp(std::io::stdin(), Pid::from_raw(pgid))
}

/// Whether anyone can continue sigward once it stops itself: its nearest ancestor outside
/// sigward's own process group is in sigward's session (a job-control shell). That is the
/// kernel's test for a process group that is not orphaned, followed up sigward's own line of
/// ancestors. The kernel discards TSTP/TTIN/TTOU for an orphaned group, since nobody would ever
/// continue it, and sigward does not stop there either (a parent in another session, a service
/// manager, a parent outside the PID namespace).
fn continuable() -> bool {
    let (Ok(sid), pgrp) = (getsid(None), getpgrp()) else {
        return false;
    };
    let mut pid = getppid();
    // A line of ancestors inside one process group is short; never loop on a /proc oddity.
    for _ in 0..64 {
        if pid.as_raw() <= 0 {
            return false; // outside the PID namespace
        }
        match getpgid(Some(pid)) {
            Err(_) => return false,
            // An init (tini, as `docker run --init`) never continues anyone.
            Ok(group) if group != pgrp => return pid.as_raw() != 1 && getsid(Some(pid)) == Ok(sid),
            Ok(_) => {}
        }
        let Some(p) = procs::stat_of(pid.as_raw()) else {
            return false;
        };
        pid = Pid::from_raw(p.ppid);
    }
    false
}
