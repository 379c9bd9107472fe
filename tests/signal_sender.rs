//! Who sent a signal, as sigward's log names it: read when the signal arrives (a sender that
//! exits right after kill(2) is still named), and a signal the terminal sent is said to come from
//! the terminal, not from "outside the PID namespace".
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let mut script = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux)");
    let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (mut out, copy) = (script.stdout.take().unwrap(), screen.clone());
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut buf) {
            copy.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let shown = || String::from_utf8_lossy(&screen.lock().unwrap()).into_owned();
    let seen = eventually(T, shown, |s| s.contains("exited with status 3"));
    assert!(seen.contains("exited with status 3"), "{seen}");
    let stdin = script.stdin.as_mut().unwrap();
    stdin.write_all(&[0x03]).unwrap(); // Ctrl-C, as typed
    stdin.flush().unwrap();
    let start = Instant::now();
    while script.try_wait().unwrap().is_none() {
        if start.elapsed() > T {
            let _ = script.kill();
            panic!("sigward never ended:\n{}", shown());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = reader.join();
    let text = shown();
    let line = text
        .lines()
        .find(|l| l.contains("received SIGINT"))
        .unwrap_or_else(|| panic!("no SIGINT line:\n{text}"));
    assert!(line.contains("from the terminal"), "{line}");
}
