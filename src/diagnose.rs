//! Why did it die: the container's memory cgroup says whether a SIGKILL was the OOM killer's.
//!
//! Exit status 137 only says "SIGKILL". The kernel's OOM killer, a `kill -9` from outside and
//! sigward's own deadline all look alike in waitpid. The one witness is the memory cgroup's
//! `oom_kill` counter, which the kernel raises *before* it sends the victim SIGKILL: cgroup v2
//! `memory.events`, cgroup v1 `memory.oom_control`. sigward reads it once at start (the baseline)
//! and again only when a process it reaped died of a SIGKILL it did not send: a normal run costs
//! no cgroup read after start. Missing files never fail anything: the answer is then "unknown".
//!
//! The counter counts kills, not victims, and counts a kill before the victim is dead: a rise
//! beyond the SIGKILL deaths just reaped is kept for the next ones (a victim still dying). So when
//! the OOM killer kills a process sigward does not reap (a worker its parent reaps), its kill is
//! matched to the next SIGKILL death sigward reaps and cannot otherwise explain.
//! cgroup v1 counts a kill in the victim's own cgroup only (v2 in every ancestor too), so a
//! process the app moved into a child cgroup of its own is not seen under v1.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// A memory limit, for saying what the OOM killer enforced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    Bytes(u64),
    /// The cgroup has no limit (v2 `max`, v1's page-counter maximum).
    None,
    /// No limit file could be read.
    Unknown,
}

/// Why a reaped process died, when it is worth saying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// SIGKILL that sigward did not send, and the OOM counter rose.
    Oom(Limit),
    /// Several processes died of SIGKILL at once and the counter rose by fewer: `kills` of
    /// these `deaths` were the OOM killer's, which ones the kernel does not say.
    MaybeOom {
        kills: u64,
        deaths: usize,
        limit: Limit,
    },
    /// SIGKILL that sigward did not send, and the counter did not rise.
    Outside,
    /// SIGKILL that sigward did not send, and no OOM counter could be read.
    Unknown,
    /// The kernel dumped core for it (WCOREDUMP) on signal `sig`.
    Core(i32),
}

/// Where a memory cgroup keeps its OOM counter and limit.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Cgroup {
    v2: bool,
    dir: String,
    /// The hierarchy's mount point: limits are looked for from `dir` up to here.
    mount: String,
}

/// The OOM counter of sigward's own memory cgroup (the container's), read at start and when a
/// process died of a SIGKILL that sigward did not send.
pub struct OomCounter {
    cgroup: Option<Cgroup>,
    /// The last reading.
    seen: Option<u64>,
    /// OOM kills counted that no death reaped so far was matched to.
    unmatched: u64,
}

impl OomCounter {
    /// Finds the cgroup and takes the baseline reading; never fails. Where the runtimes mount
    /// the hierarchy is tried first, so that a usual start reads two small files and no
    /// mountinfo (start-up time is a benchmark row).
    pub fn start() -> OomCounter {
        let found = find(
            &read("/proc/self/cgroup").unwrap_or_default(),
            &|| read("/proc/self/mountinfo").unwrap_or_default(),
            &|cg| cg.holds(std::process::id()),
            &|cg| read(&cg.counter_file()),
        );
        let (cgroup, seen) = match found {
            Some((cg, text)) => (Some(cg), text.as_deref().and_then(oom_kill_field)),
            None => (None, None),
        };
        OomCounter {
            cgroup,
            seen,
            unmatched: 0,
        }
    }

    /// How many of `kills` SIGKILL deaths just reaped were the OOM killer's (None: unknown).
    /// Kills counted beyond those deaths are kept for the next ones: the kernel counts a kill
    /// before it sends SIGKILL, so a reading can count a victim still dying, reaped later.
    pub fn oom_kills_among(&mut self, kills: usize) -> Option<u64> {
        let counted = self.unmatched.saturating_add(self.rise()?);
        let matched = counted.min(kills as u64);
        self.unmatched = counted.saturating_sub(matched);
        Some(matched)
    }

    /// How many OOM kills happened since the last reading (None: unknown), and takes this one as
    /// the new last reading.
    fn rise(&mut self) -> Option<u64> {
        let now = self.cgroup.as_ref().and_then(Cgroup::oom_kills)?;
        // A baseline that could not be read (a file that appeared later) counts as zero.
        let rise = now.saturating_sub(self.seen.unwrap_or(0));
        self.seen = Some(now);
        Some(rise)
    }

    /// The memory limit that applies to sigward's cgroup: the smallest from it up to the mount.
    pub fn limit(&self) -> Limit {
        let Some(cg) = &self.cgroup else {
            return Limit::Unknown;
        };
        let file = if cg.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        let mut found = Limit::Unknown;
        let mut d = cg.dir.as_str();
        // A path of at most a few dozen levels; never loop on an oddity.
        for _ in 0..64 {
            if let Some(text) = read(&format!("{d}/{file}")) {
                found = match (found, parse_limit(&text)) {
                    (Limit::Bytes(a), Limit::Bytes(b)) => Limit::Bytes(a.min(b)),
                    (Limit::Bytes(a), _) => Limit::Bytes(a),
                    (_, new @ (Limit::Bytes(_) | Limit::None)) => new,
                    (old, Limit::Unknown) => old,
                };
            }
            match d.rfind('/') {
                Some(i) if d != cg.mount => d = d.get(..i).unwrap_or_default(),
                _ => break,
            }
        }
        found
    }
}

impl Cgroup {
    /// Cgroup `path` of a hierarchy mounted with its root at `mount`.
    fn under(v2: bool, mount: &str, path: &str) -> Cgroup {
        let rest = path.strip_suffix('/').unwrap_or(path);
        Cgroup {
            v2,
            dir: format!("{mount}{rest}"),
            mount: mount.to_string(),
        }
    }

    /// memory.events (v2) or memory.oom_control (v1): the file with the `oom_kill N` line.
    fn counter_file(&self) -> String {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        format!("{}/{file}", self.dir)
    }

    /// Whether process `pid` (as this pid namespace numbers it) is in this cgroup itself.
    fn holds(&self, pid: u32) -> bool {
        let pid = pid.to_string();
        read(&format!("{}/cgroup.procs", self.dir))
            .is_some_and(|procs| procs.split('\n').any(|p| p == pid))
    }

    /// `oom_kill N` of the counter file.
    fn oom_kills(&self) -> Option<u64> {
        oom_kill_field(&read(&self.counter_file())?)
    }
}

/// Where Docker, containerd, CRI-O and systemd mount the hierarchies (v1: one per controller).
const V1_MEMORY_MOUNT: &str = "/sys/fs/cgroup/memory";
const V2_MOUNT: &str = "/sys/fs/cgroup";

/// A small text file (/proc, cgroupfs), read with plain syscalls: std::fs costs a static init
/// several KiB.
fn read(path: &str) -> Option<String> {
    let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).ok()?;
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    // mountinfo on a busy host is large, but not this large: stop rather than grow forever.
    while text.len() < 1 << 22 {
        match nix::unistd::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(buf.get(..n)?),
            Err(Errno::EINTR) => {}
            Err(_) => return None,
        }
    }
    // One mount path that is not UTF-8 (mountinfo escapes only blanks and backslashes) must not
    // hide the others.
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The `oom_kill N` line of a memory.events or memory.oom_control file.
fn oom_kill_field(text: &str) -> Option<u64> {
    text.split('\n').find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == "oom_kill").then(|| value.trim().parse().ok())?
    })
}

/// A limit file's content: bytes, v2's `max`, or v1's "unlimited" (the page counter's maximum,
/// 2^63 - 1 rounded down to a page).
fn parse_limit(text: &str) -> Limit {
    match text.trim() {
        "max" => Limit::None,
        n => match n.parse::<u64>() {
            Ok(b) if b >= 1 << 62 => Limit::None,
            Ok(b) => Limit::Bytes(b),
            Err(_) => Limit::Unknown,
        },
    }
}

/// sigward's memory cgroup from /proc/self/cgroup, with its counter file's text as `counter`
/// read it (None: unreadable). A v1 memory controller wins over the v2 line (hybrid hosts have
/// both, the memory controller on v1).
///
/// Each hierarchy is first looked for where the runtimes mount it, with the cgroup's path as
/// /proc/self/cgroup gives it (a cgroup namespace shows `/`, the mount's root). The guess counts
/// only if `ours` says sigward is in that directory (its cgroup.procs lists sigward) and its
/// counter file reads: in a cgroup namespace with the host's hierarchy mounted, `/` names the
/// host's root cgroup, which has a counter too. Otherwise `mountinfo` (read at most once, only
/// then) says where the hierarchy is and from which root.
fn find(
    cgroups: &str,
    mountinfo: &dyn Fn() -> String,
    ours: &dyn Fn(&Cgroup) -> bool,
    counter: &dyn Fn(&Cgroup) -> Option<String>,
) -> Option<(Cgroup, Option<String>)> {
    let mut v1 = None;
    let mut v2 = None;
    for line in cgroups.split('\n') {
        // `ID:CONTROLLERS:PATH`; the path may hold ':'.
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path);
        } else if controllers.is_empty() {
            v2 = Some(path);
        }
    }
    let mounts = std::cell::OnceCell::new();
    let located = |v2: bool, path: &str| locate(mounts.get_or_init(mountinfo), v2, path);
    if let Some(path) = v1 {
        let guess = Cgroup::under(false, V1_MEMORY_MOUNT, path);
        if let Some(text) = ours(&guess).then(|| counter(&guess)).flatten() {
            return Some((guess, Some(text)));
        }
        if let Some(found) = located(false, path) {
            let text = counter(&found);
            return Some((found, text));
        }
    }
    // The v2 hierarchy counts only when its memory controller is on for this cgroup.
    let path = v2?;
    let guess = Cgroup::under(true, V2_MOUNT, path);
    if let Some(text) = ours(&guess).then(|| counter(&guess)).flatten() {
        return Some((guess, Some(text)));
    }
    let found = located(true, path)?;
    let text = counter(&found)?;
    Some((found, Some(text)))
}

/// The directory of cgroup `path` under a mount of its hierarchy. A mount shows the hierarchy
/// from its root (mountinfo's 4th field): Docker on cgroup v1 without a cgroup namespace mounts
/// `/docker/ID` at /sys/fs/cgroup/memory, and /proc/self/cgroup says `/docker/ID`, which is then
/// the mount point itself.
fn locate(mountinfo: &str, v2: bool, path: &str) -> Option<Cgroup> {
    for line in mountinfo.split('\n') {
        // `ID PARENT MAJ:MIN ROOT MOUNT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS`
        let mut fields = line.split(' ');
        let (Some(root), Some(mount)) = (fields.nth(3), fields.next()) else {
            continue;
        };
        let mut right = fields.skip_while(|f| *f != "-").skip(1);
        let (Some(fstype), Some(_source), Some(options)) =
            (right.next(), right.next(), right.next())
        else {
            continue;
        };
        let ours = if v2 {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && options.split(',').any(|o| o == "memory")
        };
        if !ours {
            continue;
        }
        let root = unescape(root);
        let Some(rest) = path.strip_prefix(root.strip_suffix('/').unwrap_or(&root)) else {
            continue;
        };
        if !(rest.is_empty() || rest.starts_with('/')) {
            continue; // `/docker/ab` is not under a root of `/docker/a`
        }
        return Some(Cgroup::under(v2, &unescape(mount), rest));
    }
    None
}

/// mountinfo writes space, tab, newline and backslash in paths as `\040`-style octal escapes.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let n = d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(n).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// `find` on a machine with no cgroup files at all: only mountinfo can place the cgroup.
    fn find_in(cgroups: &str, mounts: &str) -> Option<Cgroup> {
        find(cgroups, &|| mounts.to_string(), &|_| false, &|_| None).map(|(cg, _)| cg)
    }

    /// sigward is in every cgroup asked about.
    fn anywhere(_: &Cgroup) -> bool {
        true
    }

    /// A counter file that exists only in directory `dir`.
    fn only_in(dir: &'static str) -> impl Fn(&Cgroup) -> Option<String> {
        move |cg: &Cgroup| (cg.dir == dir).then(|| "oom_kill 3\n".to_string())
    }

    #[test]
    fn the_usual_mount_is_found_without_reading_mountinfo() {
        let no_mountinfo = || -> String { panic!("mountinfo read") };
        let (cg, text) = find(
            HYBRID_CGROUP,
            &no_mountinfo,
            &anywhere,
            &only_in("/sys/fs/cgroup/memory/process_api/34aa"),
        )
        .unwrap();
        assert!(!cg.v2);
        assert_eq!(cg.mount, "/sys/fs/cgroup/memory");
        assert_eq!(text.as_deref().and_then(oom_kill_field), Some(3));
        // A cgroup namespace: `/` is the mount itself.
        let (cg, _) = find(
            "4:memory:/\n",
            &no_mountinfo,
            &anywhere,
            &only_in("/sys/fs/cgroup/memory"),
        )
        .unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        // cgroup v2, as under Kubernetes on a v2 node.
        let (cg, _) = find(
            "0::/kubepods/pod1/c2\n",
            &no_mountinfo,
            &anywhere,
            &only_in("/sys/fs/cgroup/kubepods/pod1/c2"),
        )
        .unwrap();
        assert!(cg.v2);
        assert_eq!(cg.mount, "/sys/fs/cgroup");
    }

    #[test]
    fn a_guess_without_the_counter_file_falls_back_to_mountinfo_once() {
        // Docker on v1 without a cgroup namespace: /proc/self/cgroup says /docker/ID, but the
        // controller's mount shows that cgroup as its root.
        let reads = Cell::new(0);
        let mountinfo = || {
            reads.set(reads.get() + 1);
            "700 690 0:40 /docker/0123abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n"
                .to_string()
        };
        let (cg, text) = find(
            "12:memory:/docker/0123abc\n0::/\n",
            &mountinfo,
            &anywhere,
            &only_in("/sys/fs/cgroup/memory"),
        )
        .unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        assert!(text.is_some());
        assert_eq!(reads.get(), 1);
        // v2's root cgroup has no memory.events: neither the guess nor mountinfo's place counts.
        let v2_root = "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find("0::/\n", &|| v2_root.to_string(), &anywhere, &|_| None),
            None
        );
    }

    #[test]
    fn a_guess_that_does_not_hold_sigward_is_not_its_cgroup() {
        // A cgroup namespace (`/`) with the host's hierarchy mounted at the usual place: the
        // guess is the host's root cgroup, whose counter exists but never counts sigward's OOM
        // kills (cgroup v1 counts in the victim's own cgroup). mountinfo's root says so.
        let host_mount = "35 31 0:32 /../.. /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let not_ours = |cg: &Cgroup| cg.dir != "/sys/fs/cgroup/memory";
        let found = find(
            "4:memory:/\n",
            &|| host_mount.to_string(),
            &not_ours,
            &only_in("/sys/fs/cgroup/memory"),
        );
        assert_eq!(found, None, "not the host's root: unknown instead");
    }

    #[test]
    fn holds_reads_cgroup_procs() {
        let dir = std::env::temp_dir().join(format!("sigward-procs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "17\n1\n230\n").unwrap();
        let dir_s = dir.to_string_lossy().into_owned();
        let cg = Cgroup::under(false, &dir_s, "/");
        assert!(cg.holds(1));
        assert!(cg.holds(230));
        assert!(!cg.holds(23), "a prefix is not a match");
        assert!(!Cgroup::under(false, "/nonexistent", "/").holds(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const HYBRID_CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/34aa\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_uses_the_v1_memory_controller() {
        let cg = find_in(HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
        assert!(!cg.v2);
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory/process_api/34aa");
        assert_eq!(cg.mount, "/sys/fs/cgroup/memory");
    }

    #[test]
    fn docker_on_v1_mounts_the_containers_own_cgroup_at_the_controller() {
        let cgroups = "12:memory:/docker/0123abc\n0::/system.slice/docker.service\n";
        let mounts = "\
700 690 0:40 /docker/0123abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory
701 690 0:41 /docker/0123abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup rw,cpu,cpuacct
";
        let cg = find_in(cgroups, mounts).unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        // A cgroup namespace shows `/` for both: the same place.
        let cg = find_in(
            "4:memory:/\n",
            "7 6 0:40 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        )
        .unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        // A mount of another subtree is not ours.
        assert_eq!(
            find_in(
                "4:memory:/docker/ab\n",
                "7 6 0:40 /docker/a /x rw - cgroup cgroup rw,memory\n"
            ),
            None
        );
    }

    #[test]
    fn cgroup_v2_is_found_under_its_mount() {
        let mounts = "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        let cg = locate(mounts, true, "/kubepods/pod1/c2").unwrap();
        assert!(cg.v2);
        assert_eq!(cg.dir, "/sys/fs/cgroup/kubepods/pod1/c2");
        // Without the memory controller's files (here: none exist), v2 is not used.
        assert_eq!(find_in("0::/kubepods/pod1/c2\n", mounts), None);
    }

    #[test]
    fn a_mount_path_that_is_not_utf8_does_not_hide_the_others() {
        let file = std::env::temp_dir().join(format!("sigward-mounts-{}", std::process::id()));
        let mut text = b"1 0 0:1 / /mnt/caf\xe9 rw - ext4 /dev/sda1 rw\n".to_vec();
        text.extend_from_slice(HYBRID_MOUNTS.as_bytes());
        std::fs::write(&file, text).unwrap();
        let mounts = read(&file.to_string_lossy()).unwrap_or_default();
        std::fs::remove_file(&file).unwrap();
        let cg = find_in(HYBRID_CGROUP, &mounts).expect("the memory controller's mount");
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory/process_api/34aa");
    }

    #[test]
    fn mount_paths_are_unescaped() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/a\04"), r"/a\04");
    }

    #[test]
    fn counters_and_limits_parse() {
        let v2 = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(oom_kill_field(v2), Some(2));
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n";
        assert_eq!(oom_kill_field(v1), Some(5));
        assert_eq!(oom_kill_field("oom_kill_disable 0\nunder_oom 0\n"), None);
        assert_eq!(parse_limit("max\n"), Limit::None);
        assert_eq!(parse_limit("9223372036854771712\n"), Limit::None);
        assert_eq!(parse_limit("33554432\n"), Limit::Bytes(32 << 20));
        assert_eq!(parse_limit("x"), Limit::Unknown);
    }

    #[test]
    fn an_oom_victim_reaped_after_the_counter_was_read_is_still_the_oom_killers() {
        // The kernel counts a kill before it sends SIGKILL: a reading taken as the first victim
        // is reaped already counts a second victim still dying, reaped in a later pass.
        let dir = std::env::temp_dir().join(format!("sigward-oom-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let events = dir.join("memory.oom_control");
        let set = |n: u64| std::fs::write(&events, format!("oom_kill_disable 0\noom_kill {n}\n"));
        set(0).unwrap();
        let dir_s = dir.to_string_lossy().into_owned();
        let cgroup = Cgroup {
            v2: false,
            dir: dir_s.clone(),
            mount: dir_s,
        };
        let seen = cgroup.oom_kills();
        let mut c = OomCounter {
            cgroup: Some(cgroup),
            seen,
            unmatched: 0,
        };
        set(2).unwrap();
        assert_eq!(c.oom_kills_among(1), Some(1), "the first victim");
        assert_eq!(c.oom_kills_among(1), Some(1), "the second, counted before");
        assert_eq!(c.oom_kills_among(1), Some(0), "then a SIGKILL from outside");
        // Two deaths, one kill counted: one of them (which, the kernel does not say).
        set(3).unwrap();
        assert_eq!(c.oom_kills_among(2), Some(1));
        assert_eq!(c.oom_kills_among(1), Some(0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_cgroup_means_unknown_never_a_failure() {
        let mut c = OomCounter {
            cgroup: None,
            seen: None,
            unmatched: 0,
        };
        assert_eq!(c.oom_kills_among(1), None);
        assert_eq!(c.limit(), Limit::Unknown);
        let c = OomCounter::start(); // whatever this machine has: must not fail
        let _ = c.limit();
    }
}
