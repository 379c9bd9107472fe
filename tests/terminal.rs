//! On a terminal, the app's process group takes the foreground, so the terminal's Ctrl-C reaches
//! the app directly (as under `docker run -it`), and sigward exits with the app's status. Not as
//! PID 1, sigward is a shell's job: Ctrl-Z stops the whole job, `fg` and `bg` resume it.
mod common;
use common::*;
use std::io::Write;
use std::os::unix::process::CommandExt;
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
    let mut script = in_script(&inner, Stdio::piped(), Stdio::piped());
    wait_line(&log, "ready", T);
    let stdin = script.stdin.as_mut().unwrap();
    stdin.write_all(&[0x03]).unwrap(); // Ctrl-C, as typed
    stdin.flush().unwrap();
    let first = wait_line(&log, "sig 2 ", T); // Ctrl-C reached the app
    let records = std::fs::read_to_string(&log).unwrap();
    let probe_pid: i32 = field(records.lines().next().unwrap(), "pid")
        .parse()
        .unwrap();
    let sigward_pid: i32 = field(records.lines().next().unwrap(), "ppid")
        .parse()
        .unwrap();
    // The kernel sent it (from=0), not sigward: the app's group held the terminal's foreground.
    assert_eq!(field(&first, "from"), "0", "{records}");
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

// Job control, not as PID 1: in a terminal, Ctrl-Z suspends the whole job (sigward and the app)
// and `fg` resumes it, with the terminal's foreground handed back to the app so that Ctrl-C
// still reaches it; `bg` leaves the terminal with the shell. The shell is a real one (bash with
// job control, `set -m`) on a pseudo-terminal from `script`: its `$?` of 147 after the job
// proves that its waitpid(WUNTRACED) saw sigward stop.

const T: Duration = Duration::from_secs(20);

fn state(pid: i32) -> char {
    stat(pid).map_or('?', |s| s.0)
}

/// Waits until `ok` holds for process `pid`'s stat; returns the last one read.
fn wait_stat(pid: i32, what: &str, ok: impl Fn(&(char, i32, i32, i32)) -> bool) {
    let last = eventually(T, || stat(pid), |s| s.as_ref().is_some_and(&ok));
    assert!(last.as_ref().is_some_and(ok), "{what}: {last:?}");
}

/// The probe's pid and sigward's (its parent), from the probe's start record.
fn probe_and_sigward(log: &str) -> (i32, i32) {
    let start = wait_line(log, "start ", T);
    (
        field(&start, "pid").parse().unwrap(),
        field(&start, "ppid").parse().unwrap(),
    )
}

/// sigward (`-v`) started by the test itself, not in a namespace, running the probe (`jobs`
/// and `words`) with its records in `probe.log` and sigward's stderr in `stderr` of the scratch
/// directory; `adjust` makes it a job of its own as a shell or a terminal would.
struct Job {
    sigward: std::process::Child,
    tree: KillTree,
    stderr: String,
}

impl Job {
    /// Starts it and waits until the probe is ready.
    fn start(dir: &Scratch, words: &[&str], adjust: impl FnOnce(&mut Command)) -> Job {
        let log = dir.path("probe.log");
        let stderr = dir.path("stderr");
        let mut cmd = Command::new(sigward_bin());
        cmd.args(["-v", "--", &probe(), &format!("log={log}"), "jobs"])
            .args(words)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap());
        adjust(&mut cmd);
        let sigward = cmd.spawn().unwrap();
        let tree = KillTree(sigward.id() as i32);
        wait_line(&log, "ready", T);
        Job {
            sigward,
            tree,
            stderr,
        }
    }

    fn pid(&self) -> i32 {
        self.sigward.id() as i32
    }

    /// Sends sigward `sig`, asserts that it exits with `code`, and returns what it said.
    fn end(mut self, sig: i32, code: i32) -> String {
        // SAFETY: kill(2) with plain integers.
        unsafe { libc::kill(self.pid(), sig) };
        let status = self.sigward.wait().unwrap();
        self.tree.disarm();
        let text = std::fs::read_to_string(&self.stderr).unwrap();
        assert_eq!(status.code(), Some(code), "{text}");
        text
    }
}

/// The value after `key=` on the line of `screen` that has it (up to a space or line end).
fn shown<'a>(screen: &'a str, key: &str) -> &'a str {
    let at = screen
        .rfind(key)
        .unwrap_or_else(|| panic!("no {key}:\n{screen}"));
    screen[at + key.len()..]
        .split(|c: char| c.is_whitespace())
        .next()
        .unwrap()
}

#[test]
fn ctrl_z_suspends_the_whole_job_fg_resumes_it_and_ctrl_c_still_reaches_the_app() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut term = Terminal::start(
        &dir,
        &format!(
            "{} -v -- {} log={log} jobs on-int=exit:130\n\
             echo \"stopped rc=$?\"\n\
             read -r go\n\
             fg\n\
             echo \"again rc=$?\"\n\
             read -r go\n\
             fg\n\
             echo \"final rc=$? fg=$(cut -d' ' -f5,8 /proc/self/stat | tr ' ' :)\"\n",
            sigward_bin(),
            probe()
        ),
    );
    wait_line(&log, "ready", T);
    let (app, sigward) = probe_and_sigward(&log);
    let shell = stat(sigward).unwrap().1;
    let shell_group = stat(shell).unwrap().2;
    assert_eq!(stat(app).unwrap().3, app, "the app holds the foreground");

    term.type_keys(&[0x1a]); // Ctrl-Z
    // bash goes on only once its waitpid(WUNTRACED) says the job stopped: 128 + SIGSTOP.
    let screen = term.wait_for("stopped rc=147");
    assert_eq!(state(sigward), 'T', "sigward stopped:\n{screen}");
    assert_eq!(state(app), 'T', "the app stopped:\n{screen}");
    assert_eq!(
        stat(app).unwrap().3,
        shell_group,
        "the shell took the terminal back"
    );
    assert!(screen.contains("stopped on SIGTSTP"), "{screen}");
    assert!(
        !std::fs::read_to_string(&log).unwrap().contains("sig 18 "),
        "no SIGCONT yet"
    );

    term.type_keys(b"go\n"); // the shell's `fg`: terminal to sigward's group, then SIGCONT
    let cont = wait_line(&log, "sig 18 ", T);
    assert_eq!(
        field(&cont, "from"),
        sigward.to_string(),
        "sigward passed SIGCONT on"
    );
    wait_stat(app, "the app runs in the foreground again", |s| {
        s.0 != 'T' && s.3 == app
    });
    assert_ne!(state(sigward), 'T', "sigward runs again");

    // `kill -TSTP` to sigward itself: passed on to the app, whose stop stops the job again.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward, libc::SIGTSTP) };
    let screen = term.wait_for("again rc=147");
    assert_eq!(state(sigward), 'T', "sigward stopped:\n{screen}");
    assert_eq!(state(app), 'T', "the app stopped:\n{screen}");
    term.type_keys(b"go\n");
    let conts = eventually(T, || count_lines(&log, "sig 18 "), |&n| n == 2);
    assert_eq!(conts, 2, "a second SIGCONT");
    wait_stat(app, "the app runs in the foreground again", |s| {
        s.0 != 'T' && s.3 == app
    });

    term.type_keys(&[0x03]); // Ctrl-C
    let int = wait_line(&log, "sig 2 ", T);
    assert_eq!(
        field(&int, "from"),
        "0",
        "the kernel sent it: the app held the foreground"
    );
    let screen = term.wait_for("final rc=130 ");
    let (pgrp, tpgid) = shown(&screen, "fg=").split_once(':').unwrap();
    assert_eq!(pgrp, tpgid, "the shell has the terminal again:\n{screen}");
    term.wait_exit();
}

/// In a pipeline the shell sees the job stopped only once every process of it has stopped: the
/// terminal's SIGTSTP reaches the app alone (its group holds the foreground), so sigward passes
/// it on to its own process group, where `cat` is.
#[test]
fn ctrl_z_stops_a_whole_pipeline_and_fg_resumes_it() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut term = Terminal::start(
        &dir,
        &format!(
            "set -o pipefail\n\
             {} -- {} log={log} jobs on-int=exit:130 | cat\n\
             echo \"stopped rc=$?\"\n\
             read -r go\n\
             fg\n\
             echo \"final rc=$?\"\n",
            sigward_bin(),
            probe()
        ),
    );
    wait_line(&log, "ready", T);
    let (app, sigward) = probe_and_sigward(&log);
    let job = stat(sigward).unwrap().2;
    let cat = eventually(
        T,
        || {
            std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .find(|&p| p != sigward && stat(p).is_some_and(|s| s.2 == job))
        },
        Option::is_some,
    )
    .expect("cat in sigward's process group");

    term.type_keys(&[0x1a]); // Ctrl-Z
    let screen = term.wait_for("stopped rc=");
    for (who, pid) in [("sigward", sigward), ("the app", app), ("cat", cat)] {
        assert_eq!(state(pid), 'T', "{who} stopped:\n{screen}");
    }

    term.type_keys(b"go\n"); // `fg`: SIGCONT to sigward's group, then to the app from sigward
    wait_line(&log, "sig 18 ", T);
    wait_stat(app, "the app runs in the foreground", |s| {
        s.0 != 'T' && s.3 == app
    });
    for (who, pid) in [("sigward", sigward), ("cat", cat)] {
        wait_stat(pid, &format!("{who} runs again"), |s| s.0 != 'T');
    }
    term.type_keys(&[0x03]); // Ctrl-C
    term.wait_for("final rc=130");
    term.wait_exit();
}

#[test]
fn after_bg_the_terminal_stays_with_the_shell_even_when_the_app_exits() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut term = Terminal::start(
        &dir,
        &format!(
            "{} -v -- {} log={log} jobs\n\
             echo \"stopped rc=$?\"\n\
             bg\n\
             read -r go\n\
             wait\n\
             echo \"done fg=$(cut -d' ' -f5,8 /proc/self/stat | tr ' ' :)\"\n",
            sigward_bin(),
            probe()
        ),
    );
    wait_line(&log, "ready", T);
    let (app, sigward) = probe_and_sigward(&log);
    let shell_group = stat(stat(sigward).unwrap().1).unwrap().2;

    term.type_keys(&[0x1a]); // Ctrl-Z, then the shell's `bg`: SIGCONT alone
    term.wait_for("stopped rc=147");
    let cont = wait_line(&log, "sig 18 ", T);
    assert_eq!(field(&cont, "from"), sigward.to_string());
    wait_stat(app, "the app runs in the background", |s| {
        s.0 != 'T' && s.3 == shell_group
    });
    assert_ne!(state(sigward), 'T');

    // The app ends in the background: sigward must not take the terminal from the shell.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward, libc::SIGTERM) };
    wait_line(&log, "exit 143", T);
    let gone = |s: &Option<(char, i32, i32, i32)>| matches!(s, None | Some(('Z', ..)));
    let last = eventually(T, || stat(sigward), gone);
    assert!(gone(&last), "sigward still runs: {last:?}");
    term.type_keys(b"go\n");
    let screen = term.wait_for("done fg=");
    assert!(screen.contains("main child's status 143"), "{screen}");
    let (pgrp, tpgid) = shown(&screen, "fg=").split_once(':').unwrap();
    assert_eq!(
        pgrp, tpgid,
        "the terminal was taken from the shell:\n{screen}"
    );
    term.wait_exit();
}

/// Without the terminal's foreground the app has a session of its own, an orphaned process
/// group for which the kernel discards SIGTSTP: sigward stops it with SIGSTOP instead, then
/// itself. Here the test is the parent that sees sigward stop.
#[test]
fn sigtstp_to_sigward_stops_an_app_in_its_own_session_and_sigcont_resumes_both() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let job = Job::start(&dir, &["on-int=exit:130"], |cmd| {
        cmd.process_group(0); // a job of its own, as a shell would start it
    });
    let pid = job.pid();
    let (app, _) = probe_and_sigward(&log);
    let start = wait_line(&log, "start ", T);
    assert_eq!(
        field(&start, "sid"),
        app.to_string(),
        "the app has a session of its own"
    );

    // SAFETY: kill(2) and waitpid(2) with plain integers and a valid, writable int.
    let raw = unsafe {
        libc::kill(pid, libc::SIGTSTP);
        let mut raw = 0;
        while libc::waitpid(pid, &mut raw, libc::WUNTRACED) != pid {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EINTR)
            );
        }
        raw
    };
    assert!(
        libc::WIFSTOPPED(raw),
        "sigward did not stop: status {raw:#x}"
    );
    wait_stat(app, "the app stopped", |s| s.0 == 'T');

    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let cont = wait_line(&log, "sig 18 ", T);
    assert_eq!(
        field(&cont, "from"),
        pid.to_string(),
        "sigward passed SIGCONT on"
    );
    wait_stat(app, "the app runs again", |s| s.0 != 'T');
    assert_ne!(state(pid), 'T');

    let text = job.end(libc::SIGINT, 130);
    assert!(
        text.contains("forwarded SIGTSTP as SIGSTOP to process group"),
        "{text}"
    );
    assert!(text.contains("received SIGTSTP: the app"), "{text}");
    assert!(text.contains("continued by SIGCONT"), "{text}");
}

/// As PID 1 nothing changes: SIGTSTP is forwarded as any signal (and, the app's group being
/// orphaned, the kernel discards it), and sigward never stops itself.
#[test]
fn as_pid1_sigtstp_is_only_forwarded() {
    let ns = probe_under(&["-v"], &["jobs"]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGTSTP);
    ns.signal(libc::SIGUSR1);
    // Signals are handled in order: USR1 reaching the app proves sigward went on after TSTP.
    ns.wait_record("sig 10 ", T);
    assert_ne!(state(ns.pid1), 'T', "PID 1 stopped itself");
    let done = ns.stop(T);
    assert_eq!(done.code, 143, "{}", done.stderr);
    done.assert_said("forwarded SIGTSTP to process group");
    done.assert_not_said("stops too");
}

/// A sigward nobody could continue (a session of its own: its process group is orphaned) does not
/// stop itself, as the kernel discards SIGTSTP for such a group; the signal is forwarded.
#[test]
fn sigward_in_an_orphaned_process_group_does_not_stop_itself() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let job = Job::start(&dir, &[], |cmd| {
        // SAFETY: setsid(2) only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            })
        };
    });
    let pid = job.pid();
    // SAFETY: kill(2) with plain integers.
    unsafe {
        libc::kill(pid, libc::SIGTSTP);
        libc::kill(pid, libc::SIGUSR1);
    }
    // Signals are handled in order: USR1 reaching the app proves sigward went on after TSTP.
    wait_line(&log, "sig 10 ", T);
    assert_ne!(state(pid), 'T', "sigward stopped itself");
    let text = job.end(libc::SIGTERM, 143);
    assert!(
        text.contains("forwarded SIGTSTP to process group"),
        "{text}"
    );
}

// ---------------------------------------------------------------- review 11: failing tests ----

/// After `bg` the terminal is the shell's; a restart (--listen, SIGHUP) must not take it.
/// spawn.rs's TerminalForeground does tcsetpgrp(0, getpid()) for every generation, with SIGTTOU
/// still blocked, so generation 2 grabs the foreground from the shell.
#[test]
fn a_restart_after_bg_does_not_take_the_terminal_from_the_shell() {
    restart_after_bg_leaves_the_terminal_to_the_shell(
        "--listen tcp://127.0.0.1:0 --ready after:100ms",
    );
}

/// sigward with `options` (a restart on SIGHUP) runs a job-control probe from an interactive
/// shell; Ctrl-Z, then `bg`: the terminal is the shell's. Then SIGHUP, and generation 2 starts.
fn restart_after_bg_leaves_the_terminal_to_the_shell(options: &str) {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut term = Terminal::start(
        &dir,
        &format!(
            "{} -v {options} -- {} log={log} jobs\n\
             echo \"stopped rc=$?\"\n\
             bg\n\
             read -r go\n\
             echo \"shell fg=$(cut -d' ' -f5,8 /proc/self/stat | tr ' ' :)\"\n\
             kill %1; wait\n",
            sigward_bin(),
            probe()
        ),
    );
    wait_line(&log, "ready", T);
    let (_app, sigward) = probe_and_sigward(&log);
    let shell = stat(sigward).unwrap().1;
    let shell_group = stat(shell).unwrap().2;
    term.type_keys(&[0x1a]);
    term.wait_for("stopped rc=147");
    wait_line(&log, "sig 18 ", T);
    wait_stat(shell, "the shell holds the terminal after bg", |s| {
        s.3 == shell_group
    });
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward, libc::SIGHUP) };
    let n = eventually(T, || count_lines(&log, "start "), |&n| n == 2);
    assert_eq!(n, 2, "generation 2 started");
    std::thread::sleep(Duration::from_millis(300));
    let tpgid = stat(shell).unwrap().3;
    assert_eq!(
        tpgid, shell_group,
        "generation 2 took the terminal's foreground from the shell (tpgid {tpgid})"
    );
    term.type_keys(b"go\n");
    term.wait_for("shell fg=");
}

/// sigward as its session's leader with the parent outside the session (`ssh -t host
/// sigward -- app`, `docker exec -it c sigward -- app`): not continuable, so sigward rightly does
/// not stop itself, but Ctrl-Z still stops the app (its group, in sigward's session, is not
/// orphaned) and nobody will ever continue it; Ctrl-C does not help an app that handles SIGINT.
/// Run directly, the same app ignores Ctrl-Z (the kernel discards TSTP for an orphaned group).
#[test]
fn ctrl_z_with_nobody_to_continue_the_job_does_not_hang_the_app() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let inner = format!(
        "exec {} -v -- {} log={log} jobs on-int=exit:130",
        sigward_bin(),
        probe()
    );
    let mut script = in_script(&inner, Stdio::null(), Stdio::null());
    let _tree = KillTree(script.id() as i32);
    wait_line(&log, "ready", T);
    let (app, sigward) = probe_and_sigward(&log);
    let stdin = script.stdin.as_mut().unwrap();
    stdin.write_all(&[0x1a]).unwrap(); // Ctrl-Z
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_ne!(state(sigward), 'T', "sigward did not stop (right)");
    stdin.write_all(&[0x03]).unwrap(); // Ctrl-C
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let app_state = state(app);
    drop(_tree);
    let _ = script.wait();
    assert_ne!(
        app_state, 'T',
        "the app is stopped and nobody can continue it; Ctrl-C pending"
    );
}

/// Ctrl-Z while the app drains after a stop signal: sigward does not suspend (right), but
/// it leaves the app stopped until its grace period kills it, though it SIGCONTs stopped
/// processes at StopApp; the graceful exit 143 becomes 137 after the full grace period.
#[test]
fn ctrl_z_while_draining_does_not_turn_a_graceful_stop_into_sigkill() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut term = Terminal::start(
        &dir,
        &format!(
            "{} -v -t 4s -- {} log={log} jobs on-term=drain:1500:143\n\
             echo \"done rc=$?\"\n",
            sigward_bin(),
            probe()
        ),
    );
    wait_line(&log, "ready", T);
    let (app, sigward) = probe_and_sigward(&log);
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward, libc::SIGTERM) };
    wait_line(&log, "sig 15 ", T);
    std::thread::sleep(Duration::from_millis(400));
    term.type_keys(&[0x1a]); // Ctrl-Z, while the app drains
    // sigward continues the app at once, so its stop may be too short to see; the exit says it.
    let _ = app;
    let screen = term.wait_for("done rc=");
    assert!(screen.contains("done rc=143"), "{screen}");
    term.wait_exit();
}

/// An app that stops itself with SIGSTOP while it holds the terminal (bash's `suspend`,
/// TSTP handlers that clean up and then raise SIGSTOP): a shell running it directly sees the job
/// stop and takes the terminal back; under sigward, on_stopped ignores SIGSTOP, so the shell waits
/// forever while the terminal belongs to a stopped group.
#[test]
fn an_app_that_stops_itself_with_sigstop_in_the_foreground_stops_the_job() {
    let dir = Scratch::new();
    let term = Terminal::start(
        &dir,
        &format!(
            "{} -- sh -c 'echo app-up; kill -STOP $$; echo app-resumed'\n\
             echo \"stopped rc=$?\"\n\
             fg\n\
             echo \"final rc=$?\"\n",
            sigward_bin(),
        ),
    );
    term.wait_for("app-up");
    term.wait_for("stopped rc=");
    term.wait_for("final rc=0");
    term.wait_exit();
}

/// sigward under a PID 1 init that puts it in a process group of its own (tini, so
/// `docker run --init` on an image whose entrypoint is sigward): continuable() says yes (tini is
/// in sigward's session, another group), but tini never continues anyone. SIGTSTP stops the app
/// and sigward for good; the engine's SIGTERM (forwarded by tini) is never acted on, and the
/// graceful stop becomes the engine's SIGKILL. Before issue 11, TSTP went to the app's orphaned
/// group and the kernel discarded it.
#[test]
fn under_tini_sigtstp_does_not_freeze_the_container() {
    let dir = Scratch::new();
    let log = dir.path("probe.log");
    let mut unshare = Command::new("unshare")
        .args([
            "-fp",
            "--mount-proc",
            "/usr/bin/tini-static",
            "--",
            sigward_bin(),
            "--",
        ])
        .args([probe(), format!("log={log}"), "jobs".into()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _tree = KillTree(unshare.id() as i32);
    wait_line(&log, "ready", T);
    let tini = children_of(unshare.id() as i32)[0];
    let sigward = children_of(tini)[0];
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(sigward, libc::SIGTSTP) };
    std::thread::sleep(Duration::from_millis(300));
    // docker stop: SIGTERM to PID 1, which tini forwards to sigward.
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(tini, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while unshare.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        unshare.try_wait().unwrap().is_some(),
        "the container did not stop on SIGTERM: sigward {}, log:\n{}",
        state(sigward),
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn a_restart_in_place_after_bg_does_not_take_the_terminal_from_the_shell() {
    restart_after_bg_leaves_the_terminal_to_the_shell("--restart-signal HUP");
}
