//! Why did it die: OOM kills told from outside SIGKILLs by the memory cgroup's counter, core dumps
//! named, and the termination message (`--termination-log`) that `kubectl describe` shows.
//!
//! The OOM tests make a memory cgroup of their own with a 32 MiB limit (cgroup v1 or v2, whichever
//! the machine has; the other is skipped with a printed reason), put the namespace's PID 1 into it,
//! and run `dd` with a 64 MiB buffer under sigward: the kernel's OOM killer kills dd.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

/// A memory cgroup made for one test, removed on drop (even when the test fails).
struct MemCgroup {
    dir: PathBuf,
}

impl MemCgroup {
    /// cgroup v1: a child of the memory controller's root, 32 MiB, no swap.
    fn v1(limit: &str) -> Result<MemCgroup, String> {
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("memory.oom_control").exists() {
            return Err("no cgroup v1 memory controller at /sys/fs/cgroup/memory".into());
        }
        let cg = MemCgroup::make(root)?;
        cg.set("memory.limit_in_bytes", limit)?;
        // Without swap the limit is hit at once; memsw exists only with swap accounting.
        let _ = cg.set("memory.swappiness", "0");
        if cg.dir.join("memory.memsw.limit_in_bytes").exists() {
            cg.set("memory.memsw.limit_in_bytes", limit)?;
        }
        Ok(cg)
    }

    /// cgroup v2: a child of the unified root with the memory controller on, 32 MiB, no swap.
    fn v2(limit: &str) -> Result<MemCgroup, String> {
        let root = Path::new("/sys/fs/cgroup");
        let controllers = std::fs::read_to_string(root.join("cgroup.controllers"))
            .map_err(|_| "/sys/fs/cgroup is not a cgroup v2 root".to_string())?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err("the cgroup v2 root has no memory controller".into());
        }
        std::fs::write(root.join("cgroup.subtree_control"), "+memory")
            .map_err(|e| format!("cannot enable the memory controller: {e}"))?;
        let cg = MemCgroup::make(root)?;
        cg.set("memory.max", limit)?;
        let _ = cg.set("memory.swap.max", "0");
        Ok(cg)
    }

    fn make(root: &Path) -> Result<MemCgroup, String> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = root.join(format!("sigward-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(MemCgroup { dir })
    }

    fn set(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.dir.join(file), value)
            .map_err(|e| format!("cannot write {value} to {file}: {e}"))
    }

    fn procs(&self) -> String {
        self.dir.join("cgroup.procs").to_string_lossy().into_owned()
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        // The namespace may take a moment to go; rmdir fails (EBUSY) while anything is inside.
        for _ in 0..200 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        eprintln!("could not remove {}", self.dir.display());
    }
}

/// sigward in `cg` (PID 1 of a new namespace moves itself there before exec), running dd with a
/// 64 MiB buffer; returns how it ended and its termination message. At debug level, so that its
/// `started` line tells dd's pid (see [`started_pid`]).
fn oom_under(cg: &MemCgroup, json: bool) -> (Done, String) {
    let out = Scratch::new();
    let message = out.path("termination-log");
    let script = format!(
        "echo 0 > {} && exec {{sigward}} --log-level debug --termination-log {message} {} -- dd if=/dev/zero of=/dev/null bs=64M count=1",
        cg.procs(),
        if json { "--log-format json" } else { "" }
    );
    let done = Ns::pid1(&["sh", "-c", &script], |_| {}).wait(T);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    (done, text)
}

/// The app's pid from sigward's debug-level `started` line (text or JSON): 2 natively, 3 under
/// QEMU, whose own thread takes pid 2.
fn started_pid(stderr: &str) -> i64 {
    let line = stderr
        .lines()
        .find(|l| l.contains("\"event\":\"started\"") || l.starts_with("sigward: started "))
        .unwrap_or_else(|| panic!("no started line:\n{stderr}"));
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).expect(line);
        return v["pid"].as_i64().expect(line);
    }
    let pid = line
        .split(" as pid ")
        .nth(1)
        .and_then(|r| r.split(' ').next());
    pid.and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line}"))
}

fn oom_kill_is_named_with_the_limit(cg: Result<MemCgroup, String>, version: &str) {
    let cg = match cg {
        Ok(cg) => cg,
        Err(why) => return println!("skipped (cgroup {version}): {why}"),
    };
    let (done, message) = oom_under(&cg, false);
    assert_eq!(done.code, 137, "{}", done.stderr);
    let dd = started_pid(&done.stderr);
    done.assert_said(&format!(
        "dd (pid {dd}) was killed by the kernel's OOM killer (memory limit 32 MiB)"
    ));
    assert_eq!(
        message,
        format!(
            "dd (pid {dd}) exited with signal SIGKILL (status 137)\n\
             dd (pid {dd}) was killed by the kernel's OOM killer (memory limit 32 MiB)\n"
        )
    );
}

#[test]
fn oom_kill_under_a_cgroup_v1_limit_is_named_with_the_limit() {
    oom_kill_is_named_with_the_limit(MemCgroup::v1("32M"), "v1");
}

#[test]
fn oom_kill_under_a_cgroup_v2_limit_is_named_with_the_limit() {
    oom_kill_is_named_with_the_limit(MemCgroup::v2("32M"), "v2");
}

/// In a cgroup namespace of its own with the host's hierarchy mounted (`unshare --cgroup`,
/// `docker run --cgroupns=private -v /sys/fs/cgroup:/sys/fs/cgroup`), /proc/self/cgroup says `/`,
/// and /sys/fs/cgroup/memory is the host's root cgroup, whose counter never counts this OOM kill
/// (cgroup v1 counts in the victim's own cgroup). sigward must not take it for its own and call
/// the kill "not an OOM kill"; it cannot tell, so it says so.
#[test]
fn an_oom_kill_in_a_cgroup_namespace_over_the_hosts_hierarchy_is_never_called_outside() {
    let cg = match MemCgroup::v1("32M") {
        Ok(cg) => cg,
        Err(why) => return println!("skipped (cgroup v1): {why}"),
    };
    let script = format!(
        "echo 0 > {} && exec unshare --cgroup {{sigward}} -- dd if=/dev/zero of=/dev/null bs=64M count=1",
        cg.procs()
    );
    let done = Ns::pid1(&["sh", "-c", &script], |_| {}).wait(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    done.assert_not_said("not an OOM kill");
    assert!(
        done.stderr.contains("OOM killer") || done.stderr.contains("OOM kill unknown"),
        "{}",
        done.stderr
    );
}

#[test]
fn oom_kill_in_json_carries_oom_and_the_limit() {
    let cg = match MemCgroup::v1("32M").or_else(|_| MemCgroup::v2("32M")) {
        Ok(cg) => cg,
        Err(why) => return println!("skipped: {why}"),
    };
    let (done, _) = oom_under(&cg, true);
    let line = done
        .stderr
        .lines()
        .find(|l| l.contains("\"event\":\"oom_killed\""))
        .unwrap_or_else(|| panic!("no oom_killed line:\n{}", done.stderr));
    let v: serde_json::Value = serde_json::from_str(line).expect(line);
    assert_eq!(v["level"], "warn");
    assert_eq!(v["oom"], true);
    assert_eq!(v["core"], false);
    assert_eq!(v["signal"], "SIGKILL");
    assert_eq!(v["memory_limit"], 32 << 20);
    assert_eq!(v["pid"], started_pid(&done.stderr));
    assert_eq!(v["name"], "dd");
}

#[test]
fn sigkill_from_outside_is_not_taken_for_an_oom_kill() {
    let ns = probe_under(&[], &[]);
    let start = ns.wait_record("start", T);
    ns.wait_record("ready", T);
    let pid: i32 = field(&start, "pid").parse().unwrap();
    // The probe's pid as the test sees it: sigward's only child.
    let outside = child_of(ns.pid1, T).expect("the probe");
    // SAFETY: kill(2) with plain integers; the probe is our test's process.
    unsafe { libc::kill(outside, libc::SIGKILL) };
    let done = ns.wait(T);
    assert_eq!(done.code, 137);
    done.assert_said(&format!(
        "(pid {pid}) was killed by SIGKILL from outside sigward (not an OOM kill)"
    ));
    done.assert_not_said("OOM killer");
}

#[test]
fn an_orphan_killed_from_outside_is_named_by_pid() {
    // The subshell's sleep is orphaned to sigward; the test SIGKILLs it.
    let ns = sh_under(&["-t", "5s"], "(sleep 60 &); exec {probe} log={log}");
    ns.wait_record("ready", T);
    let sleep = eventually(
        T,
        || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .find(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                        s.contains("(sleep)")
                            && s.split_whitespace().nth(3) == Some(&ns.pid1.to_string())
                    })
                })
        },
        Option::is_some,
    )
    .expect("the orphaned sleep");
    let inside = std::fs::read_to_string(format!("/proc/{sleep}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .and_then(|l| l.split_whitespace().last().map(str::to_string))
        .unwrap();
    // SAFETY: kill(2) with plain integers; the sleep is the test's own descendant.
    unsafe { libc::kill(sleep, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(300));
    let done = ns.stop(T);
    done.assert_said(&format!(
        "pid {inside} was killed by SIGKILL from outside sigward (not an OOM kill)"
    ));
}

#[test]
fn stragglers_killed_at_the_deadline_are_not_reported_as_killed_from_outside() {
    let ns = probe_under(&["-t", "1s"], &["on-term=ignore"]);
    ns.wait_record("ready", T);
    let done = ns.stop(T);
    assert_eq!(done.code, 137);
    done.assert_said("killing 1 straggler");
    done.assert_not_said("outside sigward");
    done.assert_not_said("OOM");
}

#[test]
fn a_core_dump_is_named_with_its_signal() {
    // The core file lands in the scratch directory (core_pattern permitting); ulimit lets it.
    // The shell's pid (2 natively, 3 under QEMU) goes to a file that outlives the namespace.
    let out = Scratch::new();
    let pid_file = out.path("pid");
    let script =
        format!("cd {{dir}} && ulimit -c unlimited && echo $$ > {pid_file} && kill -SEGV $$");
    let done = sh_under(&[], &script).wait(T);
    assert_eq!(done.code, 139, "{}", done.stderr);
    let pattern = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap_or_default();
    if !done.stderr.contains("core dumped") {
        // The kernel dumped no core (a core_pattern that fails, a limit it ignores): nothing to
        // name, and nothing must be claimed.
        println!("no core dumped here (core_pattern {pattern:?}): skipped");
        done.assert_not_said("dumped core");
        return;
    }
    done.assert_said(&format!(
        "sh (pid {}) dumped core (SIGSEGV)",
        std::fs::read_to_string(&pid_file).unwrap().trim()
    ));
}

#[test]
fn termination_message_after_a_stop_with_a_straggler() {
    // The main process exits on SIGTERM; a worker it started ignores SIGTERM and is killed.
    let out = Scratch::new();
    let message = out.path("termination-log");
    let ns = sh_under(
        &["-t", "1s", "--termination-log", &message],
        "{probe} log={dir}/worker.log on-term=ignore & exec {probe} log={log}",
    );
    let app = field(&ns.wait_record("start", T), "pid").to_string();
    ns.wait_record("ready", T);
    wait_line(&ns.dir.path("worker.log"), "ready", T);
    let worker = field(&wait_line(&ns.dir.path("worker.log"), "start", T), "pid").to_string();
    let done = ns.stop(T);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    assert_eq!(done.code, 143, "{}", done.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], format!("sh (pid {app}) exited with status 143"));
    assert_eq!(
        lines[1],
        format!("sigward's grace period of 1s was over: it killed 1 straggler: {worker} (probe)")
    );
    // stop timeline: SIGTERM received at 0 ms, SIGTERM forwarded at 0 ms, sh exited at A ms,
    // (the worker told to stop at A ms,) stragglers killed at B ms, sigward exiting at C ms.
    let items: Vec<(&str, u64)> = lines[2]
        .strip_prefix("stop timeline: ")
        .unwrap_or_else(|| panic!("{text}"))
        .split(", ")
        .map(|item| {
            let (what, at) = item.rsplit_once(" at ").unwrap();
            let ms = at.strip_suffix(" ms").and_then(|n| n.parse().ok());
            (what, ms.unwrap_or_else(|| panic!("{item} in {text}")))
        })
        .collect();
    let at = |what: &str| {
        items
            .iter()
            .find(|(w, _)| *w == what)
            .unwrap_or_else(|| panic!("no {what} in {text}"))
            .1
    };
    assert_eq!(items.first(), Some(&("SIGTERM received", 0)), "{text}");
    assert_eq!(items.last().map(|i| i.0), Some("sigward exiting"), "{text}");
    assert!(items.windows(2).all(|w| w[0].1 <= w[1].1), "{text}");
    let killed = at("stragglers killed");
    assert!(at("sh exited") <= killed, "{text}");
    assert!(
        (950..15_000).contains(&killed),
        "killed at {killed} ms: {text}"
    );
    assert!(text.len() <= 4096);
}

#[test]
fn termination_message_written_by_the_app_is_left_untouched() {
    let out = Scratch::new();
    let message = out.path("termination-log");
    let app = format!("echo 'the app says: disk full' > {message}; exit 3");
    let done = run(&["--termination-log", &message, "--", "sh", "-c", &app]);
    assert_eq!(done.code, 3);
    assert_eq!(
        std::fs::read_to_string(&message).unwrap(),
        "the app says: disk full\n"
    );
}

#[test]
fn termination_message_off_writes_nothing_and_a_given_path_is_created() {
    let out = Scratch::new();
    let message = out.path("termination-log");
    // off (the flag wins over the environment): the empty file stays empty.
    std::fs::write(&message, "").unwrap();
    let done = Ns::start_with(
        &["--termination-log", "off", "--", "sh", "-c", "exit 4"],
        |cmd| {
            cmd.env("SIGWARD_TERMINATION_LOG", &message);
        },
    )
    .wait(T);
    assert_eq!(done.code, 4);
    assert_eq!(std::fs::read_to_string(&message).unwrap(), "");
    // Through the environment, a path that does not exist yet: created.
    std::fs::remove_file(&message).unwrap();
    let pid_file = out.path("pid");
    let script = format!("echo $$ > {pid_file}; exit 5");
    let done = Ns::start_with(&["--", "sh", "-c", &script], |cmd| {
        cmd.env("SIGWARD_TERMINATION_LOG", &message);
    })
    .wait(T);
    assert_eq!(done.code, 5);
    assert_eq!(
        std::fs::read_to_string(&message).unwrap(),
        format!(
            "sh (pid {}) exited with status 5\n",
            std::fs::read_to_string(&pid_file).unwrap().trim()
        )
    );
}

#[test]
fn the_default_termination_log_is_never_created() {
    if Path::new("/dev/termination-log").exists() {
        return println!("skipped: /dev/termination-log exists on this machine");
    }
    let done = run(&["--", "sh", "-c", "exit 0"]);
    assert_eq!(done.code, 0);
    assert!(!Path::new("/dev/termination-log").exists());
}

#[test]
fn a_stop_signal_rewritten_to_sigkill_is_sigwards_own_kill() {
    // -r TERM:KILL: the app dies of the SIGKILL sigward forwarded; nobody else is to blame.
    let ns = probe_under(&["-r", "TERM:KILL"], &[]);
    ns.wait_record("ready", T);
    let done = ns.stop(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    done.assert_not_said("outside sigward");
    done.assert_not_said("OOM");
    // The same for a forwarded signal that is not a stop signal (-r USR2:KILL).
    let ns = probe_under(&["-r", "USR2:KILL"], &[]);
    ns.wait_record("ready", T);
    ns.signal(libc::SIGUSR2);
    let done = ns.wait(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    done.assert_not_said("outside sigward");
}

#[test]
fn termination_message_says_the_command_could_not_run() {
    let out = Scratch::new();
    let message = out.path("termination-log");
    let done = run(&["--termination-log", &message, "--", "/no/such/app"]);
    assert_eq!(done.code, 127, "{}", done.stderr);
    assert_eq!(
        std::fs::read_to_string(&message).unwrap_or_default(),
        "cannot run '/no/such/app': No such file or directory\n"
    );
}

#[test]
fn termination_message_after_a_restart_in_place_that_cannot_run_says_so() {
    let out = Scratch::new();
    let message = out.path("termination-log");
    let app = out.path("app");
    std::fs::copy(probe(), &app).unwrap();
    let ns = Ns::start(&[
        "--restart-signal",
        "USR2",
        "--termination-log",
        &message,
        "--",
        &app,
        "log={log}",
    ]);
    ns.wait_record("ready", T);
    std::fs::remove_file(&app).unwrap();
    ns.signal(libc::SIGUSR2);
    let done = ns.wait(T);
    assert_eq!(done.code, 127, "{}", done.stderr);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    // What sigward exits with comes first; the drained generation's end after it.
    assert_eq!(
        text.lines().next(),
        Some("generation 2 cannot run: No such file or directory; exiting with status 127"),
        "{text}"
    );
    assert!(!text.contains("stop timeline"), "{text}");
}

/// The items of a `stop timeline:` line, each with its time in ms.
fn timeline(text: &str) -> Vec<(String, u64)> {
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("stop timeline: "))
        .unwrap_or_else(|| panic!("no timeline in {text:?}"));
    line.split(", ")
        .map(|item| {
            let (what, at) = item.rsplit_once(" at ").unwrap();
            let ms = at.strip_suffix(" ms").and_then(|n| n.parse().ok());
            (
                what.to_string(),
                ms.unwrap_or_else(|| panic!("{item} in {text}")),
            )
        })
        .collect()
}

#[test]
fn termination_message_of_a_restart_in_place_that_became_the_stop_has_its_timeline() {
    // The restart's drain is under way (the app ignores SIGTERM) when the real stop comes: the
    // drain is the stop sequence now, and the message tells it from its beginning, in order.
    let out = Scratch::new();
    let message = out.path("termination-log");
    let ns = probe_under(
        &[
            "--restart-signal",
            "HUP",
            "-t",
            "2s",
            "--termination-log",
            &message,
        ],
        &["on-term=stay"],
    );
    ns.wait_record("ready", T);
    ns.signal(libc::SIGHUP);
    ns.wait_record("sig 15", T);
    std::thread::sleep(Duration::from_millis(300));
    let done = ns.stop(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    let items = timeline(&text);
    // (The probe's own exit, at the kill, is named by its path.)
    let names: Vec<&str> = items
        .iter()
        .map(|(w, _)| w.as_str())
        .filter(|w| !w.ends_with("probe exited"))
        .collect();
    assert_eq!(
        names,
        [
            "restart in place began",
            "SIGTERM forwarded",
            "SIGTERM received",
            "stragglers killed",
            "sigward exiting"
        ],
        "{text}"
    );
    assert_eq!(items[0].1, 0, "{text}");
    assert!(items.windows(2).all(|w| w[0].1 <= w[1].1), "{text}");
    assert!(items[2].1 >= 250, "{text}");
}

#[test]
fn termination_message_when_the_stop_signal_comes_after_the_app_exited_keeps_time_order() {
    // The app exits by itself leaving a worker that ignores SIGTERM; the stop signal comes later.
    let out = Scratch::new();
    let message = out.path("termination-log");
    let ns = sh_under(
        &["-t", "2s", "--termination-log", &message],
        "{probe} log={dir}/worker.log on-term=ignore & sleep 0.2; touch {dir}/gone; exit 3",
    );
    wait_line(&ns.dir.path("worker.log"), "ready", T);
    eventually(T, || Path::new(&ns.dir.path("gone")).exists(), |gone| *gone);
    std::thread::sleep(Duration::from_millis(500));
    let done = ns.stop(T);
    let text = std::fs::read_to_string(&message).unwrap_or_default();
    let items = timeline(&text);
    let names: Vec<&str> = items.iter().map(|(w, _)| w.as_str()).collect();
    assert_eq!(
        names,
        [
            "sh exited",
            "stop signal to the processes left",
            "SIGTERM received",
            "stragglers killed",
            "sigward exiting"
        ],
        "{text}\n{}",
        done.stderr
    );
    assert!(items.windows(2).all(|w| w[0].1 <= w[1].1), "{text}");
}

/// `-t 0.001ms`: the deadline comes while the app, dying of the stop signal, is not reaped yet,
/// so SIGKILL finds nothing. The termination message then names no stragglers ("it killed 0
/// stragglers: " was written in most runs) and its timeline has no "stragglers killed".
#[test]
fn termination_message_names_no_stragglers_when_the_deadline_found_nothing_left() {
    for _ in 0..3 {
        let out = Scratch::new();
        let message = out.path("termination-log");
        std::fs::write(&message, "").unwrap();
        let args = [
            "-t",
            "0.001ms",
            "--termination-log",
            &message,
            "--",
            "sleep",
            "60",
        ];
        let ns = Ns::start(&args);
        // sleep dies of SIGTERM at once; give it time to be sleep (no tight bound asserted).
        std::thread::sleep(Duration::from_millis(300));
        let done = ns.stop(T);
        let text = std::fs::read_to_string(&message).unwrap_or_default();
        assert!(text.contains("stop timeline: SIGTERM received"), "{text}");
        assert!(!text.contains("killed 0"), "{text}\n{}", done.stderr);
        // The timeline tells stragglers killed only when the message names some.
        assert_eq!(
            text.contains("stragglers killed at"),
            text.contains("was over: it killed"),
            "{text}"
        );
    }
}
