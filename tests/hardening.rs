//! PID 1 must never fall over: storms, leaks and odd children, each ending in a bounded, logged
//! stop with the right exit code.
mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::time::Duration;

const T: Duration = Duration::from_secs(120);

fn vm_rss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn fork_storm_of_100k_orphans_is_reaped_without_memory_or_fd_growth() {
    // sigward's child waits for the go file, then four forkers make 25,000 orphans each as fast as
    // they can fork; the last probe then waits until no zombie is left in the namespace.
    let ns = sh_under(
        &[],
        "while [ ! -e {dir}go ]; do sleep 0.02; done; \
         for i in 0 1 2 3; do {probe} log={dir}storm$i orphans=25000 exit=0 & done; wait; \
         exec {probe} log={log} orphans=1",
    );
    child_of(ns.pid1, T).expect("sigward's child");
    std::thread::sleep(Duration::from_millis(300));
    let (rss_before, fds_before) = (vm_rss_kb(ns.pid1), fd_count(ns.pid1));
    std::fs::write(ns.dir.path("go"), "").unwrap();
    let line = ns.wait_record("orphans", T);
    assert_eq!(
        line, "orphans made=1 zombies=0",
        "zombies left after the storm"
    );
    for i in 0..4 {
        let storm = std::fs::read_to_string(ns.dir.path(&format!("storm{i}"))).unwrap();
        assert!(storm.contains("orphans made=25000"), "{storm}");
    }
    let (rss_after, fds_after) = (vm_rss_kb(ns.pid1), fd_count(ns.pid1));
    eprintln!("fork storm: VmRSS {rss_before} -> {rss_after} kB, fds {fds_before} -> {fds_after}");
    assert!(
        rss_after <= rss_before + 64,
        "VmRSS grew from {rss_before} kB to {rss_after} kB over 100k orphans"
    );
    assert_eq!(
        fds_after, fds_before,
        "sigward's fd count changed across 100k child exits"
    );
    assert_eq!(ns.stop(T).code, 143);
}

#[test]
fn signal_storm_of_100k_leaves_sigward_up_forwarding_and_able_to_stop() {
    let ns = sh_under(
        &["-t", "10s"],
        "{probe} log={dir}forker orphans=20000 on-term=exit:0 & exec {probe} log={log}",
    );
    ns.wait_record("ready", T);
    // The app's pid (the shell's, which exec'd the probe): 2 natively, 3 under QEMU, whose own
    // thread takes 2.
    let app = field(&ns.wait_record("start", T), "pid").to_string();
    // The forker runs in the background: it must mask signals before the storm reaches it.
    wait_line(&ns.dir.path("forker"), "blocked", T);
    let mix = [libc::SIGUSR1, libc::SIGHUP, libc::SIGWINCH, libc::SIGCHLD];
    for i in 0..100_000 {
        // SAFETY: kill(2) with plain integers.
        let rc = unsafe { libc::kill(ns.pid1, mix[i % mix.len()]) };
        assert_eq!(rc, 0, "sigward died during the storm after {i} signals");
    }
    // Standard signals coalesce, so the app sees each kind at least once, not 25,000 times.
    for sig in [libc::SIGUSR1, libc::SIGHUP, libc::SIGWINCH] {
        ns.wait_record(&format!("sig {sig} "), T);
    }
    wait_line(&ns.dir.path("forker"), "orphans made=20000 zombies=0", T);
    let done = ns.stop(T);
    assert_eq!(done.code, 143, "{}", done.stderr);
    done.assert_said("received SIGTERM from outside the PID namespace (pid 0): stopping");
    done.assert_said(&format!("forwarded SIGTERM to process group {app}"));
}

#[test]
fn child_gets_only_stdio_and_sigward_keeps_one_fd() {
    let ns = Ns::start_with(&["--", "{probe}", "log={log}"], only_stdio);
    let start = ns.wait_record("start", T);
    assert_eq!(
        field(&start, "fds"),
        "0,1,2",
        "something of sigward's leaked into the child"
    );
    // Beside stdio and its signalfd, sigward may hold one fd more: its own non-blocking open
    // file description of stderr's pipe (log writes never block), which names the same pipe.
    // Until it has read the end of the exec report, it also holds that pipe: a slow sigward (under
    // QEMU) may still do so when the probe has started, so this waits for the settled set.
    let only_its_own = |fds: &Vec<(i32, String)>| {
        let Some((_, stderr)) = fds.get(2) else {
            return false;
        };
        let rest: Vec<&str> = fds[3..]
            .iter()
            .map(|(_, l)| if l == stderr { "stderr" } else { l.as_str() })
            .collect();
        rest == ["anon_inode:[signalfd]"] || rest == ["stderr", "anon_inode:[signalfd]"]
    };
    let fds = eventually(T, || fds_of(ns.pid1), only_its_own);
    assert!(
        only_its_own(&fds),
        "sigward holds only stdio, its signalfd and its log's stderr: {fds:?}"
    );
}

#[test]
fn child_that_stops_itself_is_continued_by_a_forwarded_sigcont() {
    let ns = sh_under(&[], "kill -STOP $$; echo continued; exit 3");
    // Wait until the shell is stopped (state T), then continue it through sigward.
    let sh = child_of(ns.pid1, T).unwrap();
    let start = std::time::Instant::now();
    while !std::fs::read_to_string(format!("/proc/{sh}/stat"))
        .unwrap_or_default()
        .contains(") T ")
    {
        assert!(start.elapsed() < T, "the child never stopped");
        std::thread::sleep(Duration::from_millis(10));
    }
    ns.signal(libc::SIGCONT);
    let done = ns.wait(T);
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "continued");
}

#[test]
fn child_that_ignores_every_signal_is_killed_at_the_deadline() {
    let ns = probe_under(&["-t", "1s"], &["ignore-all"]);
    ns.wait_record("ready", T);
    for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGTERM] {
        ns.signal(sig);
    }
    let done = ns.wait(T);
    assert_eq!(done.code, 137, "{}", done.stderr);
    done.assert_said("grace period of 1s is over: killing 1 straggler");
}

#[test]
fn double_forked_daemon_is_told_to_stop_when_the_main_child_exits() {
    // The daemon escapes the group (setsid, re-parented) but drains on SIGTERM: sigward waits
    // for it and then exits with the main child's code, well before the grace deadline.
    let ns = sh_under(
        &["-t", "30s"],
        "( {probe} log={log} sid on-term=drain:300:0 & ); while ! grep -q ready {log} 2>/dev/null; do sleep 0.02; done; exit 6",
    );
    let done = ns.wait(T);
    assert_eq!(done.code, 6, "{}", done.stderr);
    assert!(done.records.contains("drained"), "{}", done.records);
    assert!(done.elapsed < Duration::from_secs(20));
}

#[test]
fn command_that_closes_its_stdout_and_stderr_still_gets_its_exit_code() {
    let done = run(&["--", "sh", "-c", "exec >&- 2>&-; sleep 0.1; exit 4"]);
    assert_eq!(done.code, 4);
}

#[test]
fn sigward_with_stderr_closed_still_runs_and_stops() {
    let ns = Ns::start_with(
        &["-t", "1s", "--", "{probe}", "log={log}", "on-term=ignore"],
        |cmd| {
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                cmd.pre_exec(|| {
                    libc::close(2);
                    Ok(())
                })
            };
        },
    );
    ns.wait_record("ready", T);
    assert_eq!(ns.stop(T).code, 137);
}

#[test]
fn huge_argv_and_environment_reach_the_child() {
    let arg = "a".repeat(100);
    let mut args: Vec<&str> = vec![
        "--",
        "sh",
        "-c",
        "echo $# ${#BIG0} ${#BIG1} ${#BIG2} ${#BIG3}",
        "sh",
    ];
    args.extend(std::iter::repeat_n(arg.as_str(), 5000)); // 0.5 MB of argv
    let ns = Ns::start_with(&args, |cmd| {
        // and ~0.5 MB of environment (one string may hold at most 128 kB: MAX_ARG_STRLEN)
        for i in 0..4 {
            cmd.env(format!("BIG{i}"), "b".repeat(120_000));
        }
    });
    let done = ns.wait(T);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "5000 120000 120000 120000 120000");
}
