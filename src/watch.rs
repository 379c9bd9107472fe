//! `--watch`: act on the app's behalf when its mounted configuration changes, with no sidecar
//! and no polling. Two parts:
//!
//! * [`Watcher`], the inotify side: one non-blocking, close-on-exec inotify fd in the reactor's
//!   poll set, read in bounded batches, that turns kernel events into "this path changed". It
//!   watches directories (a watched file's too), because how configuration is replaced decides
//!   where the event shows up (a watched file is also watched itself, for a file bind-mounted
//!   over another, whose events its directory never sees):
//!   - a Kubernetes ConfigMap or Secret volume is updated by the kubelet's atomic writer: the
//!     keys are written into a new `..<timestamp>` directory, a `..data_tmp` symlink pointed at it
//!     is renamed over `..data`, the old directory is removed; the visible `key` files are
//!     symlinks `key -> ..data/key` and never change themselves. So the one event of an update
//!     is `..data` being moved into the volume's directory: for a watched directory every entry
//!     counts except the writer's private `..`-names, and for a watched file `..data` in its
//!     directory counts as the file (any key's update is a new `..data`);
//!   - a file rewritten in place, an editor's write-to-temp-and-rename, a file deleted and
//!     recreated: all are events of the file's name in its directory;
//!   - a symlink (into a volume mounted elsewhere, or a `current -> v2` link swapped by rename):
//!     each link on the way, and what the last one names, is watched in its own directory too;
//!   - a watched path that does not exist yet (or whose directory is replaced or removed):
//!     sigward waits for it, watching the nearest directory on its way that exists, and acts
//!     when it appears;
//!   - reads (atime) and the writer's private entries (`..data_tmp`, `..<timestamp>`, the old
//!     directory's removal) never count. A lost event queue (`IN_Q_OVERFLOW`) counts as a change
//!     of everything watched.
//! * what to do about the changes, and when, is the debounce machine's (`engine::reload`).

use crate::log;
use nix::errno::Errno;
use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Bytes read from the inotify fd at once: about 150 events, enough for one update of a large
/// ConfigMap volume; more wait for the next turn of the reactor.
const BATCH_BYTES: usize = 4096;

/// Symlinks followed from a watched path to what it names, each watched in its directory.
const MAX_LINKS: usize = 8;

/// At most this many changed paths are kept for the log line (the rest are counted).
const NAMED_PATHS: usize = 8;

/// The atomic writer's symlink to the current payload: `key -> ..data/key`.
const DATA: &[u8] = b"..data";

/// Entry events of a watched directory, and events of the directory itself. Never IN_ACCESS,
/// IN_OPEN, IN_CLOSE_NOWRITE or IN_ATTRIB: reading a file (atime) changes nothing.
const MASK: u32 = libc::IN_CREATE
    | libc::IN_MOVED_TO
    | libc::IN_MOVED_FROM
    | libc::IN_DELETE
    | libc::IN_CLOSE_WRITE
    | libc::IN_MODIFY
    | libc::IN_DELETE_SELF
    | libc::IN_MOVE_SELF
    | libc::IN_ONLYDIR;

/// A watched file's own watch: written in place. Its entry's events (renamed over, removed) are
/// its directory's; a file bind-mounted over another (`docker run -v ./app.conf:/etc/app.conf`)
/// reports even its writes only to the directory it came from, so they are seen only here.
const FILE_MASK: u32 =
    libc::IN_MODIFY | libc::IN_CLOSE_WRITE | libc::IN_DELETE_SELF | libc::IN_MOVE_SELF;

/// The watched directory itself is gone or moved: what it meant must be looked up again.
const GONE: u32 = libc::IN_DELETE_SELF | libc::IN_MOVE_SELF | libc::IN_UNMOUNT | libc::IN_IGNORED;

/// Why a directory is watched for a target.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    /// It is the target: any entry counts but the atomic writer's private ones.
    Dir,
    /// It holds the target, whose name this is: that entry counts, and `..data` (a key of a
    /// ConfigMap volume is `key -> ..data/key`, and the `..data` swap is its update).
    Holder(Vec<u8>),
    /// It is the target, a file: its own writes count (see [`FILE_MASK`]).
    File,
    /// The target does not exist yet and this is the nearest directory on its way that does:
    /// the entry of this name leads on to it.
    Ancestor(Vec<u8>),
}

/// What a batch of events amounted to.
#[derive(Default)]
struct Seen {
    changed: bool,
    /// Paths moved: the watches must be placed again.
    rearm: bool,
    /// Targets waited for whose next step appeared.
    appeared: Vec<usize>,
}

struct Watch {
    wd: i32,
    target: usize,
    dir: Vec<u8>,
    role: Role,
}

/// The inotify fd and what each of its watches stands for. Paths are absolute and plain (see
/// `cli`), handled as bytes: `/a/b` is the entry `b` of `/a`.
pub struct Watcher<'a> {
    fd: OwnedFd,
    targets: &'a [Vec<u8>],
    watches: Vec<Watch>,
    /// What changed since the last [`Watcher::take_changed`], for the log line.
    changed: Vec<Vec<u8>>,
    more: usize,
}

impl<'a> Watcher<'a> {
    /// Watches every path in `targets`; a path that does not exist yet is waited for (and said
    /// so). Fails, and says so, on anything else: no inotify, no permission, no watches left.
    #[inline(never)]
    pub fn new(targets: &'a [Vec<u8>]) -> Option<Watcher<'a>> {
        let failed = |path: &[u8], err| {
            log::emit(&log::Event::WatchFailed {
                path,
                err,
                start: true,
            })
        };
        // SAFETY: inotify_init1 takes flags only and returns a new fd or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if raw < 0 {
            failed(targets.first().map_or(&[], |t| t), Errno::last());
            return None;
        }
        // SAFETY: `raw` is a new fd that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut w = Watcher {
            fd,
            targets,
            watches: Vec::new(),
            changed: Vec::new(),
            more: 0,
        };
        if let Some((path, err)) = w.arm().first() {
            failed(path, *err);
            return None;
        }
        // A missing path's first watch is the nearest directory on its way (its own, or one
        // further up).
        for (t, path) in w.targets.iter().enumerate() {
            let missing = std::fs::symlink_metadata(OsStr::from_bytes(path)).is_err();
            if let Some(watch) = w.watches.iter().find(|w| w.target == t).filter(|_| missing) {
                log::emit(&log::Event::WatchWaiting {
                    path,
                    dir: &watch.dir,
                });
            }
        }
        Some(w)
    }

    /// (Re)places the watches from what the paths are now. A directory still relevant keeps its
    /// watch descriptor (inotify hands out the same one for the same inode), so no event is
    /// missed in between; watches no longer needed are removed afterwards. Returns the paths
    /// that could not be watched, with why.
    #[inline(never)] // one copy for start-up and re-arming
    fn arm(&mut self) -> Vec<(Vec<u8>, Errno)> {
        let mut watches = Vec::new();
        let mut failed = Vec::new();
        for (i, target) in self.targets.iter().enumerate() {
            let mut add = |dir: &[u8], role: Role| -> Result<(), Errno> {
                let mask = if role == Role::File { FILE_MASK } else { MASK };
                let wd = add_watch(self.fd.as_fd(), dir, mask)?;
                let same = |w: &Watch| w.wd == wd && w.target == i && w.role == role;
                if watches.iter().any(same) {
                    return Ok(());
                }
                watches.push(Watch {
                    wd,
                    target: i,
                    dir: dir.to_vec(),
                    role,
                });
                Ok(())
            };
            if let Err(err) = watch_target(target, &mut add) {
                failed.push((target.clone(), err));
                continue;
            }
            follow_links(target, &mut add);
        }
        for old in &self.watches {
            if !watches.iter().any(|w| w.wd == old.wd) {
                // SAFETY: removes a watch of our own fd by its descriptor; EINVAL when the kernel
                // removed it already (its directory is gone) changes nothing.
                unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), old.wd) };
            }
        }
        self.watches = watches;
        failed
    }

    /// Reads one bounded batch of events. Returns whether anything watched changed (the paths
    /// are kept for [`Watcher::take_changed`]).
    pub fn read(&mut self) -> bool {
        let mut buf = [0u8; BATCH_BYTES];
        // SAFETY: reads at most `buf.len()` bytes into a valid, writable local buffer.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else {
            let err = Errno::last();
            if !matches!(err, Errno::EAGAIN | Errno::EINTR) {
                log::emit(&log::Event::WatchReadFailed { err });
            }
            return false;
        };
        let mut seen = Seen::default();
        let data = buf.get(..n).unwrap_or_default();
        let mut at: usize = 0;
        while let Some(head) = data.get(at..at.saturating_add(16)) {
            let word = |i: usize| [head[i], head[i + 1], head[i + 2], head[i + 3]];
            let wd = i32::from_ne_bytes(word(0));
            let mask = u32::from_ne_bytes(word(4));
            let len = u32::from_ne_bytes(word(12)) as usize;
            let start = at + 16;
            let end = start.saturating_add(len).min(data.len());
            let raw = data.get(start..end).unwrap_or_default();
            // The name is NUL-padded.
            let name = raw.split(|&b| b == 0).next().unwrap_or_default();
            at = start.saturating_add(len);
            self.on_event(wd, mask, name, &mut seen);
        }
        self.settle(seen)
    }

    /// What one inotify event means for the watches it names.
    fn on_event(&mut self, wd: i32, mask: u32, name: &[u8], seen: &mut Seen) {
        if mask & libc::IN_Q_OVERFLOW != 0 {
            // Events were lost: anything may have changed.
            for t in 0..self.targets.len() {
                self.note_target(t);
            }
            (seen.changed, seen.rearm) = (true, true);
            return;
        }
        let gone = mask & GONE != 0;
        for i in 0..self.watches.len() {
            let Some(w) = self.watches.get(i).filter(|w| w.wd == wd) else {
                continue;
            };
            let target = w.target;
            match &w.role {
                Role::Dir | Role::Holder(_) if gone => {
                    self.note_target(target);
                    (seen.changed, seen.rearm) = (true, true);
                }
                Role::Dir if !name.is_empty() && !private(name) => {
                    let path = join(&w.dir, name);
                    self.note(path);
                    seen.changed = true;
                }
                Role::Holder(own) if name == own.as_slice() || name == DATA => {
                    let path = join(&w.dir, name);
                    self.note(path);
                    (seen.changed, seen.rearm) = (true, true);
                }
                Role::File if gone => seen.rearm = true,
                Role::File if mask & (libc::IN_MODIFY | libc::IN_CLOSE_WRITE) != 0 => {
                    self.note_target(target);
                    seen.changed = true;
                }
                Role::Ancestor(_) if gone => seen.rearm = true,
                Role::Ancestor(next) if name == next.as_slice() => {
                    seen.rearm = true;
                    seen.appeared.push(target);
                }
                _ => {}
            }
        }
    }

    /// After a batch: the watches placed again if paths moved, and a target waited for counts
    /// as changed once it is there. Returns whether anything watched changed.
    fn settle(&mut self, seen: Seen) -> bool {
        let mut changed = seen.changed;
        if seen.rearm {
            for (path, err) in self.arm() {
                log::emit(&log::Event::WatchFailed {
                    path: &path,
                    err,
                    start: false,
                });
            }
        }
        for t in seen.appeared {
            let there = self
                .targets
                .get(t)
                .is_some_and(|p| std::fs::symlink_metadata(OsStr::from_bytes(p)).is_ok());
            if there {
                self.note_target(t);
                changed = true;
            }
        }
        changed
    }

    fn note_target(&mut self, t: usize) {
        if let Some(path) = self.targets.get(t).cloned() {
            self.note(path);
        }
    }

    fn note(&mut self, path: Vec<u8>) {
        if self.changed.contains(&path) {
            return;
        }
        if self.changed.len() < NAMED_PATHS {
            self.changed.push(path);
        } else {
            self.more = self.more.saturating_add(1);
        }
    }

    /// What changed since the last [`Watcher::take_changed`], left in place.
    pub fn changed_so_far(&self) -> (Vec<Vec<u8>>, usize) {
        (self.changed.clone(), self.more)
    }

    /// What changed since the last call (for the action's log line), and how many more paths.
    pub fn take_changed(&mut self) -> (Vec<Vec<u8>>, usize) {
        (
            std::mem::take(&mut self.changed),
            std::mem::take(&mut self.more),
        )
    }
}

impl AsFd for Watcher<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Watches `target` itself: IN_ONLYDIR makes the watch say whether it is a directory, with no
/// race between a stat and the watch. Else a file, or nothing yet: its directory, or the nearest
/// one on the way.
fn watch_target(
    target: &[u8],
    add: &mut impl FnMut(&[u8], Role) -> Result<(), Errno>,
) -> Result<(), Errno> {
    let mut step: &[u8] = target;
    let mut result = add(target, Role::Dir);
    if result == Err(Errno::ENOTDIR) {
        // A file: watched itself too (a path on the way that is not a directory fails).
        let _ = add(target, Role::File);
    }
    while let Err(Errno::ENOTDIR | Errno::ENOENT) = result {
        let Some((dir, name)) = split(step) else {
            break;
        };
        let role = if step == target {
            Role::Holder(name.to_vec())
        } else {
            Role::Ancestor(name.to_vec())
        };
        result = add(dir, role);
        step = dir;
    }
    result
}

/// A symlink (an image's `/app/app.yaml -> /etc/config/app.yaml` into a volume mounted
/// elsewhere, a `current -> releases/v1` swapped by rename): the events that matter happen where
/// the link and what it names live, not in the target's own directory. Each link on the way is
/// watched in its directory, and so is what the last one names, each as the holder of that
/// entry. A dangling link's end may fail: then the link itself still counts.
fn follow_links(target: &[u8], add: &mut impl FnMut(&[u8], Role) -> Result<(), Errno>) {
    let mut at = target.to_vec();
    for _ in 0..MAX_LINKS {
        let Some(dest) = read_link(&at) else { break };
        let Some((dir, name)) = split(&at) else { break };
        let _ = add(dir, Role::Holder(name.to_vec()));
        let dest = dest.as_slice();
        at = match dest.first() {
            Some(b'/') => dest.to_vec(),
            _ => join(dir, dest),
        };
    }
    if at != target
        && let Some((dir, name)) = split(&at)
    {
        let _ = add(dir, Role::Holder(name.to_vec()));
    }
}

fn add_watch(fd: BorrowedFd, path: &[u8], mask: u32) -> Result<i32, Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    // SAFETY: `c` is a valid NUL-terminated path; the fd is our inotify fd.
    let wd = unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c.as_ptr(), mask) };
    if wd < 0 { Err(Errno::last()) } else { Ok(wd) }
}

/// What the symlink `path` points to; None when it is no symlink (or cannot be read).
fn read_link(path: &[u8]) -> Option<Vec<u8>> {
    let c = CString::new(path).ok()?;
    let mut buf = [0u8; libc::PATH_MAX as usize];
    // SAFETY: `c` is a valid NUL-terminated path; at most `buf.len()` bytes are written to it.
    let n = unsafe { libc::readlink(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    // A link as long as the buffer may be cut short: not followed.
    let n = usize::try_from(n).ok().filter(|&n| n < buf.len())?;
    buf.get(..n).map(<[u8]>::to_vec)
}

/// `/a/b` as (`/a`, `b`); `/b` as (`/`, `b`); None for `/`.
fn split(path: &[u8]) -> Option<(&[u8], &[u8])> {
    let slash = path.iter().rposition(|&b| b == b'/')?;
    let name = path.get(slash + 1..).filter(|n| !n.is_empty())?;
    let dir = path.get(..slash.max(1))?;
    Some((dir, name))
}

/// Entry `name` of directory `dir`.
fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if p.last() != Some(&b'/') {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The atomic writer's private entries: `..data_tmp`, `..<timestamp>` (not `..data`, whose
/// move is the update itself).
fn private(name: &[u8]) -> bool {
    name.starts_with(b"..") && name != b".." && name != DATA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_directory_and_entry() {
        assert_eq!(split(b"/a/b"), Some((&b"/a"[..], &b"b"[..])));
        assert_eq!(split(b"/b"), Some((&b"/"[..], &b"b"[..])));
        assert_eq!(split(b"/"), None);
        assert_eq!(join(b"/", b"b"), b"/b");
        assert_eq!(join(b"/a", b"b"), b"/a/b");
        assert!(private(b"..data_tmp") && private(b"..2026_12_02_12_00_00.1"));
        assert!(!private(b"..data") && !private(b"app.yaml") && !private(b".hidden"));
    }
}
