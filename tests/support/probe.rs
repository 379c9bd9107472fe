//! probe: the app that sigward's integration tests (and scripts/bench) run under sigward.
//!
//! It records what it observes, one line per fact, to the file named by `log=PATH`:
//!   `start pid=P ppid=P pgid=G sid=S mask=HEX ignored=HEX fds=0,1,2 t=NS`
//!   `sig N from=PID t=NS`        (a signal arrived; CLOCK_MONOTONIC nanoseconds)
//!   `orphans made=N zombies=Z`   (after `orphans=N`)
//!   `blocked t=NS`               (signals are blocked: from here they are recorded, not fatal)
//!   `ready t=NS`                 (after any orphans: the probe now waits for signals)
//!   `env LISTEN_FDS=.. LISTEN_PID=.. ... fd3=family:F,listening:1`   (when sockets were passed)
//!   `notified ok=true t=NS`      (after `notify`: READY=1 sent to NOTIFY_SOCKET)
//!   `said n=N ok=true t=NS`      (after `say=`: N datagrams sent to NOTIFY_SOCKET)
//!   `flooding t=NS`              (after `flood`: the flood has begun)
//!   `drained t=NS`, `exit CODE`
//! Words (any order): `log=PATH`, `on-term=exit:N|ignore|stay|drain:MS:N` (default exit:143; stay: record only), `exit=N` (exit after start
//! and orphans), `orphans=N` (make N orphans that exit at once, then wait until no zombie is left),
//! `ignore-all` (SIG_IGN every catchable signal, then sleep), `sid` (call setsid first: a daemon),
//! `reap=N` (make N orphans that wait on a pipe, release them all at once, and record
//! `reaped n=N first_fork=NS release=NS done=NS` once nothing but PID 1 and the probe is left),
//! `comm=HEX` (set the process name, prctl(PR_SET_NAME), to these bytes, at most 15: a name that
//! is not UTF-8), `notify-on=N` (send READY=1 each time signal N arrives, recorded as `notified`),
//! `say=TEXT` (after `notify`, send TEXT as one datagram to NOTIFY_SOCKET; repeatable, in order),
//! `flood` (a thread sends datagrams to NOTIFY_SOCKET, as fast as they are taken, until a send
//! fails; the probe meanwhile waits for signals as usual), `jobs` (job control: SIGTSTP, SIGTTIN
//! and SIGTTOU keep their default action, unblocked, so they stop the probe as they stop any
//! program; every other signal gets its default action before it is blocked, so one that the
//! caller left ignored, as a shell does for SIGINT, is still recorded), `on-int=exit:N` (exit N
//! on SIGINT, after recording it).
//! It sleeps in sigwaitinfo, so it records the moment a signal is delivered.
//!
//! Shim mode, `probe ign=HEX mask=HEX -- CMD ARG...`: set exactly these ignored signals (every
//! other one to SIG_DFL, 32 and 33 included) and this blocked mask, then exec CMD. Tests put it
//! between unshare (which resets SIGCHLD) and sigward to control what sigward inherits.

#![no_main] // like sigward: Rust's runtime would ignore SIGPIPE and spoil the `ignored=` report

use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

fn now_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn status_hex(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

fn zombies() -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|s| {
            s.rfind(')')
                .and_then(|i| s[i + 1..].split_whitespace().next())
                == Some("Z")
        })
        .count()
}

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // Before anything opens a file: the fds this process was started with.
    let fds: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    let mut fds: Vec<i32> = fds.iter().filter_map(|f| f.parse().ok()).collect();
    fds.sort();
    fds.pop(); // the read_dir's own fd, always the highest here
    let fds: Vec<String> = fds.iter().map(|f| f.to_string()).collect();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(dash) = args.iter().position(|a| a == "--") {
        shim(&args[..dash], &args[dash + 1..]);
    }
    let mut log_path = String::from("/dev/stderr");
    let (mut on_term, mut exit_now, mut orphans, mut ignore_all, mut daemon) =
        (String::from("exit:143"), None, 0u32, false, false);
    let mut reap = 0u32;
    let mut notify = false;
    let (mut comm, mut notify_on, mut say, mut flood) = (None, None, Vec::new(), false);
    let (mut jobs, mut on_int) = (false, None);
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("log", v)) => log_path = v.into(),
            Some(("comm", v)) => comm = Some(unhex(v)),
            Some(("notify-on", v)) => notify_on = v.parse::<i32>().ok(),
            Some(("say", v)) => say.push(v.to_string()),
            Some(("on-term", v)) => on_term = v.into(),
            Some(("on-int", v)) => {
                on_int = v.strip_prefix("exit:").and_then(|c| c.parse::<i32>().ok());
                assert!(on_int.is_some(), "probe: on-int=exit:N");
            }
            Some(("exit", v)) => exit_now = v.parse::<i32>().ok(),
            Some(("orphans", v)) => orphans = v.parse().unwrap_or(0),
            Some(("reap", v)) => reap = v.parse().unwrap_or(0),
            None if arg == "ignore-all" => ignore_all = true,
            None if arg == "sid" => daemon = true,
            None if arg == "notify" => notify = true,
            None if arg == "flood" => flood = true,
            None if arg == "jobs" => jobs = true,
            _ => panic!("probe: unknown word {arg}"),
        }
    }
    if daemon {
        // SAFETY: plain syscall.
        unsafe { libc::setsid() };
    }
    if let Some(bytes) = comm {
        let mut name = [0u8; 16]; // the kernel keeps 15 bytes and a NUL
        for (to, from) in name.iter_mut().zip(bytes.iter().take(15)) {
            *to = *from;
        }
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes from `name`.
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    }
    let mut log = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log_path)
        .expect("open log");
    let mut record = |line: String| {
        log.write_all(format!("{line}\n").as_bytes())
            .expect("write log");
    };
    // SAFETY: plain getters.
    let (pid, ppid, pgid, sid) = unsafe {
        (
            libc::getpid(),
            libc::getppid(),
            libc::getpgrp(),
            libc::getsid(0),
        )
    };
    record(format!(
        "start pid={pid} ppid={ppid} pgid={pgid} sid={sid} mask={} ignored={} fds={} t={}",
        status_hex("SigBlk:"),
        status_hex("SigIgn:"),
        fds.join(","),
        now_ns()
    ));
    let catchable = (1..=64).filter(|s| ![libc::SIGKILL, libc::SIGSTOP, 32, 33].contains(s));
    // SAFETY: sigset operations on local sets; SIG_IGN and SIG_DFL install no handler.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe { libc::sigemptyset(&mut set) };
    let job_stop = |s: i32| [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU].contains(&s);
    for s in catchable {
        if jobs {
            unsafe { libc::signal(s, libc::SIG_DFL) };
            if job_stop(s) {
                continue;
            }
        }
        if ignore_all || (s == libc::SIGTERM && on_term == "ignore") {
            unsafe { libc::signal(s, libc::SIG_IGN) };
        } else {
            unsafe { libc::sigaddset(&mut set, s) };
        }
    }
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if jobs {
        let mut stops: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe { libc::sigemptyset(&mut stops) };
        for s in [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
            unsafe { libc::sigaddset(&mut stops, s) };
        }
        unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &stops, std::ptr::null_mut()) };
    }
    record(format!("blocked t={}", now_ns()));
    if orphans > 0 {
        for _ in 0..orphans {
            // SAFETY: the child only forks again and _exits; the grandchild _exits at once.
            unsafe {
                match libc::fork() {
                    0 => {
                        libc::fork();
                        libc::_exit(0);
                    }
                    pid if pid > 0 => {
                        libc::waitpid(pid, std::ptr::null_mut(), 0);
                    }
                    _ => {}
                }
            }
        }
        let start = Instant::now();
        let mut z = zombies();
        while z > 0 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(20));
            z = zombies();
        }
        record(format!("orphans made={orphans} zombies={z}"));
    }
    if reap > 0 {
        let line = reap_burst(reap);
        record(line);
    }
    if let Some(code) = exit_now {
        record(format!("exit {code}"));
        std::process::exit(code);
    }
    record(format!("ready t={}", now_ns()));
    // What a socket-activated app sees (sd_listen_fds(3)): the variables, and each passed fd.
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| "-".into());
    if std::env::var("LISTEN_FDS").is_ok() {
        let mut line = format!(
            "env LISTEN_FDS={} LISTEN_PID={} LISTEN_FDNAMES={} NOTIFY_SOCKET={} SIGWARD_GENERATION={}",
            var("LISTEN_FDS"),
            var("LISTEN_PID"),
            var("LISTEN_FDNAMES"),
            var("NOTIFY_SOCKET"),
            var("SIGWARD_GENERATION")
        );
        for fd in 3..3 + var("LISTEN_FDS").parse::<i32>().unwrap_or(0) {
            let (mut family, mut accepting) = (-1, -1);
            // SAFETY: getsockname/getsockopt on our own fd into valid, sized buffers.
            unsafe {
                let mut addr: libc::sockaddr_storage = std::mem::zeroed();
                let mut len = std::mem::size_of_val(&addr) as libc::socklen_t;
                if libc::getsockname(
                    fd,
                    (&mut addr as *mut libc::sockaddr_storage).cast(),
                    &mut len,
                ) == 0
                {
                    family = addr.ss_family as i32;
                }
                let mut optlen = 4;
                libc::getsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_ACCEPTCONN,
                    (&mut accepting as *mut i32).cast(),
                    &mut optlen,
                );
            }
            line.push_str(&format!(" fd{fd}=family:{family},listening:{accepting}"));
        }
        record(line);
    }
    if notify {
        let sent_at = now_ns(); // before the send: whatever READY=1 causes comes after this
        let sent = notify_send(ready_message());
        record(format!("notified ok={} t={sent_at}", sent.is_ok()));
    }
    if !say.is_empty() {
        let sent_at = now_ns();
        let ok = say.iter().all(|m| notify_send(m.as_bytes()).is_ok());
        record(format!("said n={} ok={ok} t={sent_at}", say.len()));
    }
    if flood {
        record(format!("flooding t={}", now_ns()));
        std::thread::spawn(|| {
            let Some((sock, addr)) = notify_target() else {
                return;
            };
            while sock.send_to_addr(b"STATUS=flood", &addr).is_ok() {}
        });
    }
    loop {
        // SAFETY: info is a valid siginfo_t buffer.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let sig = unsafe { libc::sigwaitinfo(&set, &mut info) };
        if sig < 0 {
            continue;
        }
        let t = now_ns();
        record(format!("sig {sig} from={} t={t}", unsafe { info.si_pid() }));
        if notify_on == Some(sig) {
            let sent_at = now_ns();
            let sent = notify_send(ready_message());
            record(format!("notified ok={} t={sent_at}", sent.is_ok()));
        }
        if let (libc::SIGINT, Some(code)) = (sig, on_int) {
            record(format!("exit {code}"));
            std::process::exit(code);
        }
        if sig != libc::SIGTERM {
            continue;
        }
        let mut parts = on_term.split(':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("exit"), Some(code), None) => {
                let code = code.parse().unwrap_or(143);
                record(format!("exit {code}"));
                std::process::exit(code);
            }
            (Some("drain"), Some(ms), Some(code)) => {
                std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(1000)));
                record(format!("drained t={}", now_ns()));
                let code = code.parse().unwrap_or(0);
                record(format!("exit {code}"));
                std::process::exit(code);
            }
            _ => {}
        }
    }
}

/// READY=1 as sd_notify(3) sends it; on sigward's own (abstract) sockets with a STATUS= beside it.
fn ready_message() -> &'static [u8] {
    match std::env::var("NOTIFY_SOCKET") {
        Ok(a) if a.starts_with('@') => b"READY=1\nSTATUS=probe up",
        _ => b"READY=1",
    }
}

/// An unbound datagram socket and NOTIFY_SOCKET's address (`@name`: the abstract namespace).
fn notify_target() -> Option<(
    std::os::unix::net::UnixDatagram,
    std::os::unix::net::SocketAddr,
)> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::SocketAddr;
    let addr = std::env::var("NOTIFY_SOCKET").ok()?;
    let addr = match addr.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()).ok()?,
        None => SocketAddr::from_pathname(&addr).ok()?,
    };
    Some((std::os::unix::net::UnixDatagram::unbound().ok()?, addr))
}

/// Sends one datagram to NOTIFY_SOCKET.
fn notify_send(msg: &[u8]) -> std::io::Result<usize> {
    let (sock, addr) =
        notify_target().ok_or_else(|| std::io::Error::other("no usable NOTIFY_SOCKET"))?;
    sock.send_to_addr(msg, &addr)
}

/// `d09f` -> [0xd0, 0x9f]; a malformed pair is a test bug.
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("comm=HEX"))
        .collect()
}

/// Sets exact dispositions and mask through raw syscalls (glibc refuses 32 and 33), then execs.
fn shim(settings: &[String], command: &[String]) -> ! {
    let hex = |key: &str| {
        settings
            .iter()
            .find_map(|s| s.strip_prefix(key))
            .map_or(0, |v| u64::from_str_radix(v, 16).expect("hex"))
    };
    let (ignored, mask) = (hex("ign="), hex("mask="));
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    for sig in (1..=64).filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP) {
        let act = KernelSigaction {
            handler: ((ignored >> (sig - 1)) & 1) as usize,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: handler is SIG_DFL (0) or SIG_IGN (1); the struct matches the kernel's layout.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const KernelSigaction,
                std::ptr::null::<u8>(),
                8usize,
            )
        };
    }
    // SAFETY: 8 bytes is the kernel's sigset size.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null::<u64>(),
            8usize,
        )
    };
    // execvp, not std's Command: Command would reset SIGPIPE to SIG_DFL on the way.
    let args: Vec<std::ffi::CString> = command
        .iter()
        .map(|a| std::ffi::CString::new(a.as_str()).expect("arg"))
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: argv is a null-terminated array of valid C strings that outlive the call.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    panic!(
        "probe shim: exec {}: {}",
        command[0],
        std::io::Error::last_os_error()
    );
}

/// Makes `n` orphans (double fork) that block on a pipe, releases them at once by closing it,
/// and waits until the namespace holds nothing but PID 1 and this probe: every orphan has exited
/// and been reaped by PID 1.
fn reap_burst(n: u32) -> String {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid 2-int array.
    unsafe { libc::pipe(fds.as_mut_ptr()) };
    let (r, w) = (fds[0], fds[1]);
    let first_fork = now_ns();
    for _ in 0..n {
        // SAFETY: the children only close, read, fork and _exit.
        unsafe {
            match libc::fork() {
                0 => {
                    if libc::fork() == 0 {
                        libc::close(w);
                        let mut b = 0u8;
                        libc::read(r, (&mut b as *mut u8).cast(), 1);
                        libc::_exit(0);
                    }
                    libc::_exit(0);
                }
                pid if pid > 0 => {
                    libc::waitpid(pid, std::ptr::null_mut(), 0);
                }
                _ => panic!(
                    "fork failed after {} ms",
                    (now_ns() - first_fork) / 1_000_000
                ),
            }
        }
    }
    let release = now_ns();
    // SAFETY: closing our own pipe ends.
    unsafe { libc::close(w) };
    let me = std::process::id().to_string();
    loop {
        let others = std::fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name().to_str().is_some_and(|n| {
                            n.bytes().all(|b| b.is_ascii_digit()) && n != "1" && n != me
                        })
                    })
                    .count()
            })
            .unwrap_or(0);
        if others == 0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    unsafe { libc::close(r) };
    format!(
        "reaped n={n} first_fork={first_fork} release={release} done={}",
        now_ns()
    )
}
