//! On a terminal, the app's process group takes the foreground, so the terminal's Ctrl-C reaches
//! the app directly (as under `docker run -it`), and sigward exits with the app's status.
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn ctrl_c_on_the_terminal_reaches_the_app_and_the_foreground_is_handed_back() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    // `script` gives sigward a pseudo-terminal as its controlling terminal, in the foreground.
    // The probe records INT and exits only on TERM, so the test can look at who sent the INT.
    // After sigward exits, the shell prints its status and the terminal's foreground group next
    // to its own process group (fields 5 and 8 of /proc/self/stat): they must be equal again.
    let inner = format!(
        "{} -t 5s -- {} log={log}; echo rc=$? fg=$(cut -d' ' -f5,8 /proc/self/stat | tr ' ' :)",
        sigward_bin(),
        probe()
    );
    let mut script = Command::new("script")
        .args(["-qfec", &inner, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "probe never got ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stdin = script.stdin.as_mut().unwrap();
    stdin.write_all(&[0x03]).unwrap(); // Ctrl-C, as typed
    stdin.flush().unwrap();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("sig 2 ")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Ctrl-C never reached the app"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let records = std::fs::read_to_string(&log).unwrap();
    let first = records.lines().find(|l| l.starts_with("sig 2 ")).unwrap();
    let probe_pid: i32 = field(records.lines().next().unwrap(), "pid")
        .parse()
        .unwrap();
    let sigward_pid: i32 = field(records.lines().next().unwrap(), "ppid")
        .parse()
        .unwrap();
    // The kernel sent it (from=0), not sigward: the app's group held the terminal's foreground.
    assert_eq!(field(first, "from"), "0", "{records}");
    let start_line = records.lines().next().unwrap();
    assert_eq!(
        field(start_line, "pgid"),
        probe_pid.to_string(),
        "app leads its own group"
    );
    assert_ne!(
        field(start_line, "sid"),
        probe_pid.to_string(),
        "app stays in the terminal's session"
    );
    // End it: sigward forwards TERM and exits with the app's status.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward_pid, libc::SIGTERM) };
    let out = script.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exited with status 143"), "{text}");
    assert!(text.contains("rc=143 "), "sigward's status: {text}");
    let fg = text
        .split("fg=")
        .nth(1)
        .expect("fg= line")
        .split_whitespace()
        .next()
        .unwrap();
    let (pgrp, tpgid) = fg.split_once(':').unwrap();
    assert_eq!(
        pgrp, tpgid,
        "the terminal's foreground group was not handed back: {text}"
    );
}
