//! hello-server: a small HTTP server that speaks systemd's socket activation and readiness
//! protocols, the way any app that wants zero-downtime restarts under sigward would:
//! - takes its listening socket from LISTEN_FDS (fd 3, when LISTEN_PID is its own pid), or binds
//!   127.0.0.1:$PORT (default 8080) when started on its own;
//! - sends READY=1 to NOTIFY_SOCKET once it accepts connections;
//! - answers every request with `generation=G pid=P` (G from SIGWARD_GENERATION);
//! - on SIGTERM stops accepting (the socket stays open: the next generation, or sigward, holds it),
//!   finishes the requests in flight, and exits 0.
//!
//!   sigward --listen tcp://127.0.0.1:8080 -- target/debug/examples/hello-server
//!   curl http://127.0.0.1:8080/ ; kill -HUP <sigward> ; curl http://127.0.0.1:8080/

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() {
    // SIGTERM is read by a thread instead of killing us: block it before any thread exists.
    // SAFETY: plain sigset manipulation on a local set.
    let mut term: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut term);
        libc::sigaddset(&mut term, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &term, std::ptr::null_mut());
    }
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let stopping = stopping.clone();
        std::thread::spawn(move || {
            let mut sig = 0;
            // SAFETY: waits for the blocked SIGTERM; `sig` is a valid int.
            unsafe { libc::sigwait(&term, &mut sig) };
            stopping.store(true, Ordering::SeqCst);
        });
    }

    let listener = listener();
    // Shared with sigward and the other generation: poll, then accept without blocking, so a
    // connection taken by the other process never leaves us stuck in accept().
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let generation = std::env::var("SIGWARD_GENERATION").unwrap_or_else(|_| "0".into());
    let body: Arc<str> = format!("generation={generation} pid={}\n", std::process::id()).into();
    notify("READY=1\nSTATUS=serving");

    let in_flight = Arc::new(AtomicUsize::new(0));
    while !stopping.load(Ordering::SeqCst) {
        let mut pfd = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        match listener.accept() {
            Ok((conn, _)) => {
                let (body, in_flight) = (body.clone(), in_flight.clone());
                in_flight.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    serve(conn, &body);
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {}
            Err(e) => eprintln!("hello-server: accept: {e}"),
        }
    }
    notify("STOPPING=1");
    let start = Instant::now();
    while in_flight.load(Ordering::SeqCst) > 0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("hello-server: generation {generation} drained, bye");
}

/// fd 3 from socket activation, or a socket of our own.
fn listener() -> TcpListener {
    let ours = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    if ours && count >= 1 {
        // SAFETY: LISTEN_PID names us, so fd 3 was passed to us to own (sd_listen_fds(3)).
        return unsafe { TcpListener::from_raw_fd(3) };
    }
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    TcpListener::bind(format!("127.0.0.1:{port}")).expect("bind")
}

fn serve(mut conn: TcpStream, body: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut req = [0u8; 4096];
    let mut got = 0;
    while got < req.len() && !req[..got].windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut req[got..]) {
            Ok(0) | Err(_) => return,
            Ok(n) => got += n,
        }
    }
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.write_all(response.as_bytes());
}

/// sd_notify(3): one datagram to NOTIFY_SOCKET (a path, or @name in the abstract namespace).
fn notify(msg: &str) {
    let Ok(addr) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let _ = match addr.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())
            .and_then(|a| sock.send_to_addr(msg.as_bytes(), &a)),
        None => sock.send_to(msg.as_bytes(), &addr),
    };
}
