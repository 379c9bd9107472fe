//! Who sent a signal, as sigward's log names it: read when the signal arrives (a sender that
//! exits right after kill(2) is still named), and a signal the terminal sent is said to come from
//! the terminal, not from "outside the PID namespace".
mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// The sender lingers 200 ms after kill(2), then exits (its shell reaps it); strace delays
/// sigward's start of generation 2 (its second fork) by 1.5 s, so the line that names the sender,
/// written once generation 2 started, comes when the sender is long gone.
#[test]
fn a_sender_that_exits_right_after_kill_is_still_named() {
    if skip_under_qemu("strace of sigward's syscalls", "QEMU makes its own calls") {
        return;
    }
    if Command::new("strace").arg("-V").output().is_err() {
        println!("skipped: no strace");
        return;
    }
    let ns = Ns::pid1(
        &[
            "strace",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "trace=clone,clone3,fork,vfork",
            "-e",
            "inject=clone,clone3,fork,vfork:delay_enter=1500000:when=2",
            "{sigward}",
            "--listen",
            "api=tcp://127.0.0.1:0",
            "--",
            "sh",
            "-c",
            "if [ \"$SIGWARD_GENERATION\" = 1 ]; then \
             ln -s /bin/sh {dir}sender && {dir}sender -c \"kill -HUP $PPID; sleep 0.2\"; fi; \
             exec {probe} log={dir}gen$SIGWARD_GENERATION",
        ],
        |_| {},
    );
    wait_line(&ns.dir.path("gen2"), "ready", T);
    let sigward = child_of(ns.pid1, T).expect("sigward under strace");
    // SAFETY: kill(2) with plain integers.
    assert_eq!(unsafe { libc::kill(sigward, libc::SIGTERM) }, 0);
    let done = ns.wait(T);
    let line = done
        .stderr
        .lines()
        .find(|l| l.contains("received SIGHUP"))
        .unwrap_or_else(|| panic!("no SIGHUP line:\n{}", done.stderr));
    assert!(line.contains(" (sender): "), "sender not named: {line}");
}

#[test]
fn ctrl_c_typed_while_sigward_holds_the_terminal_is_from_the_terminal() {
    // The probe left behind must come to sigward (a subreaper), or sigward ends with its app.
    if skip_without_subreaper() {
        return;
    }
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    // Not PID 1, on a pseudo-terminal (`script`): the app exits 3 and leaves the probe behind,
    // which ignores the stop signal; sigward takes the terminal's foreground back, so the Ctrl-C
    // typed then comes to sigward, from the kernel on the terminal's behalf.
    let app = format!(
        "{probe} log={log} on-term=stay & until grep -q ready {log}; do sleep 0.05; done; exit 3",
        probe = probe()
    );
    let inner = format!("{} -t 2s -- sh -c '{app}'", sigward_bin());
    let mut term = Terminal::run(&inner);
    term.wait_for("exited with status 3");
    term.type_keys(&[0x03]); // Ctrl-C, as typed
    let text = term.wait_exit();
    let line = text
        .lines()
        .find(|l| l.contains("received SIGINT"))
        .unwrap_or_else(|| panic!("no SIGINT line:\n{text}"));
    assert!(line.contains("from the terminal"), "{line}");
}
