//! Why did it die: the container's memory cgroup says whether a SIGKILL was the OOM killer's.
//!
//! Exit status 137 only says "SIGKILL". The kernel's OOM killer, a `kill -9` from outside and
//! sigward's own deadline all look alike in waitpid. The one witness is the memory cgroup's
//! `oom_kill` counter, which the kernel raises *before* it sends the victim SIGKILL: cgroup v2
//! `memory.events`, cgroup v1 `memory.oom_control`. sigward reads it once at start (the baseline)
//! and again only when a process it reaped died of a SIGKILL it did not send: a normal run costs
//! no cgroup read after start. Missing files never fail anything: the answer is then "unknown".
//!
//! The counter counts kills, not victims: when the OOM killer kills a process sigward does not
//! reap (a worker its parent reaps), the rise is only seen with the next SIGKILL sigward reaps.
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
}

impl OomCounter {
    /// Finds the cgroup and takes the baseline reading; never fails.
    pub fn start() -> OomCounter {
        let cgroup = find(
            &read("/proc/self/cgroup").unwrap_or_default(),
            &read("/proc/self/mountinfo").unwrap_or_default(),
        );
        let seen = cgroup.as_ref().and_then(Cgroup::oom_kills);
        OomCounter { cgroup, seen }
    }

    /// How many OOM kills happened since the last reading (None: unknown), and takes this one as
    /// the new last reading.
    pub fn rise(&mut self) -> Option<u64> {
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
    /// `oom_kill N` of memory.events (v2) or memory.oom_control (v1).
    fn oom_kills(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        oom_kill_field(&read(&format!("{}/{file}", self.dir))?)
    }
}

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
    String::from_utf8(text).ok()
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

/// sigward's memory cgroup from /proc/self/cgroup and /proc/self/mountinfo. A v1 memory
/// controller wins over the v2 line (hybrid hosts have both, the memory controller on v1).
fn find(cgroups: &str, mountinfo: &str) -> Option<Cgroup> {
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
    if let Some(path) = v1 {
        let found = locate(mountinfo, false, path);
        if found.is_some() {
            return found;
        }
    }
    // The v2 hierarchy counts only when its memory controller is on for this cgroup.
    locate(mountinfo, true, v2?).filter(|cg| read(&format!("{}/memory.events", cg.dir)).is_some())
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
        let mount = unescape(mount);
        let dir = format!("{mount}{}", rest.strip_suffix('/').unwrap_or(rest));
        return Some(Cgroup { v2, dir, mount });
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

    const HYBRID_CGROUP: &str = "9:name=systemd:/\n4:memory:/process_api/34aa\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn a_hybrid_host_uses_the_v1_memory_controller() {
        let cg = find(HYBRID_CGROUP, HYBRID_MOUNTS).unwrap();
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
        let cg = find(cgroups, mounts).unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        // A cgroup namespace shows `/` for both: the same place.
        let cg = find(
            "4:memory:/\n",
            "7 6 0:40 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        )
        .unwrap();
        assert_eq!(cg.dir, "/sys/fs/cgroup/memory");
        // A mount of another subtree is not ours.
        assert_eq!(
            find(
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
        assert_eq!(find("0::/kubepods/pod1/c2\n", mounts), None);
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
    fn no_cgroup_means_unknown_never_a_failure() {
        let mut c = OomCounter {
            cgroup: None,
            seen: None,
        };
        assert_eq!(c.rise(), None);
        assert_eq!(c.limit(), Limit::Unknown);
        let c = OomCounter::start(); // whatever this machine has: must not fail
        let _ = c.limit();
    }
}
