//! Zero-downtime restarts: sigward holds the listening sockets and hands them to each generation
//! (sd_listen_fds(3)), learns readiness from a per-generation NOTIFY_SOCKET (sd_notify(3)) or a
//! fixed delay, and retires the old generation only once the new one is ready.
mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// sigward holding a TCP socket for generations that each run `sh -c SCRIPT`, with `options`.
fn generations(options: &[&str], script: &str) -> Ns {
    sh_under(
        &[&["--listen", "tcp://127.0.0.1:0"], options].concat(),
        script,
    )
}

#[test]
fn generation_sees_sockets_and_environment_exactly_as_specified() {
    let ns = probe_under_with(
        &[
            "--listen",
            "a=tcp://127.0.0.1:0",
            "--listen",
            "b=unix:{dir}b.sock",
        ],
        &[],
        only_stdio,
    );
    let start = ns.wait_record("start", T);
    let env = ns.wait_record("env", T);
    assert_eq!(
        field(&start, "fds"),
        "0,1,2,3,4",
        "sockets at 3 and 4, nothing else of sigward's"
    );
    assert_eq!(field(&env, "LISTEN_FDS"), "2");
    assert_eq!(
        field(&env, "LISTEN_PID"),
        field(&start, "pid"),
        "LISTEN_PID must be the generation's own pid"
    );
    assert_eq!(
        field(&env, "LISTEN_FDNAMES"),
        "a:b",
        "names in --listen order"
    );
    assert!(
        field(&env, "NOTIFY_SOCKET").starts_with('@'),
        "an abstract NOTIFY_SOCKET: {env}"
    );
    assert_eq!(field(&env, "SIGWARD_GENERATION"), "1");
    assert_listening(&env, 3, 2, "fd 3: the listening TCP socket");
    assert_listening(&env, 4, 1, "fd 4: the listening unix socket");
}

#[test]
fn notify_readiness_promotes_the_new_generation_and_then_retires_the_old() {
    let ns = generations(&[], &format!("{GEN} notify"));
    wait_line(&ns.gen_log(1), "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    let ready = wait_line(&ns.gen_log(2), "notified ok=true", T);
    let old_got_term = wait_line(&ns.gen_log(1), &sig_record(libc::SIGTERM), T);
    assert!(
        t_of(&old_got_term) >= t_of(&ready),
        "the old generation was stopped before the new one was ready"
    );
    let done = ns.stop(T);
    assert_eq!(done.code, 143, "{}", done.stderr);
    done.assert_said("generation 2 (pid");
    done.assert_said("now serving; stopping generation 1");
}

#[test]
fn after_readiness_promotes_once_the_duration_has_passed() {
    let ns = generations(&["--ready", "after:700ms"], GEN);
    wait_line(&ns.gen_log(1), "ready", T);
    ns.signal(libc::SIGHUP);
    let started = wait_line(&ns.gen_log(2), "start", T);
    let term = wait_line(&ns.gen_log(1), &sig_record(libc::SIGTERM), T);
    let waited = t_of(&term) - t_of(&started);
    assert!(
        waited >= 600_000_000,
        "old generation stopped {} ms after the new one started",
        waited / 1_000_000
    );
    assert_eq!(ns.stop(T).code, 143);
}

#[test]
fn new_generation_that_crashes_leaves_the_old_one_serving() {
    let script = format!("[ \"$SIGWARD_GENERATION\" = 2 ] && exit 3; {GEN} notify");
    let ns = generations(&[], &script);
    wait_line(&ns.gen_log(1), "notified ok=true", T);
    ns.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    ns.signal(libc::SIGUSR1); // still forwarded to the (old, current) generation
    wait_line(&ns.gen_log(1), &sig_record(libc::SIGUSR1), T);
    assert_eq!(
        signals_seen(&std::fs::read_to_string(ns.gen_log(1)).unwrap()),
        vec![libc::SIGUSR1]
    );
    let done = ns.stop(T);
    assert_eq!(
        done.code, 143,
        "the exit status is generation 1's: {}",
        done.stderr
    );
    done.assert_said("generation 2 (pid");
    done.assert_said("abandoned: it exited with status 3 before it was ready");
}

#[test]
fn generation_never_ready_is_killed_at_the_ready_timeout_and_the_old_one_keeps_serving() {
    let script = "[ \"$SIGWARD_GENERATION\" = 2 ] && exec {probe} log={dir}gen2; exec {probe} log={dir}gen1 notify";
    let ns = generations(&["--ready-timeout", "1s"], script);
    ns.restart_to_generation_2(T);
    std::thread::sleep(Duration::from_millis(1800));
    ns.signal(libc::SIGUSR1);
    wait_line(&ns.gen_log(1), &sig_record(libc::SIGUSR1), T);
    // Generation 2 was SIGKILLed: it recorded no signal and no exit of its own.
    let gen2 = std::fs::read_to_string(ns.gen_log(2)).unwrap();
    assert!(
        !gen2.contains("exit") && signals_seen(&gen2).is_empty(),
        "{gen2}"
    );
    let done = ns.stop(T);
    assert_eq!(done.code, 143);
    done.assert_said("abandoned: it was not ready after 1s; generation 1");
    done.assert_not_said_because("now serving", "generation 2 must never take over");
}

#[test]
fn restart_during_a_restart_is_ignored() {
    let script = "[ \"$SIGWARD_GENERATION\" = 1 ] && exec {probe} log={dir}gen1 notify; exec {probe} log={dir}gen$SIGWARD_GENERATION";
    let ns = generations(&["--ready-timeout", "30s"], script);
    ns.restart_to_generation_2(T);
    ns.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !std::path::Path::new(&ns.gen_log(3)).exists(),
        "a third generation was started"
    );
    let done = ns.stop(T);
    done.assert_said("restart ignored, generation 2 is still starting");
}

#[test]
fn stop_during_a_restart_stops_every_generation() {
    let script = "[ \"$SIGWARD_GENERATION\" = 1 ] && exec {probe} log={dir}gen1 notify; exec {probe} log={dir}gen$SIGWARD_GENERATION on-term=exit:7";
    let ns = generations(&["--ready-timeout", "30s"], script);
    ns.restart_to_generation_2(T);
    let (gen1, gen2) = (ns.gen_log(1), ns.gen_log(2));
    ns.signal(libc::SIGTERM);
    wait_line(&gen1, &sig_record(libc::SIGTERM), T);
    wait_line(&gen2, &sig_record(libc::SIGTERM), T);
    let done = ns.wait(T);
    assert_eq!(
        done.code, 143,
        "sigward exits with the current generation's (1) status, not 7: {}",
        done.stderr
    );
}

#[test]
fn socket_activated_sigward_hands_its_sockets_on_with_listen_pid_rewritten() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fd = std::os::fd::IntoRawFd::into_raw_fd(listener);
    let ns = Ns::start_with(&["--", "{probe}", "log={log}"], move |cmd| {
        socket_activated(cmd, fd, "web")
    });
    let start = ns.wait_record("start", T);
    let env = ns.wait_record("env", T);
    assert_eq!(field(&start, "fds"), "0,1,2,3");
    assert_eq!(
        field(&env, "LISTEN_PID"),
        field(&start, "pid"),
        "LISTEN_PID rewritten to the app's pid"
    );
    assert_eq!(field(&env, "LISTEN_FDNAMES"), "web");
    assert_listening(&env, 3, 2, "fd 3: the held TCP socket");
}

#[test]
fn hello_server_restarts_without_refusing_a_request() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = probe().replace("/probe", "/hello-server");
    let listen = format!("tcp://127.0.0.1:{port}");
    let ns = Ns::start(&["--listen", &listen, "--", &server]);
    let get = move || -> Result<String, String> {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut out = String::new();
        c.read_to_string(&mut out).map_err(|e| e.to_string())?;
        out.split("generation=")
            .nth(1)
            .map(|g| g.split_whitespace().next().unwrap_or("").to_string())
            .ok_or(out)
    };
    let start = std::time::Instant::now();
    while get().is_err() {
        assert!(start.elapsed() < T, "hello-server never answered");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut ok, mut failed, mut seen) =
                    (0, Vec::new(), std::collections::BTreeSet::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match get() {
                        Ok(g) => {
                            ok += 1;
                            seen.insert(g);
                        }
                        Err(e) => failed.push(e),
                    }
                }
                (ok, failed, seen)
            })
        })
        .collect();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        ns.signal(libc::SIGHUP);
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed, mut seen) = (0, Vec::new(), std::collections::BTreeSet::new());
    for c in clients {
        let (o, f, s) = c.join().unwrap();
        ok += o;
        failed.extend(f);
        seen.extend(s);
    }
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["1", "2", "3", "4"],
        "every generation served"
    );
    assert!(ok > 100, "only {ok} requests");
    assert_eq!(ns.stop(T).code, 0);
}

#[test]
fn readiness_reloading_and_stopping_are_passed_up_to_a_notify_aware_parent() {
    // Play systemd: a datagram socket for sigward's own NOTIFY_SOCKET.
    let parent = NotifyParent::new();
    let ns = parent.start(&[
        "--listen",
        "tcp://127.0.0.1:0",
        "--",
        "sh",
        "-c",
        &format!("{GEN} notify"),
    ]);
    // The state messages in order; what else is relayed (STATUS=, WATCHDOG=1) is left aside.
    let next = || loop {
        let m = parent.next(T).expect("a message from sigward");
        let states: Vec<&str> = m
            .lines()
            .filter(|l| ["READY=1", "RELOADING=1", "STOPPING=1"].contains(l))
            .collect();
        if !states.is_empty() {
            return states.join("\n");
        }
    };
    assert_eq!(next(), "READY=1", "generation 1 ready");
    ns.signal(libc::SIGHUP);
    assert_eq!(next(), "RELOADING=1", "restart begun");
    assert_eq!(next(), "READY=1", "generation 2 ready");
    ns.signal(libc::SIGTERM);
    assert_eq!(next(), "STOPPING=1");
    assert_eq!(ns.wait(T).code, 143);
}
