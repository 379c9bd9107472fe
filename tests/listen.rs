//! Which sockets each generation is handed: those a socket-activating parent gave sigward come
//! first (names kept), then those bound for --listen; --listen takes host names from /etc/hosts.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

#[test]
fn socket_activated_sigward_with_listen_hands_on_inherited_sockets_first_then_its_own() {
    let dir = Scratch::new();
    let inherited = std::os::unix::net::UnixListener::bind(dir.path("web.sock")).unwrap();
    let fd = std::os::fd::IntoRawFd::into_raw_fd(inherited);
    let ns = sh_under_with(
        &["--listen", "api=tcp://127.0.0.1:0"],
        &format!("{GEN} notify"),
        move |cmd| socket_activated(cmd, fd, "web"),
    );
    for generation in [1, 2] {
        let log = ns.gen_log(generation);
        let start = wait_line(&log, "start", T);
        let env = wait_line(&log, "env", T);
        assert_eq!(field(&start, "fds"), "0,1,2,3,4", "generation {generation}");
        assert_eq!(field(&env, "LISTEN_FDS"), "2");
        assert_eq!(field(&env, "LISTEN_FDNAMES"), "web:api");
        assert_eq!(field(&env, "LISTEN_PID"), field(&start, "pid"));
        assert_listening(&env, 3, 1, "the inherited unix socket");
        assert_listening(&env, 4, 2, "the --listen TCP socket");
        if generation == 1 {
            wait_line(&log, "notified ok=true", T);
            ns.signal(libc::SIGHUP);
        }
    }
    let done = ns.stop(T);
    assert_eq!(done.code, 143, "{}", done.stderr);
}

#[test]
fn listen_on_localhost_binds_the_loopback_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("tcp://localhost:{port}");
    let ns = probe_under(&["--listen", &listen], &[]);
    let env = ns.wait_record("env", T);
    assert_listening(&env, 3, 2, "the --listen TCP socket on localhost");
    // The held socket queues the connection although the probe never accepts.
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to 127.0.0.1");
    assert_eq!(ns.stop(T).code, 143);
}
