//! The termination message: one short summary of how the app ended, for `kubectl describe pod`.
//!
//! Kubernetes shows the contents of `/dev/termination-log` (`terminationMessagePath`, at most
//! 4096 bytes) under the container's Last State. Apps rarely write it, so the message is empty
//! exactly when it would help most. When the file exists and is still empty as sigward exits,
//! sigward writes there how the app ended, what the OOM killer or sigward's own deadline killed
//! (by name), and the stop sequence's timeline in milliseconds.
//!
//! What the app wrote is never touched: the file is opened without O_TRUNC and with O_APPEND,
//! and written only when fstat on that same fd says it is empty. Only a regular file is written,
//! never through a symlink (O_NOFOLLOW: the kubelet bind-mounts a file, never a link), and the
//! open is non-blocking (a FIFO there would otherwise hold PID 1's exit). The default path is
//! never created (outside Kubernetes it does not exist); a path given with `--termination-log`
//! is created if missing, since someone asked for it. Nothing here can fail sigward's exit.

use crate::log::TermLog;
use crate::os::clock::Mono;
use crate::os::reap::Exit;
use crate::os::signals::Name;
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, SFlag};
use std::fmt::Write as _;
use std::time::Duration;

/// Kubernetes reads at most this much of the file.
pub const MAX: usize = 4096;
/// Where Kubernetes mounts it unless the pod says otherwise.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// At most this many "why it died" sentences; the rest are counted.
const NAMED_DEATHS: usize = 8;

/// Where the termination message goes (`--termination-log PATH|off`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    Off,
    /// The default path: written only if it exists.
    Default(String),
    /// A path given on the command line or in the environment: created if missing.
    Given(String),
}

/// What the message tells, gathered by the dispatcher as things happen. Times are the
/// dispatcher's own readings of the monotonic clock (the stop machine reads none).
#[derive(Debug, Default)]
pub struct Summary {
    /// The command could not be started (at start, or as the next generation of a restart in
    /// place): sigward's sentence for it, said first, since sigward exits with its status.
    pub failed: Option<String>,
    /// The main child's command name and pid, and how it ended.
    pub name: String,
    pub pid: i32,
    pub exit: Option<Exit>,
    /// The first stop signal received.
    pub stop: Option<(Mono, i32)>,
    /// A restart in place began: its drain, should a stop signal come, is the stop sequence.
    pub restart: Option<Mono>,
    pub delay_over: Option<Mono>,
    /// The stop signal went to the app (None: it is rewritten to 0).
    pub forwarded: Option<(Mono, Option<i32>)>,
    pub main_exited: Option<Mono>,
    /// The main child exited by itself and the processes left got the stop signal.
    pub leftovers: Option<Mono>,
    /// sigward's deadline SIGKILLed these stragglers (`12 (worker), 13 (sh)`).
    pub killed: Option<(Mono, Duration, usize, String)>,
    /// "Why it died" sentences, as logged.
    pub died: Vec<String>,
    /// How many more were not kept.
    pub more_died: usize,
}

impl Summary {
    /// Keeps a "why it died" sentence (the first few).
    pub fn died(&mut self, sentence: String) {
        if self.died.len() < NAMED_DEATHS {
            self.died.push(sentence);
        } else {
            self.more_died = self.more_died.saturating_add(1);
        }
    }

    /// The main child `pid` exited at `now`.
    pub fn main_exited(&mut self, pid: i32, exit: Exit, now: Mono) {
        self.pid = pid;
        self.exit = Some(exit);
        self.main_exited = Some(now);
    }

    /// A restart in place started the next generation as `pid`: the message tells how the last
    /// generation ended, so the restart's own drain is not its timeline; the deaths already
    /// explained are kept.
    pub fn next_generation(&mut self, pid: i32) {
        *self = Summary {
            name: std::mem::take(&mut self.name),
            pid,
            died: std::mem::take(&mut self.died),
            more_died: self.more_died,
            ..Summary::default()
        };
    }

    /// The message, at most [`MAX`] bytes, cut on a character boundary.
    pub fn render(&self, exiting: Mono) -> String {
        let mut s = String::new();
        let name = &self.name;
        let pid = self.pid;
        if let Some(failed) = &self.failed {
            let _ = writeln!(s, "{failed}");
        }
        let _ = match self.exit {
            Some(Exit::Code(c)) => writeln!(s, "{name} (pid {pid}) exited with status {c}"),
            Some(e @ Exit::Signal { sig, core }) => writeln!(
                s,
                "{name} (pid {pid}) exited with signal {} (status {}){}",
                Name(sig),
                e.status(),
                if core { ", core dumped" } else { "" }
            ),
            None if self.failed.is_some() => Ok(()),
            None => writeln!(s, "{name} (pid {pid}): no exit status"),
        };
        for d in &self.died {
            let _ = writeln!(s, "{d}");
        }
        if self.more_died > 0 {
            let _ = writeln!(s, "and {} more such deaths (see the log)", self.more_died);
        }
        if let Some((_, grace, count, names)) = &self.killed {
            let noun = if *count == 1 {
                "straggler"
            } else {
                "stragglers"
            };
            let _ = writeln!(
                s,
                "sigward's grace period of {} was over: it killed {count} {noun}: {names}",
                crate::log::Dur(*grace)
            );
        }
        self.timeline(&mut s, exiting);
        cut(s, MAX)
    }

    /// `stop timeline: SIGTERM received at 0 ms, ...`, in the order things happened, from the
    /// first of them: the stop signal, a restart in place whose drain became the stop sequence,
    /// or the main child's exit when it exited by itself and left processes behind. Nothing when
    /// there was no stop sequence.
    fn timeline(&self, s: &mut String, exiting: Mono) {
        if self.stop.is_none() && self.leftovers.is_none() {
            return;
        }
        let mut items: Vec<(Mono, String)> = Vec::new();
        // Kept in time order as they come; what happened at the same moment stays in the order
        // below (a few items: no sort).
        let mut item = |t: Option<Mono>, what: &dyn std::fmt::Display| {
            if let Some(t) = t {
                let at = items.partition_point(|(u, _)| *u <= t);
                items.insert(at, (t, what.to_string()));
            }
        };
        item(self.restart, &"restart in place began");
        if let Some((t, sig)) = self.stop {
            item(Some(t), &format_args!("{} received", Name(sig)));
        }
        item(self.delay_over, &"pre-stop delay over");
        match self.forwarded {
            Some((t, Some(sig))) => item(Some(t), &format_args!("{} forwarded", Name(sig))),
            Some((t, None)) => item(Some(t), &"stop signal dropped (rewritten to 0)"),
            None => {}
        }
        item(self.main_exited, &format_args!("{} exited", self.name));
        item(self.leftovers, &"stop signal to the processes left");
        item(self.killed.as_ref().map(|k| k.0), &"stragglers killed");
        item(Some(exiting), &"sigward exiting");
        let origin = items.first().map_or(exiting, |(t, _)| *t);
        let _ = write!(s, "stop timeline:");
        let mut sep = " ";
        for (t, what) in &items {
            let _ = write!(s, "{sep}{what} at {} ms", t.since(origin).as_millis());
            sep = ", ";
        }
        s.push('\n');
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end = end.saturating_sub(1);
        }
        s.truncate(end);
    }
    s
}

/// Writes `text()` to `dest` if it is an empty regular file (see the module docs); None for
/// `off`. The text is rendered only then: outside Kubernetes there is usually no such file,
/// and sigward's exit is on the stop row's clock.
pub fn write<'d>(dest: &'d Dest, text: &dyn Fn() -> String) -> Option<(&'d str, TermLog)> {
    let (path, create) = match dest {
        Dest::Off => return None,
        Dest::Default(p) => (p, false),
        Dest::Given(p) => (p, true),
    };
    Some((path, write_to(path, create, text)))
}

fn write_to(path: &str, create: bool, text: &dyn Fn() -> String) -> TermLog {
    let mut flags = OFlag::O_WRONLY
        | OFlag::O_APPEND
        | OFlag::O_NOFOLLOW
        | OFlag::O_NONBLOCK
        | OFlag::O_NOCTTY
        | OFlag::O_CLOEXEC;
    if create {
        flags |= OFlag::O_CREAT;
    }
    let fd = loop {
        match nix::fcntl::open(path, flags, Mode::from_bits_truncate(0o644)) {
            Ok(fd) => break fd,
            Err(Errno::EINTR) => continue,
            Err(Errno::ENOENT) if !create => return TermLog::Missing,
            // O_NOFOLLOW on a symlink; a FIFO without a reader.
            Err(Errno::ELOOP | Errno::ENXIO) => return TermLog::NotAFile,
            Err(err) => return TermLog::Failed(err),
        }
    };
    let st = match nix::sys::stat::fstat(&fd) {
        Ok(st) => st,
        Err(err) => return TermLog::Failed(err),
    };
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return TermLog::NotAFile;
    }
    if st.st_size != 0 {
        return TermLog::AppWrote;
    }
    let text = text();
    let mut rest = text.as_bytes();
    while !rest.is_empty() {
        match nix::unistd::write(&fd, rest) {
            Ok(0) => return TermLog::Failed(Errno::EIO),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(Errno::EINTR) => {}
            Err(err) => return TermLog::Failed(err),
        }
    }
    TermLog::Written(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Mono {
        Mono(1_000_000_000 + n * 1_000_000)
    }

    #[test]
    fn a_stop_with_a_straggler_reads_as_a_timeline() {
        let s = Summary {
            name: "server".into(),
            pid: 7,
            exit: Some(Exit::Code(0)),
            stop: Some((ms(0), libc::SIGTERM)),
            delay_over: Some(ms(2000)),
            forwarded: Some((ms(2000), Some(libc::SIGTERM))),
            main_exited: Some(ms(2350)),
            killed: Some((ms(10_000), Duration::from_secs(10), 1, "12 (worker)".into())),
            ..Summary::default()
        };
        assert_eq!(
            s.render(ms(10_003)),
            "server (pid 7) exited with status 0\n\
             sigward's grace period of 10s was over: it killed 1 straggler: 12 (worker)\n\
             stop timeline: SIGTERM received at 0 ms, pre-stop delay over at 2000 ms, \
             SIGTERM forwarded at 2000 ms, server exited at 2350 ms, stragglers killed at \
             10000 ms, sigward exiting at 10003 ms\n"
        );
    }

    #[test]
    fn an_oom_kill_without_a_stop_has_no_timeline() {
        let mut s = Summary {
            name: "server".into(),
            pid: 7,
            exit: Some(Exit::Signal {
                sig: libc::SIGKILL,
                core: false,
            }),
            main_exited: Some(ms(5)),
            ..Summary::default()
        };
        s.died("server (pid 7) was killed by the kernel's OOM killer (memory limit 32 MiB)".into());
        assert_eq!(
            s.render(ms(6)),
            "server (pid 7) exited with signal SIGKILL (status 137)\n\
             server (pid 7) was killed by the kernel's OOM killer (memory limit 32 MiB)\n"
        );
    }

    #[test]
    fn the_main_child_exiting_first_starts_the_timeline() {
        let s = Summary {
            name: "app".into(),
            pid: 2,
            exit: Some(Exit::Code(3)),
            main_exited: Some(ms(100)),
            leftovers: Some(ms(100)),
            ..Summary::default()
        };
        assert!(s.render(ms(150)).ends_with(
            "stop timeline: app exited at 0 ms, stop signal to the processes left at 0 ms, sigward exiting at 50 ms\n"
        ));
    }

    #[test]
    fn a_restart_in_place_keeps_only_the_deaths_explained_so_far() {
        let mut s = Summary {
            name: "app".into(),
            pid: 7,
            ..Summary::default()
        };
        s.stop = Some((ms(1), libc::SIGHUP));
        s.restart = Some(ms(1));
        s.died("pid 9 was killed by the OOM killer".into());
        s.main_exited(7, Exit::Code(0), ms(2));
        s.next_generation(8);
        assert_eq!((s.name.as_str(), s.pid, s.exit), ("app", 8, None));
        assert_eq!((s.stop, s.restart, s.main_exited), (None, None, None));
        assert_eq!(
            s.died,
            vec!["pid 9 was killed by the OOM killer".to_string()]
        );
    }

    #[test]
    fn the_message_is_cut_on_a_character_boundary() {
        let mut s = Summary {
            name: "ж".repeat(3000),
            pid: 2,
            exit: Some(Exit::Code(1)),
            ..Summary::default()
        };
        for _ in 0..20 {
            s.died("ж".repeat(100));
        }
        let text = s.render(ms(0));
        assert!(text.len() <= MAX && text.len() > MAX - 4);
        assert_eq!(s.more_died, 12);
    }

    #[test]
    fn only_an_empty_regular_file_is_written() {
        let dir = std::env::temp_dir().join(format!("sigward-termlog-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let file = path("log");
        // Missing: the default path is not created, a given one is.
        assert_eq!(write_to(&file, false, &|| "x".into()), TermLog::Missing);
        assert!(!std::path::Path::new(&file).exists());
        assert_eq!(
            write_to(&file, true, &|| "hello".into()),
            TermLog::Written(5)
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        // Written already (by the app): untouched.
        assert_eq!(
            write_to(&file, false, &|| "other".into()),
            TermLog::AppWrote
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"hello");
        // A symlink is not followed, a directory or a FIFO is not written.
        let link = path("link");
        std::os::unix::fs::symlink(path("empty"), &link).unwrap();
        std::fs::write(path("empty"), b"").unwrap();
        assert_eq!(write_to(&link, false, &|| "x".into()), TermLog::NotAFile);
        assert!(std::fs::read(path("empty")).unwrap().is_empty());
        let fifo = path("fifo");
        nix::unistd::mkfifo(fifo.as_str(), Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(write_to(&fifo, false, &|| "x".into()), TermLog::NotAFile);
        assert_eq!(write(&Dest::Off, &|| "x".into()), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
