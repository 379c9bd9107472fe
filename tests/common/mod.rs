//! Shared harness: run the built sigward as PID 1 of a fresh PID namespace with real children.
//!
//! `Ns::start` runs `unshare --pid --fork --mount-proc --kill-child sigward ...`. Dropping an `Ns`
//! SIGKILLs its PID 1, and the kernel then kills everything in that namespace, so no test leaves a
//! process behind, whatever it asserted. Each `Ns` has a scratch directory for the probe's records.
//! In argv, `{probe}` stands for the probe's path, `{log}` for its record file, `{dir}` for the
//! scratch directory (with a trailing slash), `{sigward}` for the binary under test.
//!
//! The binary under test is the one cargo built, or `SIGWARD_BIN=/path` (the static musl build
//! from `scripts/build-static`, a foreign-architecture binary): see [`sigward_bin`].
#![allow(dead_code)] // each test file uses a different part

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The sigward binary under test: `SIGWARD_BIN` when set (made absolute, so scripts that `cd` still
/// find it), otherwise the one cargo built next to these tests.
pub fn sigward_bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(
        || match std::env::var_os("SIGWARD_BIN").filter(|v| !v.is_empty()) {
            Some(path) => std::fs::canonicalize(&path)
                .unwrap_or_else(|e| panic!("SIGWARD_BIN={}: {e}", Path::new(&path).display()))
                .to_string_lossy()
                .into_owned(),
            None => env!("CARGO_BIN_EXE_sigward").to_string(),
        },
    )
}

/// `cmd` without the test's own SIGWARD_*, TINI_* and DUMB_INIT_* variables (SIGWARD_BIN aside),
/// so that only what a test sets configures the sigward it runs.
pub fn without_config_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if ["SIGWARD_", "TINI_", "DUMB_INIT_"]
            .iter()
            .any(|p| k.starts_with(p))
            && k != "SIGWARD_BIN"
        {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// The architecture QEMU emulates for the sigward under test (`aarch64`, `s390x`, ...), or None
/// when it runs natively: the same machine as these tests, or 32-bit x86 on an x86_64 kernel
/// (32-bit arm on arm64), which the kernel runs itself. Read from the two ELF headers.
pub fn emulated() -> Option<&'static str> {
    static ARCH: OnceLock<Option<&'static str>> = OnceLock::new();
    *ARCH.get_or_init(|| {
        let machine = |path: &Path| -> Option<(u16, bool, bool)> {
            let mut head = [0u8; 20];
            std::fs::File::open(path).ok()?.read_exact(&mut head).ok()?;
            if head[..4] != *b"\x7fELF" {
                return None;
            }
            let (wide, big) = (head[4] == 2, head[5] == 2);
            let m = [head[18], head[19]];
            Some((
                if big {
                    u16::from_be_bytes(m)
                } else {
                    u16::from_le_bytes(m)
                },
                wide,
                big,
            ))
        };
        let host = machine(&std::env::current_exe().ok()?)?.0;
        let (bin, wide, big) = machine(Path::new(sigward_bin()))?;
        const I386: u16 = 3;
        const ARM: u16 = 40;
        const X86_64: u16 = 62;
        const AARCH64: u16 = 183;
        if bin == host || (host, bin) == (X86_64, I386) || (host, bin) == (AARCH64, ARM) {
            return None;
        }
        Some(match (bin, wide, big) {
            (I386, ..) => "i386",
            (X86_64, ..) => "x86_64",
            (ARM, ..) => "arm",
            (AARCH64, ..) => "aarch64",
            (21, _, false) => "ppc64le",
            (21, _, true) => "ppc64",
            (22, ..) => "s390x",
            (243, true, _) => "riscv64",
            (243, false, _) => "riscv32",
            (8, ..) => "mips",
            (258, ..) => "loongarch64",
            _ => "unknown-machine",
        })
    })
}

/// Under QEMU, says which part of the running test it skips and why, and returns true; natively
/// returns false. Only for what QEMU itself does differently (name it in `reason`), never for a
/// difference in sigward. The line goes straight to stderr (the harness captures only the print
/// macros), so `scripts/test-arch` shows and counts it.
pub fn skip_under_qemu(what: &str, reason: &str) -> bool {
    let Some(arch) = emulated() else {
        return false;
    };
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let line = format!("skipped under qemu-{arch}: {test}: {what}: {reason}\n");
    // One write, so that the line is not torn by the harness's own output.
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    true
}

/// What sigward says when it cannot become a child subreaper.
const NO_SUBREAPER: &str = "cannot become a child subreaper";

/// Whether the emulator refuses PR_SET_CHILD_SUBREAPER: QEMU 7.2's linux-user answers EINVAL
/// itself, without asking the kernel (strace of qemu shows no prctl). Learned by running sigward
/// once outside a PID namespace; always false natively, where that warning is a real failure.
pub fn qemu_refuses_subreaper() -> bool {
    static REFUSED: OnceLock<bool> = OnceLock::new();
    *REFUSED.get_or_init(|| {
        emulated().is_some()
            && Command::new(sigward_bin())
                .args(["--", "true"])
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stderr).contains(NO_SUBREAPER))
    })
}

/// Skips a case that needs sigward to be a subreaper when QEMU refuses it one (see
/// [`qemu_refuses_subreaper`]).
pub fn skip_without_subreaper() -> bool {
    qemu_refuses_subreaper()
        && skip_under_qemu(
            "the whole test",
            "QEMU refuses PR_SET_CHILD_SUBREAPER (EINVAL), so orphans go to PID 1, not sigward",
        )
}

/// `text` without sigward's no-subreaper warning, when QEMU refused it (see
/// [`qemu_refuses_subreaper`]): for tests of what else sigward says when not PID 1.
pub fn without_qemu_subreaper_warning(text: &str) -> String {
    if !qemu_refuses_subreaper() || !text.contains(NO_SUBREAPER) {
        return text.to_string();
    }
    skip_under_qemu(
        "sigward's no-subreaper warning",
        "QEMU refuses PR_SET_CHILD_SUBREAPER (EINVAL); the rest of the output is checked",
    );
    text.split_inclusive('\n')
        .filter(|l| !l.contains(NO_SUBREAPER))
        .collect()
}

/// The probe app (an example target, so never shipped), built here on first use when it or
/// hello-server (the other example the tests run) is missing or older than its source: a filtered
/// `cargo test --test X` builds no examples, and a test must not fail on a fresh clone for want of
/// one. The build is `cargo build --examples` into the same target directory with the same
/// profile, once per test process, under a lock file so parallel test binaries do not build over
/// each other. The probe is always a host program, also when SIGWARD_BIN names a foreign sigward.
pub fn probe() -> String {
    static PROBE: OnceLock<String> = OnceLock::new();
    PROBE.get_or_init(build_examples).clone()
}

/// The probe's path in the examples directory beside this test binary's
/// (`<target>/[<triple>/]<profile>/deps/<test>`), built and current there.
fn build_examples() -> String {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let examples = profile_dir.join("examples");
    let probe = examples.join("probe");
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    // Each example and its source: current when it exists and is not older.
    let built = [
        (probe.clone(), source.join("tests/support/probe.rs")),
        (
            examples.join("hello-server"),
            source.join("examples/hello-server/main.rs"),
        ),
    ];
    let current = || {
        built
            .iter()
            .all(|(bin, src)| bin.exists() && modified(bin) >= modified(src))
    };
    if current() {
        return probe.to_string_lossy().into_owned();
    }
    // One builder at a time; whoever waited finds the examples current and builds nothing.
    let lock_path = profile_dir.join(".probe-build.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    // SAFETY: flock(2) on an fd we own; the lock goes with `lock` when it is dropped.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
    assert_eq!(locked, 0, "flock {}", lock_path.display());
    if !current() {
        cargo_build_examples(profile_dir);
    }
    drop(lock);
    assert!(
        current(),
        "cargo built no examples in {} (or older ones than their sources)",
        examples.display()
    );
    probe.to_string_lossy().into_owned()
}

/// Runs `cargo build --examples` for the profile directory `profile_dir` (`debug`, `release` or a
/// custom profile's), under `<target>/<profile>` or `<target>/<triple>/<profile>`.
fn cargo_build_examples(profile_dir: &Path) {
    let name = |p: &Path| p.file_name().and_then(|n| n.to_str()).map(String::from);
    let profile = name(profile_dir).expect("profile directory name");
    let above = profile_dir.parent().expect("target directory");
    // Cargo marks the root of a target directory with CACHEDIR.TAG; below it, a triple's.
    let (target_dir, triple) = if above.join("CACHEDIR.TAG").exists() {
        (above, None)
    } else {
        (above.parent().expect("target directory"), name(above))
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    // --locked --offline: the cargo that built this test already resolved and fetched everything
    // the examples need (they share its dev-dependencies), and CI runs with --locked.
    cmd.args(["build", "--examples", "--locked", "--offline", "--quiet"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(triple) = triple {
        cmd.args(["--target", &triple]);
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Monotonic now in nanoseconds, comparable with the probe's `t=` stamps.
pub fn now_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    assert_eq!(
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) },
        0
    );
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "sigward-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// sigward running as PID 1 of its own PID namespace.
pub struct Ns {
    unshare: Child,
    /// sigward's pid as the test (outside the namespace) sees it.
    pub pid1: i32,
    pub dir: Scratch,
    /// The probe's record file, `log=` of `probe_args`.
    pub log: String,
    status: Option<ExitStatus>,
}

pub struct Done {
    pub code: i32,
    pub stderr: String,
    pub stdout: String,
    pub elapsed: Duration,
    /// The probe's records at exit.
    pub records: String,
    /// The namespace's scratch directory, kept until the test is done with what it holds.
    pub dir: Scratch,
}

impl Done {
    /// Asserts that sigward said `text` on stderr; a failure shows all it said.
    #[track_caller]
    pub fn assert_said(&self, text: &str) {
        assert!(self.stderr.contains(text), "{}", self.stderr);
    }

    /// Asserts that sigward did not say `text` on stderr; a failure shows all it said.
    #[track_caller]
    pub fn assert_not_said(&self, text: &str) {
        self.assert_not_said_because(text, "it must not");
    }

    /// Like [`Done::assert_not_said`]; a failure says `what` went wrong.
    #[track_caller]
    pub fn assert_not_said_because(&self, text: &str, what: &str) {
        assert!(
            !self.stderr.contains(text),
            "{what}: sigward said {text:?}:\n{}",
            self.stderr
        );
    }

    /// Asserts that no notify message in `messages` (what sigward told its parent) holds the
    /// line `line`; a failure says `what`, shows the messages and all sigward said.
    #[track_caller]
    pub fn assert_not_told(&self, messages: &[String], line: &str, what: &str) {
        assert!(
            !notify_lines(messages).iter().any(|l| l == line),
            "{what}: {messages:?}\n{}",
            self.stderr
        );
    }

    /// Asserts that the probe recorded exactly the signals `sigs`, in that order; a failure says
    /// `what` and shows all sigward said.
    #[track_caller]
    pub fn assert_signals(&self, sigs: &[i32], what: &str) {
        assert_eq!(
            signals_seen(&self.records),
            sigs,
            "{what}; sigward said:\n{}",
            self.stderr
        );
    }
}

impl Ns {
    /// Runs `sigward ARGS...` as PID 1 of a new PID namespace.
    pub fn start(args: &[&str]) -> Ns {
        Ns::start_with(args, |_| {})
    }

    /// Like `start`, letting the caller adjust the unshare command (stdin, fds, pre_exec).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Ns {
        let argv: Vec<&str> = std::iter::once(sigward_bin())
            .chain(args.iter().copied())
            .collect();
        Ns::pid1(&argv, adjust)
    }

    /// Runs `sigward ARGS...` as PID 1 of a new PID namespace, started by the probe's shim with
    /// exactly the signals `ignored` ignored and `blocked` blocked (bit N-1 for signal N), as its
    /// caller (a container runtime, a shell) may leave them.
    pub fn start_with_signals(ignored: u64, blocked: u64, args: &[&str]) -> Ns {
        let (ign, mask) = (format!("ign={ignored:x}"), format!("mask={blocked:x}"));
        let shim = ["{probe}", &ign, &mask, "--", sigward_bin()];
        Ns::pid1(&[&shim, args].concat(), |_| {})
    }

    /// Runs any `argv` as PID 1 of a new PID namespace (e.g. a shell that starts sigward).
    pub fn pid1(argv: &[&str], adjust: impl FnOnce(&mut Command)) -> Ns {
        Ns::unshared(&[], argv, adjust)
    }

    /// Like `pid1`, with more unshare flags (e.g. a time namespace).
    pub fn unshared(flags: &[&str], argv: &[&str], adjust: impl FnOnce(&mut Command)) -> Ns {
        let dir = Scratch::new();
        let log = dir.path("probe.log");
        let probe = probe();
        let expand = |a: &&str| {
            a.replace("{probe}", &probe)
                .replace("{log}", &log)
                .replace("{dir}", &dir.path(""))
                .replace("{sigward}", sigward_bin())
        };
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
            .args(flags)
            .args(argv.iter().map(expand));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // A pre_exec hook makes std fork+exec instead of posix_spawn, whose glibc child leaves
        // signals 32 and 33 ignored: the namespace then starts with exactly what the test sets.
        // SAFETY: the hook does nothing.
        unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, || Ok(())) };
        adjust(&mut cmd);
        let mut unshare = cmd
            .spawn()
            .expect("spawn unshare (is util-linux installed, are we root?)");
        // A quick command may be over before we find it: pid1 is then 0 and signal() refuses.
        let start = Instant::now();
        let pid1 = loop {
            if let Some(pid) = child_of(unshare.id() as i32, Duration::ZERO) {
                break pid;
            }
            if unshare.try_wait().expect("try_wait").is_some()
                || start.elapsed() > Duration::from_secs(10)
            {
                break 0;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        Ns {
            unshare,
            pid1,
            dir,
            log,
            status: None,
        }
    }

    pub fn signal(&self, sig: i32) {
        assert!(
            self.pid1 > 0,
            "sigward's pid is unknown (it exited before it was found)"
        );
        // SAFETY: kill(2) with plain integers.
        assert_eq!(
            unsafe { libc::kill(self.pid1, sig) },
            0,
            "kill {} {sig}",
            self.pid1
        );
    }

    /// The probe's records so far.
    pub fn records(&self) -> String {
        read(&self.log)
    }

    /// Waits until the probe has recorded a line starting with `prefix`; returns that line.
    pub fn wait_record(&self, prefix: &str, timeout: Duration) -> String {
        wait_line(&self.log, prefix, timeout)
    }

    /// Count of probe records starting with `prefix`.
    pub fn count_records(&self, prefix: &str) -> usize {
        count_lines(&self.log, prefix)
    }

    /// The record file of generation `n` of a [`GEN`]-style script: `gen<N>` in the scratch dir.
    pub fn gen_log(&self, n: u32) -> String {
        self.dir.path(&format!("gen{n}"))
    }

    /// A restart with held sockets, up to generation 2 running: waits until generation 1 has
    /// notified readiness, sends SIGHUP, and waits until generation 2's probe is ready (its
    /// `ready` record, not its notification).
    pub fn restart_to_generation_2(&self, timeout: Duration) {
        wait_line(&self.gen_log(1), "notified ok=true", timeout);
        self.signal(libc::SIGHUP);
        wait_line(&self.gen_log(2), "ready", timeout);
    }

    pub fn alive(&mut self) -> bool {
        self.unshare.try_wait().expect("try_wait").is_none()
    }

    /// Sends sigward SIGTERM, the orchestrator's stop, and waits for it to exit (see `wait`).
    pub fn stop(self, timeout: Duration) -> Done {
        self.signal(libc::SIGTERM);
        self.wait(timeout)
    }

    /// Waits for sigward (and so the namespace) to exit; fails the test after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Done {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.unshare.try_wait().expect("try_wait") {
                break s;
            }
            if start.elapsed() > timeout {
                let mut err = String::new();
                self.kill();
                let _ = self
                    .unshare
                    .stderr
                    .take()
                    .map(|mut e| e.read_to_string(&mut err));
                panic!(
                    "sigward still running after {timeout:?}; stderr:\n{err}\nrecords:\n{}",
                    self.records()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(status);
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let _ = self
            .unshare
            .stdout
            .take()
            .map(|mut o| o.read_to_string(&mut stdout));
        let _ = self
            .unshare
            .stderr
            .take()
            .map(|mut e| e.read_to_string(&mut stderr));
        // unshare --fork exits with its child's status; a signal death shows as 128+N.
        let code = status.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
        });
        Done {
            code,
            stderr,
            stdout,
            elapsed: start.elapsed(),
            records: self.records(),
            // Handed on, not removed: the records of other processes (`gen<N>`) stay readable.
            dir: std::mem::replace(&mut self.dir, Scratch(PathBuf::new())),
        }
    }

    fn kill(&mut self) {
        // SAFETY: kill(2) with plain integers. PID 1's death takes the namespace with it.
        unsafe { libc::kill(self.pid1, libc::SIGKILL) };
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

/// Runs sigward in a fresh namespace to completion (for commands that end by themselves).
pub fn run(args: &[&str]) -> Done {
    Ns::start(args).wait(Duration::from_secs(30))
}

/// `(state, ppid, pgid, tpgid)` of a process, from /proc/PID/stat; `tpgid` is the foreground
/// group of its controlling terminal.
pub fn stat(pid: i32) -> Option<(char, i32, i32, i32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
    let n = |i: usize| f.get(i)?.parse().ok();
    Some((f.first()?.chars().next()?, n(1)?, n(2)?, n(5)?))
}

/// The children of `parent`, found by walking /proc (none when /proc cannot be read).
pub fn children_of(parent: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.1 == parent))
        .collect()
}

/// The first child of `parent`, found by walking /proc.
pub fn child_of(parent: i32, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        let found = children_of(parent).first().copied();
        if found.is_some() || start.elapsed() >= timeout {
            return found;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Each generation a probe that records to `gen<N>` of the scratch dir (see [`Ns::gen_log`]);
/// append probe words.
pub const GEN: &str = "exec {probe} log={dir}gen$SIGWARD_GENERATION";

/// Runs `sigward OPTIONS... -- sh -c SCRIPT` as PID 1 of a new PID namespace.
pub fn sh_under(options: &[&str], script: &str) -> Ns {
    sh_under_with(options, script, |_| {})
}

/// Like [`sh_under`], letting the caller adjust the unshare command (see [`Ns::start_with`]).
pub fn sh_under_with(options: &[&str], script: &str, adjust: impl FnOnce(&mut Command)) -> Ns {
    let mut args = options.to_vec();
    args.extend(["--", "sh", "-c", script]);
    Ns::start_with(&args, adjust)
}

/// Runs `sigward OPTIONS... -- probe log={log} WORDS...` as PID 1 of a new PID namespace.
pub fn probe_under(options: &[&str], words: &[&str]) -> Ns {
    probe_under_with(options, words, |_| {})
}

/// Like [`probe_under`], letting the caller adjust the unshare command (see [`Ns::start_with`]).
pub fn probe_under_with(options: &[&str], words: &[&str], adjust: impl FnOnce(&mut Command)) -> Ns {
    let probe = ["--", "{probe}", "log={log}"];
    Ns::start_with(&[options, &probe, words].concat(), adjust)
}

/// Starts the namespace as systemd or podman would a socket-activated service: `fd` at fd 3,
/// LISTEN_PID naming sigward (PID 1 of the namespace), the socket named `name`.
pub fn socket_activated(cmd: &mut Command, fd: std::os::fd::RawFd, name: &str) {
    cmd.env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .env("LISTEN_FDNAMES", name);
    pass_as_fd3(cmd, fd);
}

/// The text of the file at `path`; empty when there is none (yet).
pub fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Count of lines starting with `prefix` in the file at `path` (none when there is no file).
pub fn count_lines(path: &str, prefix: &str) -> usize {
    read(path).lines().filter(|l| l.starts_with(prefix)).count()
}

/// The `t=` stamp of a record line.
pub fn t_of(line: &str) -> u128 {
    field(line, "t").parse().expect("t=")
}

/// The start of the probe's record of signal `sig`: `sig N `.
pub fn sig_record(sig: i32) -> String {
    format!("sig {sig} ")
}

/// The bit of signal `sig` in a signal mask (as the probe's `mask=` and `ignored=` show it).
pub fn bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Value of `key=` in a record line.
pub fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in '{line}'"))
}

/// Signal numbers the probe recorded, in order.
pub fn signals_seen(records: &str) -> Vec<i32> {
    records
        .lines()
        .filter_map(|l| {
            l.strip_prefix("sig ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Time of the first record of signal `sig`.
pub fn signal_time(records: &str, sig: i32) -> Option<u128> {
    records
        .lines()
        .find(|l| l.starts_with(&sig_record(sig)))
        .map(t_of)
}

/// Waits until the file at `path` has a line starting with `prefix`; returns that line.
pub fn wait_line(path: &str, prefix: &str, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.starts_with(prefix)) {
            return l.to_string();
        }
        assert!(
            start.elapsed() < timeout,
            "no '{prefix}' line in {path} after {timeout:?}:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Asserts that the probe's `env` record shows its fd `fd` as a listening socket of address
/// family `family` (1 unix, 2 inet); a failure names the socket as `what`.
#[track_caller]
pub fn assert_listening(env: &str, fd: i32, family: i32, what: &str) {
    assert_eq!(
        field(env, &format!("fd{fd}")),
        format!("family:{family},listening:1"),
        "{what}"
    );
}

/// The open fds of `pid` with what they point at, sorted by number.
pub fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| {
                let e = e.ok()?;
                let n = e.file_name().to_str()?.parse().ok()?;
                Some((
                    n,
                    std::fs::read_link(e.path())
                        .map(|l| l.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                ))
            })
            .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

/// `read()` until `ok` holds (at most `timeout`), returning the last value: for state that
/// sigward reaches just after its child has started (it closes inherited fds and moves to `/`
/// once exec has succeeded), so a test that looks at once does not race sigward's start-up.
pub fn eventually<T>(timeout: Duration, mut read: impl FnMut() -> T, ok: impl Fn(&T) -> bool) -> T {
    let start = Instant::now();
    loop {
        let value = read();
        if ok(&value) || start.elapsed() >= timeout {
            return value;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts the namespace with only stdio open: whatever the test runner had open stays out.
pub fn only_stdio(cmd: &mut Command) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        })
    };
}

/// Starts the namespace with `fd` as fd 3 (not close-on-exec) and nothing else beyond stdio.
pub fn pass_as_fd3(cmd: &mut Command, fd: std::os::fd::RawFd) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || {
            if fd != 3 {
                libc::dup2(fd, 3);
            }
            libc::fcntl(3, libc::F_SETFD, 0); // dup2(3, 3) would leave O_CLOEXEC set
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
            Ok(())
        })
    };
}

/// A notify-aware parent, in systemd's place: a unix datagram socket to give sigward as its
/// NOTIFY_SOCKET, collecting what sigward tells upward.
pub struct NotifyParent {
    /// The socket's path, the NOTIFY_SOCKET value.
    pub path: String,
    sock: std::os::unix::net::UnixDatagram,
    _dir: Scratch,
}

impl NotifyParent {
    pub fn new() -> NotifyParent {
        let dir = Scratch::new();
        let path = dir.path("parent.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind the parent's socket");
        NotifyParent {
            path,
            sock,
            _dir: dir,
        }
    }

    /// Gives the namespace (and so sigward) this socket as NOTIFY_SOCKET.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("NOTIFY_SOCKET", &self.path);
    }

    /// Runs `sigward ARGS...` as PID 1 of a new PID namespace, with this socket as its
    /// NOTIFY_SOCKET.
    pub fn start(&self, args: &[&str]) -> Ns {
        Ns::start_with(args, |cmd| self.env(cmd))
    }

    /// The next message, or None when none came within `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.sock
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .expect("set_read_timeout");
        let mut buf = [0u8; 4096];
        let n = self.sock.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Reads messages until one holds the line `line` (other messages may come first: a STATUS=
    /// relayed beside it); returns every message read, that one last. Fails the test after
    /// `timeout`.
    pub fn expect(&self, line: &str, timeout: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut seen = Vec::new();
        loop {
            let Some(m) = self.next(timeout.saturating_sub(start.elapsed())) else {
                panic!("no {line} from sigward within {timeout:?}; it said {seen:?}");
            };
            let hit = m.lines().any(|l| l == line);
            seen.push(m);
            if hit {
                return seen;
            }
        }
    }

    /// Every message already queued, without waiting.
    pub fn pending(&self) -> Vec<String> {
        self.sock.set_nonblocking(true).expect("set_nonblocking");
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.sock.recv(&mut buf) {
            out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        self.sock.set_nonblocking(false).expect("set_nonblocking");
        out
    }
}

/// The assignments (`KEY=VALUE`, one per line) in notify messages, in order.
pub fn notify_lines(messages: &[String]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| m.lines().map(String::from).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The host signal number that reaches the sigward under test as real-time signal `sig` (34..=64).
/// Natively `sig` itself. QEMU's linux-user maps guest real-time signals onto the host's from the
/// host SIGRTMIN up (7.2: host 34 arrives as 32, so guest 37 is host 39), keeping the lowest
/// ones for itself in other versions: the shift is learned once, by sending host signal 40 to a
/// sigward at debug level and reading which one it says it forwarded.
pub fn host_rt_signal(sig: i32) -> i32 {
    static SHIFT: OnceLock<i32> = OnceLock::new();
    let shift = *SHIFT.get_or_init(|| {
        if emulated().is_none() {
            return 0;
        }
        const SENT: i32 = 40;
        let ns = Ns::start(&["--log-level", "debug", "--", "{probe}", "log={log}"]);
        ns.wait_record("ready", Duration::from_secs(30));
        ns.signal(SENT);
        ns.wait_record(&format!("sig {SENT} "), Duration::from_secs(30));
        ns.signal(libc::SIGTERM);
        let done = ns.wait(Duration::from_secs(30));
        let name = done
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("sigward: forwarded SIG")?.split(' ').next())
            .unwrap_or_else(|| panic!("no forwarded signal:\n{}", done.stderr))
            .to_string();
        let guest = match name.strip_prefix("RTMIN") {
            Some("") => Ok(34),
            Some(k) => k.trim_start_matches('+').parse::<i32>().map(|k| 34 + k),
            None => name.parse::<i32>(),
        }
        .unwrap_or_else(|_| panic!("host signal {SENT} arrived as SIG{name}"));
        SENT - guest
    });
    sig + shift
}

/// How long a test waits on a pseudo-terminal (a screen to show a text, a shell to end).
const PTY_WAIT: Duration = Duration::from_secs(20);

/// `script -qfec CMDLINE /dev/null`: CMDLINE in a shell whose controlling terminal is a new
/// pseudo-terminal, in its foreground; we type on `script`'s stdin.
pub fn in_script(cmdline: &str, stdout: Stdio, stderr: Stdio) -> Child {
    Command::new("script")
        .args(["-qfec", cmdline, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("script (util-linux)")
}

/// SIGKILLs `root`, a child of the test, and everything below it when dropped, so a failed
/// assertion leaves nothing behind (stopped processes included: SIGKILL ends them too). Disarmed
/// once the test has reaped the root, whose pid may then be reused.
pub struct KillTree(pub i32);

impl KillTree {
    pub fn disarm(&mut self) {
        self.0 = 0;
    }
}

impl Drop for KillTree {
    fn drop(&mut self) {
        if self.0 <= 0 {
            return;
        }
        let mut tree = vec![self.0];
        let mut i = 0;
        while let Some(&parent) = tree.get(i) {
            for pid in children_of(parent) {
                if !tree.contains(&pid) {
                    tree.push(pid);
                }
            }
            i += 1;
        }
        for pid in tree {
            // SAFETY: kill(2) with plain integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A command line on a pseudo-terminal (under `script`): the test types on its keyboard and reads
/// its screen.
pub struct Terminal {
    script: Child,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    tree: KillTree,
}

impl Terminal {
    /// A job-control shell (`bash` with `set -m`) running `body`, written to `job.sh` in `dir`.
    pub fn start(dir: &Scratch, body: &str) -> Terminal {
        let path = dir.path("job.sh");
        std::fs::write(&path, format!("set -m\n{body}")).unwrap();
        Terminal::run(&format!("bash {path}"))
    }

    /// `cmdline` run by `script` itself, as [`in_script`] does.
    pub fn run(cmdline: &str) -> Terminal {
        let mut script = in_script(cmdline, Stdio::piped(), Stdio::null());
        let tree = KillTree(script.id() as i32);
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (mut out, copy) = (script.stdout.take().unwrap(), screen.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = std::io::Read::read(&mut out, &mut buf) {
                copy.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Terminal {
            script,
            screen,
            reader: Some(reader),
            tree,
        }
    }

    /// All the terminal has shown so far.
    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Types `keys` (Ctrl-C is 0x03, Ctrl-Z 0x1a).
    pub fn type_keys(&mut self, keys: &[u8]) {
        let stdin = self.script.stdin.as_mut().unwrap();
        std::io::Write::write_all(stdin, keys).unwrap();
        std::io::Write::flush(stdin).unwrap();
    }

    /// Waits until the screen shows `text`; returns the screen.
    pub fn wait_for(&self, text: &str) -> String {
        let screen = eventually(PTY_WAIT, || self.screen(), |s| s.contains(text));
        assert!(
            screen.contains(text),
            "no '{text}' on the screen:\n{screen}"
        );
        screen
    }

    /// Waits for what runs on the terminal (and so `script`) to end; returns all it showed.
    pub fn wait_exit(mut self) -> String {
        let start = Instant::now();
        while self.script.try_wait().unwrap().is_none() {
            assert!(
                start.elapsed() < PTY_WAIT,
                "what ran on the terminal never ended:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        self.tree.disarm();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.screen()
    }
}
