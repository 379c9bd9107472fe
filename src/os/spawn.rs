//! Starting the command: fork, detach into its own process group, restore what sigward inherited,
//! exec, and report an exec failure exactly.
//!
//! Everything the child needs (every path to try, argv, the `/bin/sh` argv for a script, the
//! environment, the mask to restore) is prepared before fork, so the child only makes
//! async-signal-safe syscalls and never allocates. A close-on-exec pipe tells the parent whether
//! exec succeeded: EOF means it did, eight bytes carry the failed step and its errno when it did
//! not. Waiting for that answer also guarantees the child's process group exists before the first
//! signal is forwarded to it.
//!
//! The command is looked up as POSIX execvp(3) does it, here rather than in the C library: musl's
//! execvp has no ENOEXEC fallback, so a shell script without `#!` would exit 126 under the static
//! build while glibc (and so tini) runs it with `/bin/sh`. Both builds now behave like glibc.
//!
//! Handed-over sockets are moved to fds 3, 4, ... in the child by dup2(). Everything else the
//! child uses (the sockets' copies, both ends of the report pipe) sits at `3 + n` or above, so no
//! dup2 can overwrite it: an overwritten report pipe would make an exec failure read as success.

use crate::os::signals::{self, SigMask};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::unistd::{ForkResult, Pid};
use std::ffi::{CStr, CString, OsString};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// PATH when sigward's environment has none: Docker's default for containers. It holds both
/// glibc's (`/bin:/usr/bin`) and musl's (`/usr/local/bin:/bin:/usr/bin`) own defaults, and the
/// sbin directories where images put daemons (nginx, sshd).
const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What runs a file the kernel cannot exec (ENOEXEC: a script without `#!`), as execvp(3) does.
const SHELL: &CStr = c"/bin/sh";

/// Longest command name exec looks up on PATH (NAME_MAX), and longest path it takes (PATH_MAX,
/// with the NUL).
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;

/// The step that failed in the child, as reported on the pipe.
const STEP_EXEC: u32 = 0;
const STEP_SOCKETS: u32 = 1;

unsafe extern "C" {
    /// The process's environment (POSIX); what the command gets when there is no handover.
    static mut environ: *const *const libc::c_char;
}

/// How the child separates from sigward.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Detach {
    /// `setsid()`: own session and process group; the usual case in a container.
    Session,
    /// `setpgid(0, 0)` and `tcsetpgrp(0)`: own process group in sigward's session, in the
    /// foreground of sigward's terminal, so the terminal's Ctrl-C reaches the app directly.
    /// (A new session cannot own the terminal that sigward's session holds.)
    TerminalForeground,
    /// `setpgid(0, 0)` alone: own process group in sigward's session, the terminal left as it is.
    /// A later generation on a terminal: it gets the foreground when it is promoted, not before
    /// (after `bg` the terminal is the shell's, and a restart must not take it).
    Group,
}

/// What the child gets back from sigward's own start: the blocked mask and SIGCHLD's disposition
/// (the only one sigward changes; every other ignored signal stays ignored across exec by itself).
pub struct Inherited {
    pub mask: SigMask,
    pub sigchld_ignored: bool,
}

/// What a generation is handed: its number, sigward's original working directory, and with
/// sockets to hand over, those as fds 3... and the environment that describes them.
pub struct Handover<'a> {
    /// None for a restart in place: the generation gets sigward's environment as it is, but for
    /// `SIGWARD_GENERATION`.
    pub sockets: Option<Sockets<'a>>,
    pub generation: u32,
    /// The directory sigward was started in: every generation starts there, although sigward
    /// itself has moved to `/`.
    pub cwd: Option<&'a std::ffi::CStr>,
}

/// The held sockets, for a generation that takes them over.
pub struct Sockets<'a> {
    pub fds: &'a [std::os::fd::OwnedFd],
    /// LISTEN_FDNAMES, `a:b`.
    pub fdnames: &'a str,
    /// NOTIFY_SOCKET for this generation.
    pub notify: &'a str,
}

/// Variables sigward sets for a generation that takes sockets over; any inherited value of them
/// is dropped. Without sockets only the last one is set (and dropped).
const HANDOVER_VARS: [&str; 5] = [
    "LISTEN_PID",
    "LISTEN_FDS",
    "LISTEN_FDNAMES",
    "NOTIFY_SOCKET",
    "SIGWARD_GENERATION",
];

/// How long sigward waits for a child to report its exec before counting it as started.
const EXEC_REPORT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

pub enum SpawnError {
    /// The command could not be executed (errno as execvp(3) reports it).
    Exec(Errno),
    /// sigward could not fork, make its pipe, or place the sockets.
    Start(&'static str, Errno),
}

/// Starts `command` and returns its pid once it has exec'd.
///
/// The command is found as POSIX execvp(3) finds it: a name with a `/` is used as it is, any
/// other is looked up in sigward's PATH (empty entries mean the current directory, an unset PATH
/// means [`DEFAULT_PATH`]); a file the kernel cannot exec (ENOEXEC) is run as `/bin/sh FILE
/// ARGS...`. EACCES is remembered and reported only when nothing else could run; ENOENT and
/// ENOTDIR go on to the next directory; any other error stops the search. When `/bin/sh` cannot
/// run either, the file's own ENOEXEC is reported.
///
/// The environment is sigward's own without a handover; with one, sigward's own less the
/// handover variables, which are set for this generation.
pub fn spawn(
    command: &[OsString],
    detach: Detach,
    inherited: &Inherited,
    handover: Option<&Handover>,
) -> Result<Pid, SpawnError> {
    let mut args = Vec::with_capacity(command.len());
    for a in command {
        // argv strings cannot contain NUL (they came from our own argv), but never panic on it.
        args.push(CString::new(a.as_bytes()).map_err(|_| SpawnError::Exec(Errno::EINVAL))?);
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let name = command.first().map(|c| c.as_bytes()).unwrap_or_default();
    let path = std::env::var_os("PATH");
    let mut paths = Vec::new();
    for candidate in
        candidates(name, path.as_ref().map(|p| p.as_bytes())).map_err(SpawnError::Exec)?
    {
        paths.push(CString::new(candidate).map_err(|_| SpawnError::Exec(Errno::EINVAL))?);
    }
    // `/bin/sh CANDIDATE ARGS...`; the child fills in CANDIDATE (slot 1) before each try.
    let mut sh_argv: Vec<*const libc::c_char> = Vec::with_capacity(argv.len() + 1);
    sh_argv.extend([SHELL.as_ptr(), std::ptr::null()]);
    sh_argv.extend(argv.get(1..).unwrap_or(&[std::ptr::null()]));

    // For a generation: its environment and its sockets (see `prepare_handover`). LISTEN_PID
    // must be the child's own pid: the child writes its digits into this buffer.
    let mut listen_pid = *b"LISTEN_PID=\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
    let listen_pid_digits = listen_pid[11..].as_mut_ptr();
    let held = handover.and_then(|h| h.sockets.as_ref());
    let sockets = held.map_or(0, |s| s.fds.len());
    let floor = i32::try_from(sockets)
        .ok()
        .and_then(|n| n.checked_add(3))
        .ok_or(SpawnError::Start("dup", Errno::EMFILE))?;
    let (env, high, moves) = match handover {
        Some(h) => prepare_handover(h, floor)?,
        None => (Vec::new(), Vec::new(), Vec::new()),
    };
    let mut built_envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    if held.is_some() {
        built_envp.push(listen_pid.as_ptr().cast());
    }
    built_envp.push(std::ptr::null());
    let envp = match handover {
        Some(_) => built_envp.as_ptr(),
        // SAFETY: reads the pointer value of `environ`; sigward is single-threaded and never
        // changes its environment, so it stays valid through fork and exec.
        None => unsafe { environ },
    };

    let (report_r, report_w) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Start("pipe", e))?;
    let lift = |end: OwnedFd| {
        if end.as_raw_fd() >= floor {
            Ok(end)
        } else {
            at_or_above(&end, floor).map_err(|e| SpawnError::Start("pipe", e))
        }
    };
    let (report_r, report_w) = (lift(report_r)?, lift(report_w)?);

    // SAFETY: sigward is single-threaded, and the child branch below only makes async-signal-safe
    // syscalls on data prepared before fork, then execs or _exits.
    match unsafe { nix::unistd::fork() } {
        Err(e) => Err(SpawnError::Start("fork", e)),
        Ok(ForkResult::Child) => {
            let fail = |step: u32, errno: Errno| -> ! {
                let [a, b, c, d] = step.to_ne_bytes();
                let [e, f, g, h] = (errno as i32).to_ne_bytes();
                let report = [a, b, c, d, e, f, g, h];
                // SAFETY: write(2) of a stack buffer to our pipe, then _exit(2): both
                // async-signal-safe, and neither returns into Rust state shared with the parent.
                unsafe {
                    libc::write(report_w.as_raw_fd(), report.as_ptr().cast(), report.len());
                    libc::_exit(127)
                }
            };
            // SAFETY: async-signal-safe libc calls only, on data prepared before fork.
            unsafe {
                match detach {
                    Detach::Session => {
                        libc::setsid();
                    }
                    Detach::Group => {
                        libc::setpgid(0, 0);
                    }
                    Detach::TerminalForeground => {
                        libc::setpgid(0, 0);
                        // SIGTTOU is still blocked here, so a background group may take the terminal.
                        libc::tcsetpgrp(0, libc::getpid());
                    }
                }
                if inherited.sigchld_ignored {
                    let _ = signals::set_ignored(libc::SIGCHLD, true);
                }
                let _ = signals::set_mask(inherited.mask);
                if let Some(h) = handover {
                    if let Some(dir) = h.cwd {
                        libc::chdir(dir.as_ptr());
                    }
                    for &(from, to) in &moves {
                        // The copy at `to` is not close-on-exec: the command keeps it.
                        while libc::dup2(from, to) < 0 {
                            match Errno::last() {
                                Errno::EINTR => {}
                                e => fail(STEP_SOCKETS, e),
                            }
                        }
                    }
                    if h.sockets.is_some() {
                        write_decimal(listen_pid_digits, libc::getpid() as u32);
                    }
                }
                fail(STEP_EXEC, exec_search(&paths, &argv, &mut sh_argv, envp))
            }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_w);
            drop(high);
            exec_reported(child, report_r)
        }
    }
}

/// For a generation: its environment (sigward's own less the handover variables, which are set
/// for it), and high close-on-exec copies of the sockets with where the child moves each (3, 4,
/// ...). Copies first, above `floor`, so no dup2 can overwrite a socket still to move.
#[allow(clippy::type_complexity)]
fn prepare_handover(
    h: &Handover,
    floor: i32,
) -> Result<(Vec<CString>, Vec<OwnedFd>, Vec<(RawFd, RawFd)>), SpawnError> {
    let held = h.sockets.as_ref();
    let sockets = held.map_or(0, |s| s.fds.len());
    let mut env = Vec::new();
    let mut high = Vec::with_capacity(sockets);
    let mut moves: Vec<(RawFd, RawFd)> = Vec::with_capacity(sockets);
    let set = match held {
        Some(_) => &HANDOVER_VARS[..],
        None => &HANDOVER_VARS[4..],
    };
    for (fd, to) in held.map_or(&[][..], |s| s.fds).iter().zip(3..) {
        let copy = at_or_above(fd, floor).map_err(|e| SpawnError::Start("dup", e))?;
        moves.push((copy.as_raw_fd(), to));
        high.push(copy);
    }
    for (key, value) in std::env::vars_os() {
        if !set.iter().any(|v| key == *v) {
            let mut kv = key.into_vec();
            kv.push(b'=');
            kv.extend(value.as_bytes());
            env.extend(CString::new(kv).ok());
        }
    }
    if let Some(s) = held {
        for kv in [
            format!("LISTEN_FDS={}", s.fds.len()),
            format!("LISTEN_FDNAMES={}", s.fdnames),
            format!("NOTIFY_SOCKET={}", s.notify),
        ] {
            env.extend(CString::new(kv).ok());
        }
    }
    env.extend(CString::new(format!("SIGWARD_GENERATION={}", h.generation)).ok());
    Ok((env, high, moves))
}

/// Waits for the child's report on `report_r`: EOF means it exec'd; 8 bytes say which step
/// failed and why (the child is reaped then).
fn exec_reported(child: Pid, report_r: OwnedFd) -> Result<Pid, SpawnError> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    let give_up = std::time::Instant::now().checked_add(EXEC_REPORT_WAIT);
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        // A child stuck before exec (SIGSTOPped, a hung working directory) must not stall
        // PID 1: past the bound it counts as started, and a later exec failure shows as
        // its exit status (127/126) instead.
        let left = give_up.map_or(std::time::Duration::ZERO, |g| {
            g.saturating_duration_since(std::time::Instant::now())
        });
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(report_r.as_fd(), PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return Ok(child),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
        match nix::unistd::read(&report_r, rest) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    if got == 0 {
        return Ok(child); // EOF: exec succeeded and closed the pipe.
    }
    // Reap the failed child so it leaves no zombie; its status adds nothing.
    while let Err(Errno::EINTR) = nix::sys::wait::waitpid(child, None) {}
    let [a, b, c, d, e, f, g, h] = buf;
    let (step, errno) = (
        u32::from_ne_bytes([a, b, c, d]),
        Errno::from_raw(i32::from_ne_bytes([e, f, g, h])),
    );
    // A short report cannot happen (a pipe write of 8 bytes is atomic); never trust one.
    let errno = if got == buf.len() { errno } else { Errno::EIO };
    Err(match step {
        STEP_SOCKETS => SpawnError::Start("dup2", errno),
        _ => SpawnError::Exec(errno),
    })
}

/// The paths execvp(3) tries for `name`, in order: `name` itself when it holds a `/`, else
/// `DIR/name` for each entry of `path` (or [`DEFAULT_PATH`]), `name` alone for an empty entry
/// (the current directory). Paths too long to exec are left out, as the C libraries do.
fn candidates(name: &[u8], path: Option<&[u8]>) -> Result<Vec<Vec<u8>>, Errno> {
    if name.is_empty() {
        return Err(Errno::ENOENT);
    }
    if name.contains(&b'/') {
        return Ok(vec![name.to_vec()]);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    let found: Vec<Vec<u8>> = path
        .unwrap_or(DEFAULT_PATH)
        .split(|&b| b == b':')
        .map(|dir| match dir {
            b"" => name.to_vec(),
            _ => [dir, b"/", name].concat(),
        })
        .filter(|p| p.len() < PATH_MAX)
        .collect();
    if found.is_empty() {
        Err(Errno::ENOENT)
    } else {
        Ok(found)
    }
}

/// execvp(3) over the prepared `paths`, in the child: execve each; a file the kernel cannot exec
/// (ENOEXEC) is run with `/bin/sh`; ENOENT and ENOTDIR (and ESTALE, ENODEV, ETIMEDOUT, which odd
/// filesystems return for a missing file, as glibc allows) go on to the next path, EACCES too
/// but is remembered; any other error stops. Returns only when nothing could run: the errno to
/// report.
///
/// # Safety
/// Only between fork and exec, with `argv` a null-terminated array of C strings and `sh_argv`
/// `[SHELL, _, argv[1..]...]`, both null-terminated, and `envp` a valid environment.
unsafe fn exec_search(
    paths: &[CString],
    argv: &[*const libc::c_char],
    sh_argv: &mut [*const libc::c_char],
    envp: *const *const libc::c_char,
) -> Errno {
    let mut denied = false;
    let mut last = Errno::ENOENT;
    for path in paths {
        // SAFETY: execve(2) with valid, null-terminated arrays (the caller's promise); it
        // returns only on failure.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp) };
        let mut errno = Errno::last();
        if errno == Errno::ENOEXEC {
            if let Some(slot) = sh_argv.get_mut(1) {
                *slot = path.as_ptr();
            }
            // SAFETY: as above; sh_argv now holds this path in its slot.
            unsafe { libc::execve(SHELL.as_ptr(), sh_argv.as_ptr(), envp) };
            // No /bin/sh (a distroless image): the file's own failure says more than ENOENT.
            errno = Errno::ENOEXEC;
        }
        match errno {
            Errno::EACCES => denied = true,
            Errno::ENOENT | Errno::ENOTDIR | Errno::ESTALE | Errno::ENODEV | Errno::ETIMEDOUT => {}
            _ => return errno,
        }
        last = errno;
    }
    if denied { Errno::EACCES } else { last }
}

/// A close-on-exec copy of `fd` at the lowest free number `>= floor`.
fn at_or_above(fd: &impl AsFd, floor: RawFd) -> Result<OwnedFd, Errno> {
    let copy = nix::fcntl::fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(floor))?;
    // SAFETY: the kernel just returned this new fd to us, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// Writes `n` in decimal at `out`, followed by the NUL already there. Async-signal-safe: no
/// allocation, no formatting machinery.
///
/// # Safety
/// `out` must point at 11 writable bytes.
unsafe fn write_decimal(out: *mut u8, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: the caller guarantees 11 writable bytes; len <= 10.
        unsafe { *out.add(i) = digits[len - 1 - i] };
    }
}

/// Exit status and reason for an exec failure, as shells report them: 127 not found, 126 found
/// but not runnable.
pub fn exec_failure_status(errno: Errno) -> i32 {
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => 127,
        _ => 126,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn paths(name: &str, path: Option<&str>) -> Result<Vec<String>, Errno> {
        candidates(name.as_bytes(), path.map(str::as_bytes)).map(|found| {
            found
                .into_iter()
                .map(|p| String::from_utf8(p).unwrap())
                .collect()
        })
    }

    #[test]
    fn a_name_with_a_slash_is_used_as_it_is() {
        assert_eq!(paths("./run.sh", Some("/bin")), Ok(vec!["./run.sh".into()]));
        assert_eq!(paths("/app/x", None), Ok(vec!["/app/x".into()]));
        assert_eq!(paths("a/b", Some("")), Ok(vec!["a/b".into()]));
    }

    #[test]
    fn other_names_are_looked_up_in_path_order() {
        assert_eq!(
            paths("app", Some("/opt/bin:/usr/bin")),
            Ok(vec!["/opt/bin/app".into(), "/usr/bin/app".into()])
        );
        assert_eq!(
            paths("app", Some("/a/")),
            Ok(vec!["/a//app".into()]),
            "as the C libraries do: the kernel folds the double slash"
        );
    }

    #[test]
    fn an_empty_path_entry_is_the_current_directory() {
        assert_eq!(
            paths("app", Some(":/bin")),
            Ok(vec!["app".into(), "/bin/app".into()])
        );
        assert_eq!(
            paths("app", Some("/bin::/usr/bin:")),
            Ok(vec![
                "/bin/app".into(),
                "app".into(),
                "/usr/bin/app".into(),
                "app".into()
            ])
        );
        assert_eq!(paths("app", Some("")), Ok(vec!["app".into()]));
    }

    #[test]
    fn an_unset_path_is_dockers_default() {
        assert_eq!(
            paths("app", None).unwrap(),
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin"
            ]
            .map(|d| format!("{d}/app"))
        );
    }

    #[test]
    fn names_exec_cannot_take_fail_as_execvp_fails() {
        assert_eq!(paths("", Some("/bin")), Err(Errno::ENOENT));
        assert_eq!(
            paths(&"x".repeat(NAME_MAX + 1), Some("/bin")),
            Err(Errno::ENAMETOOLONG)
        );
        let long_dir = format!("/{}", "d".repeat(PATH_MAX));
        assert_eq!(
            paths("app", Some(&format!("{long_dir}:/bin"))),
            Ok(vec!["/bin/app".into()]),
            "a directory too long to exec from is skipped"
        );
        assert_eq!(paths("app", Some(&long_dir)), Err(Errno::ENOENT));
    }

    #[test]
    fn a_copy_at_or_above_lands_there_close_on_exec_on_the_same_file() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let floor = file.as_raw_fd() + 50;
        let copy = at_or_above(&file, floor).unwrap();
        assert!(copy.as_raw_fd() >= floor);
        let flags = nix::fcntl::fcntl(&copy, FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
        let same = |a: &dyn AsFd, b: &dyn AsFd| {
            let (a, b) = (
                nix::sys::stat::fstat(a.as_fd()).unwrap(),
                nix::sys::stat::fstat(b.as_fd()).unwrap(),
            );
            (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        };
        assert!(same(&file, &copy));
    }

    fn inherited() -> Inherited {
        Inherited {
            mask: SigMask::EMPTY,
            sigchld_ignored: false,
        }
    }

    fn exit_code(pid: Pid) -> Option<i32> {
        loop {
            match nix::sys::wait::waitpid(pid, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return Some(code),
                Err(Errno::EINTR) => continue,
                _ => return None,
            }
        }
    }

    /// A scratch directory for one test, removed on drop.
    struct Scratch(std::path::PathBuf);
    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("sigward-spawn-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_script_without_a_shebang_runs_with_bin_sh_and_gets_its_arguments() {
        let dir = Scratch::new("noshebang");
        let script = dir.0.join("script");
        std::fs::write(&script, "exit \"$1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let command = [script.into_os_string(), "7".into()];
        for handover in [false, true] {
            let h = Handover {
                sockets: Some(Sockets {
                    fds: &[],
                    fdnames: "",
                    notify: "@none",
                }),
                generation: 1,
                cwd: None,
            };
            let started = spawn(
                &command,
                Detach::Session,
                &inherited(),
                handover.then_some(&h),
            );
            let Ok(pid) = started else {
                panic!("did not start (handover: {handover})");
            };
            assert_eq!(exit_code(pid), Some(7), "handover: {handover}");
        }
    }

    #[test]
    fn an_exec_failure_is_reported_even_when_low_fds_are_free_among_the_socket_slots() {
        // The report pipe takes the lowest free fds. Free some below 3 + n (the slots the child
        // dup2()s the n sockets onto): without the pipe moved above them, the child's dup2 closes
        // its write end and the parent reads EOF, "exec succeeded". Only fds this test opened are
        // closed; another test thread taking the holes first would make this pass vacuously,
        // never fail wrongly.
        let holes: Vec<std::fs::File> = (0..8)
            .map(|_| std::fs::File::open("/dev/null").unwrap())
            .collect();
        let sockets: Vec<OwnedFd> = (0..16)
            .map(|_| std::fs::File::open("/dev/null").unwrap().into())
            .collect();
        let slots_end = 3 + sockets.len() as i32;
        let lowest_hole = holes.iter().map(|h| h.as_raw_fd()).min().unwrap();
        assert!(lowest_hole < slots_end, "no free fd among the slots");
        drop(holes);
        let h = Handover {
            sockets: Some(Sockets {
                fds: &sockets,
                fdnames: "",
                notify: "@none",
            }),
            generation: 1,
            cwd: None,
        };
        let command = ["/nonexistent/sigward-test-command".into()];
        match spawn(&command, Detach::Session, &inherited(), Some(&h)) {
            Err(SpawnError::Exec(e)) => assert_eq!(e, Errno::ENOENT),
            Err(SpawnError::Start(what, e)) => panic!("could not start: {what}: {e}"),
            Ok(pid) => {
                let code = exit_code(pid);
                panic!("an exec failure read as success (the child exited {code:?})");
            }
        }
    }
}
