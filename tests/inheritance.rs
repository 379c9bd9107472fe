//! The child starts as a plain exec would have started it: sigward's caller's signal mask, ignored
//! signals and fds, in a session of its own; nothing of sigward's (signalfd, pipes) leaks into it,
//! and sigward itself keeps none of the inherited fds and no working directory.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn child_gets_the_mask_and_ignored_signals_sigward_started_with() {
    let blocked = bit(libc::SIGUSR2) | bit(libc::SIGWINCH) | bit(34);
    // SIGCHLD ignored too: sigward must still learn exit statuses, and hand SIG_IGN back.
    let ignored = bit(libc::SIGHUP) | bit(libc::SIGCHLD) | bit(libc::SIGPIPE) | bit(33);
    let ns = Ns::start_with_signals(ignored, blocked, &["--", "{probe}", "log={log}"]);
    let start = ns.wait_record("start", T);
    ns.wait_record("ready", T);
    assert_eq!(field(&start, "mask"), format!("{blocked:016x}"), "{start}");
    // QEMU replaces the host's SIG_IGN of signals whose default is fatal (HUP, PIPE, 33) with its
    // own handler at start-up, so a host program exec'd from it finds them default: only the
    // one sigward itself hands back (SIGCHLD) is checked there.
    let checked = if skip_under_qemu(
        "ignored SIGHUP, SIGPIPE, 33 reaching the child",
        "QEMU installs its own host handlers for default-fatal signals, which exec resets",
    ) {
        bit(libc::SIGCHLD)
    } else {
        !0
    };
    let seen = u64::from_str_radix(field(&start, "ignored"), 16).expect("ignored=");
    assert_eq!(
        format!("{:016x}", seen & checked),
        format!("{:016x}", ignored & checked),
        "{start}"
    );
    let sigward = ns.pid1;
    let done = ns.stop(T);
    assert_eq!(
        done.code, 143,
        "exit status lost with SIGCHLD inherited as ignored (sigward pid {sigward}): {}",
        done.stderr
    );
}

#[test]
fn child_starts_with_nothing_blocked_or_ignored_when_sigward_had_none() {
    // In particular SIGPIPE is not ignored, although sigward is a Rust program.
    let ns = Ns::start_with_signals(0, 0, &["--", "{probe}", "log={log}"]);
    let start = ns.wait_record("start", T);
    assert_eq!(field(&start, "mask"), "0000000000000000");
    assert_eq!(field(&start, "ignored"), "0000000000000000");
}

#[test]
fn inherited_fd3_reaches_the_child_but_sigward_keeps_none_of_its_own() {
    let scratch = Scratch::new();
    let passed = scratch.path("passed-fd");
    std::fs::write(&passed, "x").unwrap();
    let file = std::fs::File::open(&passed).unwrap();
    let ns = Ns::start_with(&["--", "{probe}", "log={log}"], move |cmd| {
        pass_as_fd3(cmd, std::os::fd::IntoRawFd::into_raw_fd(file));
    });
    let start = ns.wait_record("start", T);
    assert_eq!(
        field(&start, "fds"),
        "0,1,2,3",
        "the child must get fd 3 and nothing of sigward's"
    );
    let child = child_of(ns.pid1, T).expect("the probe");
    assert_eq!(
        std::fs::read_link(format!("/proc/{child}/fd/3"))
            .unwrap()
            .to_string_lossy(),
        passed
    );
    // Not counted: the log's own non-blocking open file description of stderr's pipe.
    let own = || {
        let fds = fds_of(ns.pid1);
        let stderr = fds.iter().find(|(n, _)| *n == 2).map(|(_, t)| t.clone());
        fds.into_iter()
            .filter(|(n, target)| *n >= 3 && Some(target) != stderr.as_ref())
            .map(|(_, target)| target)
            .collect::<Vec<_>>()
    };
    let sigward_fds = eventually(T, own, |f| f.len() == 1);
    assert_eq!(
        sigward_fds,
        ["anon_inode:[signalfd]"],
        "sigward kept an inherited fd"
    );
    let cwd = eventually(
        T,
        || std::fs::read_link(format!("/proc/{}/cwd", ns.pid1)).unwrap(),
        |c| c.as_os_str() == "/",
    );
    assert_eq!(
        cwd.to_string_lossy(),
        "/",
        "sigward must not pin a mount with its cwd"
    );
}

#[test]
fn child_leads_its_own_session_and_process_group() {
    let ns = probe_under(&[], &[]);
    let start = ns.wait_record("start", T);
    assert_eq!(field(&start, "pid"), field(&start, "sid"));
    assert_eq!(field(&start, "pid"), field(&start, "pgid"));
    assert_eq!(field(&start, "ppid"), "1");
}
