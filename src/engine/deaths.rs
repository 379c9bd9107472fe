//! Which deaths need explaining, and what explains them. Pure bookkeeping: the dispatcher notes
//! whom sigward SIGKILLed, feeds every reaped exit, and once a reaping pass is over reads the
//! container's OOM counter once for all of its deaths (`crate::diagnose`).
//!
//! Why: exit status 137 only says "SIGKILL". sigward's own SIGKILLs (its deadline, a generation
//! given up, a signal rewritten to SIGKILL) need no explaining; any other SIGKILL may be the OOM
//! killer's or someone's `kill -9`, and a core dump is always worth a line.

use crate::diagnose::{Cause, Limit};
use crate::os::procs::PidHasher;
use crate::os::reap::Exit;
use std::collections::HashSet;
use std::hash::BuildHasherDefault;

/// A reaped process whose death is explained once the reaping pass is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Death {
    pub pid: i32,
    /// The main process of a generation: its name is the command's.
    pub named: bool,
    pub sig: i32,
    pub core: bool,
}

/// The deaths of the current reaping pass worth explaining, and whom sigward SIGKILLed itself.
#[derive(Default)]
pub struct Deaths {
    /// Pids sigward SIGKILLed outside the deadline, dropped as they are reaped. Hashed cheaply: a
    /// generation of 100,000 killed processes is reaped in O(n). (With a 0 beside each: the set
    /// type of `stop::Told`, so no new code in the binary.)
    sigkilled: HashSet<(i32, u64), BuildHasherDefault<PidHasher>>,
    pending: Vec<Death>,
}

impl Deaths {
    /// sigward SIGKILLed these processes: their deaths need no explaining.
    pub fn sigkilled(&mut self, pids: impl IntoIterator<Item = i32>) {
        self.sigkilled.extend(pids.into_iter().map(|p| (p, 0)));
    }

    /// A process was reaped; `named`: a generation's main process; `killing`: sigward's deadline
    /// passed (every SIGKILL from then on is sigward's). Keeps its death if it needs explaining.
    pub fn reaped(&mut self, pid: i32, exit: Exit, named: bool, killing: bool) {
        let ours = (!self.sigkilled.is_empty() && self.sigkilled.remove(&(pid, 0))) || killing;
        if let Exit::Signal { sig, core } = exit
            && (core || (sig == libc::SIGKILL && !ours))
        {
            self.pending.push(Death {
                pid,
                named,
                sig,
                core,
            });
        }
    }

    /// The deaths of the pass just over, and how many of them are SIGKILLs to explain (for the
    /// OOM counter: read only when that is above zero).
    pub fn take(&mut self) -> (Vec<Death>, usize) {
        let deaths = std::mem::take(&mut self.pending);
        let kills = deaths.iter().filter(|d| !d.core).count();
        (deaths, kills)
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What explains one death, given how many of the pass's `kills` SIGKILL deaths the OOM counter
/// matched (`rise`, None: no counter) and the memory limit.
pub fn cause(d: &Death, kills: usize, rise: Option<u64>, limit: Limit) -> Cause {
    match (d.core, rise) {
        (true, _) => Cause::Core(d.sig),
        (false, None) => Cause::Unknown,
        (false, Some(0)) => Cause::Outside,
        (false, Some(r)) if r >= kills as u64 => Cause::Oom(limit),
        (false, Some(r)) => Cause::MaybeOom {
            kills: r,
            deaths: kills,
            limit,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KILL: Exit = Exit::Signal {
        sig: libc::SIGKILL,
        core: false,
    };

    #[test]
    fn sigwards_own_sigkills_need_no_explaining_and_are_forgotten_once_reaped() {
        let mut d = Deaths::default();
        d.sigkilled([7, 8]);
        d.reaped(7, KILL, false, false);
        assert!(d.is_empty());
        // Pid 7 reused later and SIGKILLed by someone else: worth a line.
        d.reaped(7, KILL, false, false);
        let (deaths, kills) = d.take();
        assert_eq!((deaths.len(), kills), (1, 1));
        assert!(d.is_empty());
    }

    #[test]
    fn after_the_deadline_every_sigkill_is_sigwards_but_a_core_is_still_said() {
        let mut d = Deaths::default();
        d.reaped(3, KILL, true, true);
        assert!(d.is_empty());
        let core = Exit::Signal {
            sig: libc::SIGSEGV,
            core: true,
        };
        d.reaped(4, core, true, true);
        d.reaped(5, Exit::Code(0), true, false);
        let (deaths, kills) = d.take();
        assert_eq!(kills, 0);
        assert_eq!(deaths.len(), 1);
        assert_eq!(
            cause(&deaths[0], 0, None, Limit::Unknown),
            Cause::Core(libc::SIGSEGV)
        );
    }

    #[test]
    fn the_oom_counter_explains_as_many_kills_as_it_rose() {
        let d = Death {
            pid: 1,
            named: false,
            sig: libc::SIGKILL,
            core: false,
        };
        let l = Limit::Bytes(1 << 20);
        assert_eq!(cause(&d, 2, None, l), Cause::Unknown);
        assert_eq!(cause(&d, 2, Some(0), l), Cause::Outside);
        assert_eq!(cause(&d, 2, Some(2), l), Cause::Oom(l));
        assert_eq!(
            cause(&d, 3, Some(1), l),
            Cause::MaybeOom {
                kills: 1,
                deaths: 3,
                limit: l
            }
        );
    }

    proptest! {
        /// A death is kept exactly when it dumped core or died of a SIGKILL sigward did not send
        /// (not listed, not after the deadline); `kills` counts the SIGKILLs among them.
        #[test]
        fn only_deaths_sigward_did_not_cause_are_explained(
            killed in prop::collection::hash_set(1i32..50, 0..20),
            exits in prop::collection::vec((1i32..50, 0u8..4, any::<bool>()), 0..40),
        ) {
            let mut d = Deaths::default();
            d.sigkilled(killed.iter().copied());
            let mut listed = killed.clone();
            let mut want = 0;
            let mut want_kills = 0;
            for (pid, kind, killing) in exits {
                let exit = match kind {
                    0 => Exit::Code(1),
                    1 => KILL,
                    2 => Exit::Signal { sig: libc::SIGTERM, core: false },
                    _ => Exit::Signal { sig: libc::SIGABRT, core: true },
                };
                let ours = listed.remove(&pid) || killing;
                if kind == 3 {
                    want += 1;
                } else if kind == 1 && !ours {
                    want += 1;
                    want_kills += 1;
                }
                d.reaped(pid, exit, false, killing);
            }
            let (deaths, kills) = d.take();
            prop_assert_eq!(deaths.len(), want);
            prop_assert_eq!(kills, want_kills);
        }
    }
}
