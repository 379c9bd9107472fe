//! Who a signal or the deadline reaches, and the pid-reuse rules that keep sigward from
//! signalling a stranger. Pure: the dispatcher brings the /proc snapshot and carries out.
//!
//! Why these rules: a process group id stays valid only while the group has a member. Once a
//! generation's leader is reaped, its id may be handed to a new process, so kill(-pgid) could
//! reach someone else's group; members are then signalled one by one, pinned by pidfd, and a
//! process whose pid *is* the old group id proves the old group empty. Single processes are
//! named by (pid, start time), never by pid alone.

use crate::engine::stop::Told;
use crate::os::procs::Proc;

/// How one generation is signalled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Its main process alone (`-c`), by pid: not yet reaped, so the pid is still its own.
    Process(i32),
    /// Its whole process group, by kill(-pgid): the leader is not reaped, so the id is ours.
    Group(i32),
    /// The leader was reaped: the group's members in a snapshot, one by one, pinned.
    Members(i32),
    /// Nothing of it can be reached (`-c` and its main process was reaped).
    Gone,
}

/// How generation `pgid` is signalled (`single_child`: `-c`, the main process alone).
pub fn generation(pgid: i32, single_child: bool, leader_reaped: bool) -> Target {
    match (single_child, leader_reaped) {
        (true, true) => Target::Gone,
        (true, false) => Target::Process(pgid),
        (false, false) => Target::Group(pgid),
        (false, true) => Target::Members(pgid),
    }
}

/// The target a log line names for the app: its main process with `-c`, else its group.
pub fn named(pid: i32, single_child: bool) -> i32 {
    if single_child { pid } else { -pid }
}

/// Whether the stop sequence reaches the whole PID namespace (as its PID 1) or sigward's own
/// descendants only: a restart in place leaves what is not the app's (a `kubectl exec` shell,
/// whose parent is outside the namespace) alone.
pub fn whole_namespace(pid1: bool, restarting: bool) -> bool {
    pid1 && !restarting
}

/// The processes of group `pgid` in a snapshot. Once its leader was reaped, a process whose pid
/// *is* `pgid` proves the old group empty (the kernel reuses no pid still in use as a group id):
/// its members are then whoever joined that new process, not ours to signal.
pub fn members(all: &[Proc], pgid: i32, leader_reaped: bool) -> impl Iterator<Item = &Proc> {
    let reused = leader_reaped && all.iter().any(|p| p.pid == pgid);
    all.iter().filter(move |p| !reused && p.pgid == pgid)
}

/// Whether generation `pgid`'s group may still be signalled by its id when the processes left
/// cannot be listed (/proc unreadable): always while its leader is not reaped; once it is, only
/// while no process has the leader's pid (`pid_in_use`, asked with kill(pid, 0)): one that does
/// proves the old group empty and the id someone else's, as in [`members`].
pub fn group_unseen(leader_reaped: bool, pid_in_use: impl FnOnce() -> bool) -> bool {
    !leader_reaped || !pid_in_use()
}

/// The leftovers that get the stop signal now: those not told yet in this stop sequence (each
/// counted as told from now on), with whether each is stopped and so needs SIGCONT too.
pub fn to_tell<'a>(remaining: &'a [Proc], told: &mut Told) -> Vec<(&'a Proc, bool)> {
    remaining
        .iter()
        .filter(|p| told.first_time(p.pid, p.pgid, p.start_time))
        .map(|p| (p, stopped(p)))
        .collect()
}

/// A stopped process acts on a stop signal only once continued.
pub fn stopped(p: &Proc) -> bool {
    p.state == b'T'
}

/// Whether a notify sender belongs to generation `pgid`: its main process, or any process of
/// its group. `pgid_of` reads the sender's group (from /proc), `alive` then asks its pidfd
/// whether it is still the same process: a sender still alive after the read is the process the
/// read described (no pid-reuse race); without a pidfd (`None`) the read is trusted.
pub fn sender_in(
    pgid: i32,
    sender: Option<i32>,
    pgid_of: impl FnOnce(i32) -> Option<i32>,
    alive: impl FnOnce() -> Option<bool>,
) -> bool {
    let Some(pid) = sender.filter(|&p| p > 0) else {
        return false;
    };
    pid == pgid || (pgid_of(pid) == Some(pgid) && alive() != Some(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::procs::Comm;
    use proptest::prelude::*;

    #[test]
    fn an_unseen_group_whose_reaped_leader_pid_is_taken_is_not_signalled() {
        assert!(group_unseen(false, || unreachable!("the leader is ours")));
        assert!(
            group_unseen(true, || false),
            "nobody has the id: still ours"
        );
        assert!(!group_unseen(true, || true), "reused: someone else's");
    }

    fn proc(pid: i32, pgid: i32, state: u8) -> Proc {
        Proc {
            pid,
            ppid: 1,
            pgid,
            state,
            start_time: pid as u64,
            comm: Comm::new(b"p"),
        }
    }

    #[test]
    fn a_generation_is_reached_by_group_until_its_leader_is_reaped() {
        assert_eq!(generation(7, false, false), Target::Group(7));
        assert_eq!(generation(7, false, true), Target::Members(7));
        assert_eq!(generation(7, true, false), Target::Process(7));
        assert_eq!(generation(7, true, true), Target::Gone);
        assert_eq!(named(7, false), -7);
        assert_eq!(named(7, true), 7);
    }

    #[test]
    fn a_restart_in_place_reaches_only_sigwards_descendants() {
        assert!(whole_namespace(true, false));
        assert!(!whole_namespace(true, true));
        assert!(!whole_namespace(false, false));
        assert!(!whole_namespace(false, true));
    }

    #[test]
    fn a_reused_group_id_reaches_nobody() {
        let all = [proc(10, 5, b'S'), proc(11, 5, b'S'), proc(12, 6, b'S')];
        let pids = |reaped| members(&all, 5, reaped).map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(false), vec![10, 11]);
        assert_eq!(pids(true), vec![10, 11]);
        // Pid 5 is taken again: the old group 5 is empty, those are a new leader's.
        let reused = [proc(5, 5, b'S'), proc(11, 5, b'S')];
        assert_eq!(members(&reused, 5, true).count(), 0);
        assert_eq!(members(&reused, 5, false).count(), 2);
    }

    #[test]
    fn leftovers_are_told_once_and_stopped_ones_continued() {
        let mut told = Told::default();
        told.group(5);
        let all = [proc(10, 5, b'S'), proc(11, 6, b'T'), proc(12, 6, b'S')];
        let first: Vec<_> = to_tell(&all, &mut told)
            .into_iter()
            .map(|(p, cont)| (p.pid, cont))
            .collect();
        assert_eq!(first, vec![(11, true), (12, false)]);
        assert!(to_tell(&all, &mut told).is_empty());
    }

    #[test]
    fn a_notify_sender_counts_only_from_its_generation() {
        let never = |_| -> Option<i32> { panic!("no read needed") };
        assert!(sender_in(5, Some(5), never, || None));
        assert!(!sender_in(5, None, |_| Some(5), || None));
        assert!(!sender_in(5, Some(0), |_| Some(5), || None));
        assert!(sender_in(5, Some(9), |_| Some(5), || None));
        assert!(sender_in(5, Some(9), |_| Some(5), || Some(true)));
        // Gone after the read: the stat may have been a new process's.
        assert!(!sender_in(5, Some(9), |_| Some(5), || Some(false)));
        assert!(!sender_in(5, Some(9), |_| Some(6), || Some(true)));
        assert!(!sender_in(5, Some(9), |_| None, || Some(true)));
    }

    proptest! {
        /// Members are exactly the group's processes, unless the group id names a live process
        /// after the leader was reaped: then nobody.
        #[test]
        fn members_never_reach_a_reused_group(
            procs in prop::collection::vec((1i32..40, 1i32..8), 0..30),
            pgid in 1i32..8,
            reaped in any::<bool>(),
        ) {
            let all: Vec<Proc> = procs.iter().map(|&(pid, g)| proc(pid, g, b'S')).collect();
            let got: Vec<i32> = members(&all, pgid, reaped).map(|p| p.pid).collect();
            let reused = reaped && all.iter().any(|p| p.pid == pgid);
            let want: Vec<i32> = if reused {
                vec![]
            } else {
                all.iter().filter(|p| p.pgid == pgid).map(|p| p.pid).collect()
            };
            prop_assert_eq!(got, want);
        }

        /// Across repeated leftover passes over changing snapshots, no (pid, start time) is told
        /// twice and no member of a told group is told at all.
        #[test]
        fn leftovers_are_never_told_twice(
            passes in prop::collection::vec(prop::collection::vec((1i32..30, 1i32..6), 0..20), 1..5),
            group in 1i32..6,
        ) {
            let mut told = Told::default();
            told.group(group);
            let mut seen = std::collections::HashSet::new();
            for pass in passes {
                let all: Vec<Proc> = pass.iter().map(|&(pid, g)| proc(pid, g, b'S')).collect();
                for (p, _) in to_tell(&all, &mut told) {
                    prop_assert!(p.pgid != group);
                    prop_assert!(seen.insert((p.pid, p.start_time)), "told twice: {}", p.pid);
                }
            }
        }
    }
}
