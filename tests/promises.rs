//! What the README promises, checked the way a user would meet it: socket activation with and
//! without --listen, readiness and the app's other sd_notify messages reaching a notify-aware
//! parent, shell scripts without a shebang, `localhost` in --listen, and the configured stop
//! signal on every restart (issue 9, "README promises the code does not keep").
mod common;
use common::*;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// The inode of the socket at `fd` of `pid`, from `/proc/PID/fd/FD` (`socket:[INODE]`).
fn socket_inode(pid: i32, fd: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    link.to_str()?
        .strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The local IPv4 address of the TCP socket at `fd` of `pid`, from /proc/PID/net/tcp.
fn tcp_local_addr(pid: i32, fd: i32) -> Option<std::net::SocketAddrV4> {
    let inode = socket_inode(pid, fd)?.to_string();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        if cols.get(9) != Some(&inode.as_str()) {
            return None;
        }
        let (ip, port) = cols.get(1)?.split_once(':')?;
        // The kernel prints the address as a host-order u32 of the network-order bytes.
        let ip = u32::from_str_radix(ip, 16).ok()?.to_ne_bytes();
        Some(std::net::SocketAddrV4::new(
            ip.into(),
            u16::from_str_radix(port, 16).ok()?,
        ))
    })
}

#[test]
fn socket_activated_sockets_are_handed_on_beside_the_listen_sockets() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat(2) on our own open fd into a valid buffer.
    assert_eq!(
        unsafe { libc::fstat(listener.as_raw_fd(), st.as_mut_ptr()) },
        0
    );
    // SAFETY: fstat filled it.
    let activated = unsafe { st.assume_init() }.st_ino;
    let fd = listener.as_raw_fd();
    let ns = probe_under_with(&["--listen", "web=tcp://127.0.0.1:0"], &[], move |cmd| {
        socket_activated(cmd, fd, "act")
    });
    drop(listener); // the namespace holds its own copy
    let start = ns.wait_record("start", T);
    let env = ns.wait_record("env", T);
    assert_eq!(field(&start, "fds"), "0,1,2,3,4", "{env}");
    assert_eq!(field(&env, "LISTEN_FDS"), "2", "{env}");
    assert_eq!(field(&env, "LISTEN_FDNAMES"), "act:web", "{env}");
    assert_eq!(field(&env, "LISTEN_PID"), field(&start, "pid"));
    assert_listening(&env, 3, 2, &env);
    assert_listening(&env, 4, 2, &env);
    let app = child_of(ns.pid1, T).expect("the app");
    assert_eq!(
        socket_inode(app, 3),
        Some(activated),
        "fd 3 is not the activated socket itself"
    );
}

#[test]
fn ready_after_a_delay_tells_the_parent_ready_for_the_first_generation() {
    let parent = NotifyParent::new();
    let ns = parent.start(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--ready",
        "after:1s",
        "--",
        "{probe}",
        "log={log}",
    ]);
    let started: u128 = field(&ns.wait_record("start", T), "t").parse().unwrap();
    parent.expect("READY=1", Duration::from_secs(10));
    let at = now_ns();
    assert!(
        at >= started + 900_000_000,
        "READY=1 came {} ms after the app started, before after:1s",
        (at - started) / 1_000_000
    );
    assert_eq!(ns.stop(T).code, 143);
}

#[test]
fn watchdog_status_and_extend_timeout_reach_the_parent_but_mainpid_does_not() {
    let parent = NotifyParent::new();
    let ns = parent.start(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--",
        "{probe}",
        "log={log}",
        "notify",
        "say=WATCHDOG=1",
        "say=STATUS=serving",
        "say=EXTEND_TIMEOUT_USEC=5000000",
        "say=MAINPID=4242",
        "say=WATCHDOG=trigger",
    ]);
    assert_eq!(field(&ns.wait_record("said", T), "ok"), "true");
    // Collect what arrives within a generous while, then stop.
    let mut told = Vec::new();
    while let Some(m) = parent.next(Duration::from_secs(2)) {
        told.push(m);
    }
    let done = ns.stop(T);
    told.extend(parent.pending());
    let lines = notify_lines(&told);
    for relayed in [
        "READY=1",
        "WATCHDOG=1",
        "STATUS=serving",
        "EXTEND_TIMEOUT_USEC=5000000",
        "WATCHDOG=trigger",
    ] {
        assert!(
            lines.iter().any(|l| l == relayed),
            "{relayed} did not reach the parent: {told:?}\n{}",
            done.stderr
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("MAINPID=")),
        "the app's MAINPID= reached the parent (sigward is the main pid): {told:?}"
    );
}

#[test]
fn shell_script_without_a_shebang_runs_with_bin_sh() {
    // glibc's execvp falls back to /bin/sh on ENOEXEC, musl's does not: this is red only against
    // the static musl build (SIGWARD_BIN=target/static/sigward).
    let scratch = Scratch::new();
    let script = scratch.path("entrypoint");
    std::fs::write(&script, "echo from-script\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let done = run(&["--", &script]);
    assert_eq!(done.code, 7, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "from-script");
    // A generation is started by the other exec path (execvpe, with its environment).
    let done = run(&["--listen", "tcp://127.0.0.1:0", "--", &script]);
    assert_eq!(done.code, 7, "as a generation: {}", done.stderr);
}

#[test]
fn listen_accepts_localhost_and_binds_the_loopback_address() {
    let out = Command::new(sigward_bin())
        .args(["--listen", "tcp://localhost:0", "--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns = probe_under(&["--listen", "tcp://localhost:0"], &[]);
    let env = ns.wait_record("env", T);
    assert_listening(&env, 3, 2, &env);
    let app = child_of(ns.pid1, T).expect("the app");
    let addr = tcp_local_addr(app, 3).expect("fd 3 in /proc/net/tcp");
    assert_eq!(*addr.ip(), std::net::Ipv4Addr::LOCALHOST, "{addr}");
    assert_ne!(addr.port(), 0);
}

/// The first signal the replaced generation got on a restart under `options` (with --listen).
fn signal_that_retires_a_generation(options: &[&str]) -> (i32, String) {
    let mut args = vec!["--listen", "tcp://127.0.0.1:0", "-t", "2s"];
    args.extend(options);
    args.extend([
        "--",
        "sh",
        "-c",
        "exec {probe} log={dir}gen$SIGWARD_GENERATION notify",
    ]);
    let ns = Ns::start(&args);
    let (gen1, gen2) = (ns.dir.path("gen1"), ns.dir.path("gen2"));
    wait_line(&gen1, "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    wait_line(&gen2, "notified ok=true", T);
    let first = wait_line(&gen1, "sig ", T);
    let sig = first
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    // Let the retiring grace period run out, so the record is complete.
    std::thread::sleep(Duration::from_millis(2500));
    let records = std::fs::read_to_string(&gen1).unwrap();
    // With -S QUIT, TERM is no stop signal: it is forwarded, and generation 2 exits on it.
    ns.signal(libc::SIGTERM);
    drop(ns.wait(T));
    (sig, records)
}

#[test]
fn retiring_a_generation_uses_the_configured_stop_signal() {
    let (sig, records) = signal_that_retires_a_generation(&["-S", "QUIT"]);
    assert_eq!(sig, libc::SIGQUIT, "generation 1 got:\n{records}");
    assert!(
        !signals_seen(&records).contains(&libc::SIGTERM),
        "generation 1 also got SIGTERM:\n{records}"
    );
}

#[test]
fn retiring_a_generation_uses_the_rewritten_stop_signal() {
    let (sig, records) = signal_that_retires_a_generation(&["-S", "QUIT", "-r", "QUIT:USR2"]);
    assert_eq!(sig, libc::SIGUSR2, "generation 1 got:\n{records}");
    assert!(
        !signals_seen(&records).contains(&libc::SIGTERM),
        "generation 1 also got SIGTERM:\n{records}"
    );
}
