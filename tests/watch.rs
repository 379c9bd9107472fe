//! `--watch`: configuration changes on disk become one action for the app (SIGHUP by default, or
//! a restart), for the real ways configuration is replaced: the kubelet's atomic writer (a new
//! `..<timestamp>` directory, `..data_tmp` renamed over `..data`, the old directory removed),
//! a file rewritten in place, an editor's write-to-temp-and-rename, a file deleted and recreated,
//! a path that appears only later. Reads, the writer's private steps, and anything during the
//! stop sequence never act. Each test counts what the probe (sigward's app, PID 2) received.
mod common;
use common::*;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(20);
/// SIGHUP as the probe records it.
const HUP: &str = "sig 1 ";

/// sigward as PID 1 watching `paths` (absolute, or under the scratch dir) with `options`, running
/// the probe.
/// Returns once the probe waits for signals: from then on the watches are armed (sigward arms
/// them before it starts the app).
fn watching(paths: &[&str], options: &[&str]) -> Ns {
    watching_with(paths, options, &[])
}

fn watching_with(paths: &[&str], options: &[&str], probe_words: &[&str]) -> Ns {
    let mut args: Vec<String> = Vec::new();
    for p in paths {
        args.push("--watch".into());
        args.push(match p.starts_with('/') {
            true => p.to_string(),
            false => format!("{{dir}}{p}"),
        });
    }
    args.extend(options.iter().map(|s| s.to_string()));
    args.extend(["--".into(), "{probe}".into(), "log={log}".into()]);
    args.extend(probe_words.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let ns = Ns::start_with(&args, only_stdio);
    ns.wait_record("ready", T);
    ns
}

/// sigward with `options` running generations of `sh -c SCRIPT`, watching `app.conf` in the
/// scratch dir (300 ms debounce).
fn generations_watching_app_conf(options: &[&str], script: &str) -> Ns {
    let watch = ["--watch", "{dir}app.conf", "--watch-debounce", "300ms"];
    sh_under(&[&watch, options].concat(), script)
}

/// `app.conf` (v1) in a scratch dir of the test's, written before sigward starts watching it.
fn watching_a_written_file() -> (Scratch, String, Ns) {
    let dir = Scratch::new();
    let file = dir.path("app.conf");
    std::fs::write(&file, "v1").unwrap();
    let ns = watching(&[&file], DEBOUNCE);
    (dir, file, ns)
}

/// Waits for the `n`-th SIGHUP, then for three more quiet windows, and returns how many came.
fn hups_after(ns: &Ns, n: usize, debounce: Duration) -> usize {
    let start = Instant::now();
    while ns.count_records(HUP) < n {
        assert!(
            start.elapsed() < T,
            "only {} SIGHUPs, expected {n}:\n{}",
            ns.count_records(HUP),
            ns.records()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(debounce * 3);
    ns.count_records(HUP)
}

/// No action for `quiet`: the count stays where it is.
fn hups_during(ns: &Ns, quiet: Duration) -> usize {
    std::thread::sleep(quiet);
    ns.count_records(HUP)
}

/// The kubelet's atomic writer (kubernetes/pkg/volume/util/atomic_writer.go), step by step: the
/// payload goes into a new `..<timestamp>` directory, `..data_tmp` is pointed at it and renamed
/// over `..data`, visible `key -> ..data/key` symlinks are made for new keys, and the old
/// timestamped directory is removed (`remove_old`: now; else the caller does it later).
struct Volume {
    dir: String,
    n: u32,
}

impl Volume {
    /// A volume with `keys`, as the kubelet leaves it before the app starts.
    fn new(dir: String, keys: &[(&str, &str)]) -> Volume {
        std::fs::create_dir_all(&dir).unwrap();
        let mut v = Volume { dir, n: 0 };
        v.update(keys, true);
        v
    }

    fn ts(&self, n: u32) -> String {
        format!("{}/..2026_12_02_12_00_{:02}.{n:09}", self.dir, n % 60)
    }

    /// One update: returns the old timestamped directory (already removed if `remove_old`).
    fn update(&mut self, keys: &[(&str, &str)], remove_old: bool) -> String {
        let old = self.ts(self.n);
        self.n += 1;
        let new = self.ts(self.n);
        std::fs::create_dir(&new).unwrap();
        for (k, v) in keys {
            std::fs::write(format!("{new}/{k}"), v).unwrap();
        }
        let tmp = format!("{}/..data_tmp", self.dir);
        symlink(Path::new(&new).file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, format!("{}/..data", self.dir)).unwrap();
        for (k, _) in keys {
            let visible = format!("{}/{k}", self.dir);
            if std::fs::symlink_metadata(&visible).is_err() {
                symlink(format!("..data/{k}"), &visible).unwrap();
            }
        }
        if remove_old && self.n > 1 {
            std::fs::remove_dir_all(&old).unwrap();
        }
        old
    }
}

const D: Duration = Duration::from_millis(400);
const DEBOUNCE: &[&str] = &["--watch-debounce", "400ms"];

#[test]
fn kubelet_atomic_update_of_a_configmap_volume_is_one_sighup_per_update() {
    let dir = Scratch::new();
    let mut vol = Volume::new(dir.path("config"), &[("a", "1"), ("b", "1"), ("c", "1")]);
    let ns = watching(&[&vol.dir], DEBOUNCE);
    // 2 natively, 3 under QEMU (whose own thread takes pid 2).
    let app = field(&ns.wait_record("start", T), "pid").to_string();
    ns.wait_record("ready", T);
    assert_eq!(hups_during(&ns, D * 2), 0, "nothing changed yet");
    // Three keys change, one new key appears: one update, one action.
    let old = vol.update(&[("a", "2"), ("b", "2"), ("c", "2"), ("d", "2")], false);
    assert_eq!(hups_after(&ns, 1, D), 1, "{}", ns.records());
    // The writer's last step, removing the old timestamped directory, is not a change.
    std::fs::remove_dir_all(&old).unwrap();
    assert_eq!(
        hups_during(&ns, D * 3),
        1,
        "the old directory's removal fired"
    );
    vol.update(&[("a", "3")], true);
    assert_eq!(hups_after(&ns, 2, D), 2);
    let done = ns.stop(T);
    assert!(
        done.stderr.contains(&format!(
            "config changed ({}/..data): sent SIGHUP to process group {app}",
            vol.dir
        )),
        "the line names what changed:\n{}",
        done.stderr
    );
}

#[test]
fn a_watched_key_of_a_configmap_volume_fires_on_the_data_swap() {
    let dir = Scratch::new();
    let mut vol = Volume::new(dir.path("config"), &[("app.yaml", "1"), ("other", "1")]);
    let key = format!("{}/app.yaml", vol.dir);
    let ns = watching(&[&key], DEBOUNCE);
    vol.update(&[("app.yaml", "2"), ("other", "2")], true);
    assert_eq!(hups_after(&ns, 1, D), 1);
    vol.update(&[("app.yaml", "3"), ("other", "2")], true);
    assert_eq!(hups_after(&ns, 2, D), 2);
}

#[test]
fn a_hundred_rapid_updates_make_one_action() {
    let dir = Scratch::new();
    let mut vol = Volume::new(dir.path("config"), &[("a", "0")]);
    // The default debounce (1s): the updates only need to come less than 1s apart.
    let ns = watching(&[&vol.dir], &[]);
    let start = Instant::now();
    for i in 0..100 {
        vol.update(&[("a", &i.to_string()), ("b", "x")], true);
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(9), "too slow to test: {took:?}");
    assert_eq!(
        hups_after(&ns, 1, Duration::from_secs(1)),
        1,
        "{}",
        ns.records()
    );
}

#[test]
fn a_file_rewritten_in_place_is_one_action() {
    let ns = watching(&["app.conf"], DEBOUNCE);
    // Not created before start: write it first, then wait out the action it makes.
    let file = ns.dir.path("app.conf");
    std::fs::write(&file, "a").unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1);
    // Open, truncate, write twice, close: modify events and one close-after-write.
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&file)
            .unwrap();
        f.write_all(b"first half ").unwrap();
        f.write_all(b"second half").unwrap();
    }
    assert_eq!(hups_after(&ns, 2, D), 2);
}

#[test]
fn an_editors_write_to_temp_and_rename_is_one_action() {
    let (dir, file, ns) = watching_a_written_file();
    // A temp file beside it (which alone changes nothing watched), then renamed over it.
    let tmp = dir.path(".app.conf.swp");
    std::fs::write(&tmp, "v2").unwrap();
    assert_eq!(hups_during(&ns, D * 2), 0, "a sibling is not the file");
    std::fs::rename(&tmp, &file).unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1);
}

#[test]
fn a_file_deleted_and_recreated_is_one_action() {
    let (_dir, file, ns) = watching_a_written_file();
    std::fs::remove_file(&file).unwrap();
    std::fs::write(&file, "v2").unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1);
    // Still watched afterwards: the new file's changes count too.
    std::fs::write(&file, "v3").unwrap();
    assert_eq!(hups_after(&ns, 2, D), 2);
}

#[test]
fn reading_watched_files_does_nothing() {
    let dir = Scratch::new();
    let vol = Volume::new(dir.path("config"), &[("a", "1")]);
    let file = dir.path("plain.conf");
    std::fs::write(&file, "v1").unwrap();
    let ns = watching(&[&vol.dir, &file], &["--watch-debounce", "300ms"]);
    for _ in 0..20 {
        std::fs::read(&file).unwrap();
        std::fs::read(format!("{}/a", vol.dir)).unwrap();
        std::fs::read_dir(&vol.dir).unwrap().for_each(drop);
    }
    // atime set explicitly, as a strict-atime mount does on each read (utimensat: no open for
    // writing, whose close would be a write).
    let read_only = std::fs::File::open(&file).unwrap();
    read_only
        .set_times(std::fs::FileTimes::new().set_accessed(std::time::SystemTime::now()))
        .unwrap();
    assert_eq!(hups_during(&ns, Duration::from_millis(1500)), 0);
}

#[test]
fn a_change_during_the_stop_sequence_is_not_acted_on() {
    // The probe drains for 1.5s after SIGTERM, then exits 0.
    let ns = watching_with(&["app.conf"], DEBOUNCE, &["on-term=drain:1500:0"]);
    let file = ns.dir.path("app.conf");
    // Pending when the stop sequence begins: dropped.
    std::fs::write(&file, "v1").unwrap();
    ns.signal(libc::SIGTERM);
    ns.wait_record("sig 15 ", T);
    // And during it: dropped too.
    std::fs::write(&file, "v2").unwrap();
    std::thread::sleep(D * 2);
    std::fs::write(&file, "v3").unwrap();
    let done = ns.wait(T);
    assert_eq!(done.code, 0, "{}", done.stderr);
    done.assert_signals(&[libc::SIGTERM], "only the stop signal");
    done.assert_said("during the stop sequence: not acting on it");
}

#[test]
fn a_path_missing_at_start_is_waited_for_and_acted_on_once_it_appears() {
    let ns = watching(&["etc/app/app.conf"], DEBOUNCE);
    assert_eq!(hups_during(&ns, D * 2), 0);
    // Its directories appear first: not yet the file.
    std::fs::create_dir(ns.dir.path("etc")).unwrap();
    std::fs::create_dir(ns.dir.path("etc/app")).unwrap();
    assert_eq!(
        hups_during(&ns, D * 3),
        0,
        "a directory on the way is not the file"
    );
    std::fs::write(ns.dir.path("etc/app/app.conf"), "v1").unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1);
    // From then on it is watched as any file.
    std::fs::write(ns.dir.path("etc/app/app.conf"), "v2").unwrap();
    assert_eq!(hups_after(&ns, 2, D), 2);
    let done = ns.stop(T);
    done.assert_said("etc/app/app.conf does not exist yet: waiting for it (watching ");
}

#[test]
fn a_watched_file_whose_directory_is_replaced_is_one_action_and_stays_watched() {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("conf")).unwrap();
    std::fs::write(dir.path("conf/app.conf"), "v1").unwrap();
    let ns = watching(&[&dir.path("conf/app.conf")], DEBOUNCE);
    std::fs::create_dir(dir.path("conf.new")).unwrap();
    std::fs::write(dir.path("conf.new/app.conf"), "v2").unwrap();
    std::fs::rename(dir.path("conf"), dir.path("conf.old")).unwrap();
    std::fs::rename(dir.path("conf.new"), dir.path("conf")).unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1);
    // The old directory is no longer what is watched; the new one is.
    std::fs::write(dir.path("conf.old/app.conf"), "old").unwrap();
    assert_eq!(
        hups_during(&ns, D * 3),
        1,
        "the replaced directory still fired"
    );
    std::fs::write(dir.path("conf/app.conf"), "v3").unwrap();
    assert_eq!(hups_after(&ns, 2, D), 2);
}

#[test]
fn on_change_signal_sends_the_named_signal_not_rewritten() {
    // -r USR1:0 drops a SIGUSR1 sent to sigward; the watch's own signal is what --on-change names.
    let ns = watching(
        &["app.conf"],
        &[
            "--watch-debounce",
            "300ms",
            "--on-change",
            "signal:USR1",
            "-r",
            "USR1:0",
        ],
    );
    std::fs::write(ns.dir.path("app.conf"), "v1").unwrap();
    ns.wait_record("sig 10 ", T);
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(ns.count_records("sig "), 1, "{}", ns.records());
}

#[test]
fn sigward_watch_separates_paths_with_colons() {
    let dir = Scratch::new();
    let watch = format!("{}:{}", dir.path("a.conf"), dir.path("b.conf"));
    let ns = Ns::start_with(
        &["--watch-debounce", "300ms", "--", "{probe}", "log={log}"],
        |cmd| {
            only_stdio(cmd);
            cmd.env("SIGWARD_WATCH", &watch);
        },
    );
    ns.wait_record("ready", T);
    std::fs::write(dir.path("b.conf"), "v1").unwrap();
    assert_eq!(hups_after(&ns, 1, Duration::from_millis(300)), 1);
    std::fs::write(dir.path("a.conf"), "v1").unwrap();
    assert_eq!(hups_after(&ns, 2, Duration::from_millis(300)), 2);
}

#[test]
fn the_inotify_fd_never_reaches_the_app() {
    let ns = watching(&["app.conf"], &[]);
    let start = ns.wait_record("start", T);
    assert_eq!(field(&start, "fds"), "0,1,2");
    let sigward_fds = fds_of(ns.pid1);
    assert!(
        sigward_fds.iter().any(|(_, l)| l.contains("inotify")),
        "sigward holds its inotify fd after its fd sweep: {sigward_fds:?}"
    );
}

#[test]
fn idle_with_a_watch_armed_costs_no_wake_ups() {
    let dir = Scratch::new();
    let vol = Volume::new(dir.path("config"), &[("a", "1")]);
    let ns = watching(&[&vol.dir, &dir.path("missing/app.conf")], &[]);
    let switches = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", ns.pid1)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    // Let start-up settle (the app's start, the fd sweep), then count.
    let before = eventually(
        Duration::from_secs(5),
        || {
            let a = switches();
            std::thread::sleep(Duration::from_millis(300));
            (a, switches())
        },
        |(a, b)| a == b,
    );
    assert_eq!(before.0, before.1, "sigward did not settle");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(switches(), before.1, "sigward woke up while idle");
}

#[test]
fn on_change_restart_with_listen_starts_a_new_generation() {
    let script = "exec {probe} log={dir}gen$SIGWARD_GENERATION notify";
    let ns = generations_watching_app_conf(
        &["--listen", "tcp://127.0.0.1:0", "--on-change", "restart"],
        script,
    );
    wait_line(&ns.gen_log(1), "notified ok=true", T);
    std::fs::write(ns.dir.path("app.conf"), "v2").unwrap();
    let started = wait_line(&ns.gen_log(2), "start", T);
    let env = wait_line(&ns.gen_log(2), "env", T);
    assert_eq!(field(&env, "SIGWARD_GENERATION"), "2", "{started}");
    // The old generation is retired with the stop signal; neither got SIGHUP.
    wait_line(&ns.gen_log(1), "sig 15 ", T);
    let g1 = std::fs::read_to_string(ns.gen_log(1)).unwrap();
    assert!(!g1.contains(HUP), "{g1}");
    let done = ns.stop(T);
    done.assert_said("config changed (");
    done.assert_said("app.conf): restarting the app");
    done.assert_said("configuration changed: starting generation 2 as pid");
}

#[test]
fn a_change_during_a_restart_is_acted_on_once_after_it() {
    // Generation 1 is ready at once; generation 2 only when it gets SIGUSR2.
    let script = "if [ \"$SIGWARD_GENERATION\" = 1 ]; then exec {probe} log={dir}gen1 notify; \
                  else exec {probe} log={dir}gen$SIGWARD_GENERATION notify-on=12; fi";
    let ns = generations_watching_app_conf(
        &[
            "--listen",
            "tcp://127.0.0.1:0",
            "--on-change",
            "signal:USR1",
        ],
        script,
    );
    ns.restart_to_generation_2(T);
    // Two changes while generation 2 is starting: the action waits.
    std::fs::write(ns.dir.path("app.conf"), "v2").unwrap();
    std::thread::sleep(Duration::from_millis(900));
    std::fs::write(ns.dir.path("app.conf"), "v3").unwrap();
    std::thread::sleep(Duration::from_millis(900));
    let usr1 = |n: u32| {
        std::fs::read_to_string(ns.gen_log(n))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("sig 10 "))
            .count()
    };
    assert_eq!((usr1(1), usr1(2)), (0, 0), "acted during the restart");
    // Generation 2 becomes ready and takes over; generation 1 exits on its stop signal.
    ns.signal(libc::SIGUSR2);
    wait_line(&ns.gen_log(2), "sig 10 ", T);
    std::thread::sleep(Duration::from_millis(900));
    assert_eq!(usr1(2), 1, "once, after the restart");
    assert_eq!(usr1(1), 0, "the retired generation is not signalled");
    let done = ns.stop(T);
    done.assert_said("generation 2 is still starting; acting once the restart is over");
}

#[test]
fn on_change_restart_without_listen_restarts_in_place_with_the_stop_signal() {
    let script = "exec {probe} log={dir}gen$SIGWARD_GENERATION";
    // The probe records QUIT and goes on: the grace deadline (1 s) ends each generation.
    let ns = generations_watching_app_conf(
        &["-S", "QUIT", "-t", "1s", "--on-change", "restart"],
        script,
    );
    wait_line(&ns.gen_log(1), "ready", T);
    std::fs::write(ns.dir.path("app.conf"), "v2").unwrap();
    // The old generation is drained with the stop signal (QUIT), then the same command runs again.
    wait_line(&ns.gen_log(1), "sig 3 ", T);
    // Its log is named after SIGWARD_GENERATION=2.
    wait_line(&ns.gen_log(2), "ready", T);
    let g1 = std::fs::read_to_string(ns.gen_log(1)).unwrap();
    assert!(!g1.contains(HUP) && !g1.contains("sig 15 "), "{g1}");
    ns.signal(libc::SIGQUIT);
    let done = ns.wait(T);
    done.assert_said("app.conf): restarting the app");
    done.assert_said("configuration changed: restarting in place: stopping generation 1");
    done.assert_said("generation 2 started as pid");
}

#[test]
fn a_watched_symlink_into_a_volume_mounted_elsewhere_fires_on_its_update() {
    // The image links its config path into the volume: app.yaml -> /abs/config/app.yaml (an
    // absolute target, another directory), itself `app.yaml -> ..data/app.yaml`.
    let dir = Scratch::new();
    let mut vol = Volume::new(dir.path("config"), &[("app.yaml", "1"), ("other", "1")]);
    std::fs::create_dir(dir.path("app")).unwrap();
    let link = dir.path("app/app.yaml");
    symlink(format!("{}/app.yaml", vol.dir), &link).unwrap();
    let ns = watching(&[&link], DEBOUNCE);
    vol.update(&[("app.yaml", "2"), ("other", "1")], true);
    assert_eq!(hups_after(&ns, 1, D), 1, "{}", ns.records());
    vol.update(&[("app.yaml", "3"), ("other", "1")], true);
    assert_eq!(hups_after(&ns, 2, D), 2, "{}", ns.records());
}

#[test]
fn a_watched_symlink_fires_when_its_target_is_rewritten_where_it_lives() {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("srv")).unwrap();
    std::fs::create_dir(dir.path("etc")).unwrap();
    let real = dir.path("srv/app.conf");
    std::fs::write(&real, "v1").unwrap();
    let link = dir.path("etc/app.conf");
    symlink(&real, &link).unwrap();
    let ns = watching(&[&link], DEBOUNCE);
    std::fs::write(&real, "v2").unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1, "{}", ns.records());
    // An editor's temp-and-rename where the file lives.
    std::fs::write(dir.path("srv/.app.conf.tmp"), "v3").unwrap();
    std::fs::rename(dir.path("srv/.app.conf.tmp"), &real).unwrap();
    assert_eq!(hups_after(&ns, 2, D), 2, "{}", ns.records());
}

#[test]
fn a_watched_directory_symlink_pointed_elsewhere_is_one_action_and_follows_it() {
    // A `current -> releases/v1` link swapped by rename (`ln -s v2 tmp && mv -T tmp current`):
    // nothing in either directory changes, the link does.
    let dir = Scratch::new();
    for v in ["v1", "v2"] {
        std::fs::create_dir_all(dir.path(&format!("releases/{v}"))).unwrap();
        std::fs::write(dir.path(&format!("releases/{v}/app.conf")), v).unwrap();
    }
    let current = dir.path("current");
    symlink(dir.path("releases/v1"), &current).unwrap();
    let ns = watching(&[&current], DEBOUNCE);
    symlink(dir.path("releases/v2"), dir.path("current.tmp")).unwrap();
    std::fs::rename(dir.path("current.tmp"), &current).unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1, "{}", ns.records());
    // From then on the new target is what is watched, not the old one.
    std::fs::write(dir.path("releases/v1/app.conf"), "old").unwrap();
    assert_eq!(hups_during(&ns, D * 3), 1, "the old target still fired");
    std::fs::write(dir.path("releases/v2/app.conf"), "v2'").unwrap();
    assert_eq!(hups_after(&ns, 2, D), 2, "{}", ns.records());
}

/// A bind mount of one file over another (`docker run -v ./app.conf:/etc/app.conf`), undone on
/// drop. Made in the test's mount namespace; sigward's namespace starts as a copy of it.
struct FileMount(std::ffi::CString);

impl FileMount {
    fn new(source: &str, target: &str) -> FileMount {
        let c = |s: &str| std::ffi::CString::new(s).unwrap();
        let (s, t) = (c(source), c(target));
        // SAFETY: valid NUL-terminated paths; a bind mount with no data.
        let r = unsafe {
            libc::mount(
                s.as_ptr(),
                t.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "bind mount: {}", std::io::Error::last_os_error());
        FileMount(t)
    }
}

impl Drop for FileMount {
    fn drop(&mut self) {
        // SAFETY: unmounts the bind mount this value made.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_watched_file_that_is_a_bind_mount_fires_when_rewritten_in_place() {
    // Its events reach the directory it came from, not the one it is mounted in: only a watch
    // of the file itself sees them.
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("host")).unwrap();
    std::fs::create_dir(dir.path("etc")).unwrap();
    std::fs::write(dir.path("host/app.conf"), "v1").unwrap();
    std::fs::write(dir.path("etc/app.conf"), "").unwrap();
    let _mount = FileMount::new(&dir.path("host/app.conf"), &dir.path("etc/app.conf"));
    let ns = watching(&[&dir.path("etc/app.conf")], DEBOUNCE);
    std::fs::write(dir.path("host/app.conf"), "v2").unwrap();
    assert_eq!(hups_after(&ns, 1, D), 1, "{}", ns.records());
    let done = ns.stop(T);
    done.assert_said(&format!("config changed ({})", dir.path("etc/app.conf")));
}

#[test]
fn a_file_missing_from_an_existing_directory_is_said_to_be_waited_for() {
    let ns = watching(&["app.conf"], DEBOUNCE);
    let (file, dir) = (ns.dir.path("app.conf"), ns.dir.path(""));
    let done = ns.stop(T);
    let dir = dir.trim_end_matches('/');
    done.assert_said(&format!(
        "{file} does not exist yet: waiting for it (watching {dir})"
    ));
}

#[test]
fn a_change_deferred_by_a_restart_that_cannot_start_again_is_said_to_be_dropped() {
    let dir = Scratch::new();
    let app = dir.path("app");
    std::fs::copy(probe(), &app).unwrap();
    let conf = dir.path("app.conf");
    // The probe drains 1.5 s on SIGTERM: the change falls due during the restart's drain.
    let ns = Ns::start(&[
        "--restart-signal",
        "USR2",
        "--watch",
        &conf,
        "--watch-debounce",
        "300ms",
        "--",
        &app,
        "log={log}",
        "on-term=drain:1500:0",
    ]);
    ns.wait_record("ready", T);
    std::fs::remove_file(&app).unwrap();
    ns.signal(libc::SIGUSR2);
    ns.wait_record("sig 15 ", T);
    std::fs::write(&conf, "v2").unwrap();
    let done = ns.wait(T);
    assert_eq!(done.code, 127, "{}", done.stderr);
    assert_eq!(signals_seen(&done.records), vec![libc::SIGTERM]);
    let deferred = done.stderr.find("acting once the restart is over");
    let dropped = done
        .stderr
        .find("during the stop sequence: not acting on it");
    assert!(
        deferred.is_some() && dropped > deferred,
        "deferred, then dropped as sigward exits:\n{}",
        done.stderr
    );
}

#[test]
fn a_change_during_a_restart_in_place_is_read_by_the_next_generation_not_signalled_into_its_start()
{
    // The old generation drains 1.5 s on SIGTERM; the change falls due meanwhile. The next
    // generation starts after it, so it reads the new configuration: a SIGHUP sent as it starts,
    // before it could handle one, would kill it.
    let script = "exec {probe} log={dir}gen$SIGWARD_GENERATION on-term=drain:1500:0";
    let mut ns = generations_watching_app_conf(&["--restart-signal", "USR2"], script);
    wait_line(&ns.gen_log(1), "ready", T);
    ns.signal(libc::SIGUSR2);
    wait_line(&ns.gen_log(1), "sig 15 ", T);
    std::fs::write(ns.dir.path("app.conf"), "v2").unwrap();
    wait_line(&ns.gen_log(2), "start", T);
    std::thread::sleep(Duration::from_millis(1200));
    let g2 = std::fs::read_to_string(ns.gen_log(2)).unwrap_or_default();
    assert!(ns.alive(), "sigward ended: {g2}");
    assert!(g2.contains("ready") && !g2.contains(HUP), "{g2}");
    let done = ns.stop(T);
    done.assert_said("app.conf): generation 2 started after it and reads it");
}
