//! Not as PID 1, when /proc cannot be read (no fd left: EMFILE; ENFILE; a hidepid mount), the
//! processes left are unseen, not absent: sigward still signals the app's process group, says in
//! one line that it cannot list what is left and why, and exits at the deadline — it never
//! resweeps an unseen tree for ever, nor leaves a process of the app's group behind silently.
mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);

/// sigward (not PID 1) under RLIMIT_NOFILE `fds`, its app leaving a daemon that ignores
/// SIGTERM behind: sigward's exit status (None: it never exited), its stderr, and whether the
/// daemon outlived it.
fn run_with_fds(fds: u32) -> (Option<std::process::ExitStatus>, String, bool) {
    let dir = Scratch::new();
    let pidfile = dir.path("daemon.pid");
    let app = format!("(trap '' TERM; exec sleep 100) & echo $! > {pidfile}; sleep 0.3; exit 0");
    let mut sigward = Command::new("sh")
        .args([
            "-c",
            "ulimit -n \"$2\" && exec \"$0\" -t 1s -- sh -c \"$1\"",
        ])
        .args([sigward_bin(), &app, &fds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = sigward.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > T {
            let _ = sigward.kill();
            let _ = sigward.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let daemon: i32 = std::fs::read_to_string(&pidfile)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0);
    // The daemon is sigward's (a subreaper's) child: once sigward is gone, init reaps it.
    let running = || {
        std::fs::read_to_string(format!("/proc/{daemon}/stat")).is_ok_and(|s| !s.contains(") Z "))
    };
    let alive = daemon > 0 && eventually(Duration::from_secs(2), running, |alive| !alive);
    if alive {
        // SAFETY: kill(2) with plain integers: our own daemon, left behind.
        unsafe { libc::kill(daemon, libc::SIGKILL) };
    }
    let stderr = std::io::read_to_string(sigward.stderr.take().unwrap()).unwrap_or_default();
    (status, stderr, alive)
}

#[test]
fn with_proc_unreadable_the_app_group_is_killed_at_the_deadline_and_sigward_exits() {
    // The daemon must come to sigward (a subreaper) for sigward to wait for it at all.
    if skip_without_subreaper() {
        return;
    }
    // The fewest fds sigward starts the app with: then it can open /proc, but not one
    // process's stat file in it as well (the listing needs one more fd than starting does).
    let (status, stderr, alive) = (4..16)
        .map(run_with_fds)
        .find(|(_, stderr, _)| stderr.contains(") exited with status 0"))
        .expect("sigward starts its app with 16 fds");
    assert!(status.is_some(), "sigward never exited:\n{stderr}");
    assert!(!alive, "the daemon outlived sigward:\n{stderr}");
    assert!(
        stderr.contains("the processes left cannot be listed (/proc: EMFILE"),
        "{stderr}"
    );
}

/// `sh -c ARGS...` as PID 1 of a new PID namespace, its stderr to `err`; killing the returned
/// unshare (--kill-child) ends the namespace and every process in it.
fn shell_as_pid1(args: &[&str], err: &str) -> std::process::Child {
    Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "sh",
            "-c",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(err).expect("stderr file"))
        .spawn()
        .expect("unshare")
}

/// A restart in place (the restart signal, no sockets to hand over) under RLIMIT_NOFILE `fds`,
/// the app leaving a daemon of its own session that ignores SIGTERM: sigward's stderr, and
/// whether generation 2 started or sigward exited within `T` (else it is stuck).
fn restart_with_fds(fds: u32) -> (String, bool) {
    let app = "setsid sh -c \"trap '' TERM; exec sleep 60\" & exec sleep 60";
    let (stderr, ended, _) = signalled_with_fds(fds, "--restart-signal HUP", "HUP", app);
    (stderr, ended)
}

/// sigward (not PID 1: PID 1 is a shell that sends it `sig` 0.5 s after its start and exits
/// with its status) with `options`, under RLIMIT_NOFILE `fds`, running `sh -c APP`: its stderr,
/// whether it ended (exited, or started generation 2) within `T`, and its exit status.
fn signalled_with_fds(
    fds: u32,
    options: &str,
    sig: &str,
    app: &str,
) -> (String, bool, Option<i32>) {
    let dir = Scratch::new();
    let err = dir.path("stderr");
    let script = format!(
        "ulimit -n \"$2\" && {{ \"$0\" -t 0.5s {options} -- sh -c \"$1\" & s=$!; sleep 0.5; kill -{sig} $s; wait $s; }}"
    );
    let mut ns = shell_as_pid1(&[&script, sigward_bin(), app, &fds.to_string()], &err);
    let mut code = None;
    let ended = eventually(
        T,
        || {
            if let Some(status) = ns.try_wait().ok().flatten() {
                code = status.code();
                return true;
            }
            std::fs::read_to_string(&err).is_ok_and(|e| e.contains("generation 2 started"))
        },
        |&ended| ended,
    );
    // --kill-child: the namespace's PID 1 dies with unshare, and every process in it.
    let _ = ns.kill();
    let _ = ns.wait();
    (
        std::fs::read_to_string(&err).unwrap_or_default(),
        ended,
        code,
    )
}

/// The deadline's SIGKILL went to the app's group, the main process among them, but /proc
/// cannot be read: sigward still waits for its own child (no /proc needed) and exits with its
/// status, 137, not 125 ("no exit status") the instant the SIGKILL went out.
#[test]
fn with_proc_unreadable_sigward_exits_with_the_status_of_the_main_process_it_killed() {
    let deadline = "the grace period is over, but the processes left cannot be listed";
    let (stderr, ended, code) = (4..16)
        .map(|fds| signalled_with_fds(fds, "", "TERM", "trap '' TERM; sleep 60"))
        .find(|(stderr, ..)| stderr.contains(deadline))
        .expect("some fd limit leaves /proc unreadable at the deadline");
    assert!(ended, "sigward never exited:\n{stderr}");
    assert_eq!(code, Some(137), "{stderr}");
    assert!(
        stderr.contains("exited with signal SIGKILL (status 137)"),
        "{stderr}"
    );
}

#[test]
fn with_proc_unreadable_a_restart_in_place_ends_at_the_deadline_instead_of_resweeping() {
    // The daemon left behind must come to sigward (a subreaper) to be waited for at all.
    if skip_without_subreaper() {
        return;
    }
    let deadline = "the grace period is over, but the processes left cannot be listed";
    let (stderr, ended) = (4..16)
        .map(restart_with_fds)
        .find(|(stderr, _)| stderr.contains(deadline))
        .expect("some fd limit leaves /proc unreadable at the restart's deadline");
    assert!(ended, "sigward resweeps an unseen tree for ever:\n{stderr}");
    assert!(!stderr.contains("exiting: any process"), "{stderr}");
}

/// PID 1 (a shell, sigward is not PID 1) starts sigward under RLIMIT_NOFILE `$3`; once sigward's
/// main process (pid m, the leader of its group m) was reaped, it starts a stranger outside
/// sigward's tree as pid m, leader of a new group m (ns_last_pid), and says after sigward exited
/// whether the stranger survived.
const STRANGER: &str = r#"
sh -c 'ulimit -n "$2" && exec "$0" -t 1.5s -- sh -c "$1"' "$1" "$2" "$3" &
s=$!
m=
while [ -z "$m" ]; do kill -0 $s 2>/dev/null || exit 9; sleep 0.05; read m rest < /proc/$s/task/$s/children; done
while kill -0 "$m" 2>/dev/null; do sleep 0.05; done
echo $((m - 1)) > /proc/sys/kernel/ns_last_pid
setsid sleep 60 &
x=$!
wait $s
sleep 0.2
if [ "$x" != "$m" ]; then echo "no stranger as pid $m ($x)" >&2
elif kill -0 "$x" 2>/dev/null; then echo "stranger alive" >&2
else echo "stranger killed" >&2; fi
"#;

/// The main process exited and was reaped, leaving a daemon of its own session: when /proc
/// cannot be read, sigward signals the app's group by its id. Not as PID 1, that id may be
/// reused by then (here: forced by ns_last_pid) by a stranger's group, which kill(-pgid) would
/// reach: sigward first checks that no process has the reaped leader's pid (reach's own rule).
#[test]
fn with_proc_unreadable_a_reused_group_id_is_not_signalled() {
    let deadline = "the grace period is over, but the processes left cannot be listed";
    let app = "setsid sh -c \"trap '' TERM; exec sleep 60\" & sleep 0.3; exit 0";
    let run = |fds: u32| {
        let dir = Scratch::new();
        let err = dir.path("stderr");
        let args = [STRANGER, "stranger", sigward_bin(), app, &fds.to_string()];
        let mut ns = shell_as_pid1(&args, &err);
        let exited = eventually(T, || ns.try_wait().ok().flatten().is_some(), |&e| e);
        let _ = ns.kill();
        let _ = ns.wait();
        (std::fs::read_to_string(&err).unwrap_or_default(), exited)
    };
    let Some((stderr, exited)) = (4..16).map(run).find(|(e, _)| e.contains(deadline)) else {
        return println!("skipped: no fd limit left /proc unreadable at the deadline");
    };
    assert!(exited, "{stderr}");
    if stderr.contains("no stranger as pid") {
        return println!("skipped: the pid was not reused as asked:\n{stderr}");
    }
    assert!(stderr.contains("stranger alive"), "{stderr}");
}
