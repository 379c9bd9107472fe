//! The command is found and run as POSIX execvp(3) does it, in the static (musl) build too: a
//! shell script without `#!` runs with /bin/sh, PATH is searched past files sigward may not
//! execute, and exit statuses say not found (127) or not runnable (126).
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

fn write_file(path: &str, text: &str, mode: u32) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// sigward run to completion with PATH set (ending in the system's directories, where unshare is).
fn run_with_path(args: &[&str], path: &str) -> Done {
    let path = format!("{path}:/usr/sbin:/usr/bin:/sbin:/bin");
    Ns::start_with(args, |cmd| {
        cmd.env("PATH", &path);
    })
    .wait(T)
}

#[test]
fn a_script_without_a_shebang_runs_with_bin_sh() {
    let dir = Scratch::new();
    let script = dir.path("entrypoint");
    write_file(&script, "echo \"ran $1\"\nexit 3\n", 0o755);
    for options in [&[][..], &["--listen", "tcp://127.0.0.1:0"]] {
        let mut args = options.to_vec();
        args.extend(["--", &script, "with-arg"]);
        let done = run(&args);
        assert_eq!(
            done.stdout.trim(),
            "ran with-arg",
            "{options:?}: {}",
            done.stderr
        );
        assert_eq!(done.code, 3, "{options:?}: {}", done.stderr);
    }
}

#[test]
fn a_script_without_a_shebang_found_on_path_runs_with_bin_sh() {
    let dir = Scratch::new();
    write_file(&dir.path("entrypoint"), "echo \"ran $0\"\n", 0o755);
    let done = run_with_path(&["--", "entrypoint"], &dir.path(""));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(
        done.stdout.trim(),
        format!("ran {}/entrypoint", dir.path(""))
    );
}

#[test]
fn path_search_goes_past_a_file_sigward_may_not_execute() {
    let dir = Scratch::new();
    std::fs::create_dir(dir.path("a")).unwrap();
    std::fs::create_dir(dir.path("b")).unwrap();
    write_file(&dir.path("a/app"), "#!/bin/sh\necho a\n", 0o644);
    write_file(&dir.path("b/app"), "#!/bin/sh\necho b\n", 0o755);
    let path = format!("{}:{}", dir.path("a"), dir.path("b"));
    let done = run_with_path(&["--", "app"], &path);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "b");
}

#[test]
fn path_search_reports_permission_denied_when_nothing_it_found_could_run() {
    let dir = Scratch::new();
    write_file(&dir.path("app-nobody-else-has"), "#!/bin/sh\n", 0o644);
    let done = run_with_path(&["--", "app-nobody-else-has"], &dir.path(""));
    assert_eq!(done.code, 126, "{}", done.stderr);
    assert_eq!(
        done.stderr.trim(),
        "sigward: cannot run 'app-nobody-else-has': Permission denied"
    );
}

#[test]
fn an_empty_path_entry_is_the_current_directory() {
    let dir = Scratch::new();
    write_file(&dir.path("here"), "#!/bin/sh\necho here\n", 0o755);
    let cwd = dir.0.clone();
    let done = Ns::start_with(&["--", "here"], |cmd| {
        cmd.env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin:")
            .current_dir(&cwd);
    })
    .wait(T);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "here");
}

#[test]
fn a_directory_on_path_named_like_the_command_is_passed_over() {
    // execve of a directory fails with EACCES: remembered, and the search goes on.
    let dir = Scratch::new();
    std::fs::create_dir_all(dir.path("a/app")).unwrap();
    std::fs::create_dir(dir.path("b")).unwrap();
    write_file(&dir.path("b/app"), "#!/bin/sh\necho b\n", 0o755);
    let path = format!("{}:{}", dir.path("a"), dir.path("b"));
    let done = run_with_path(&["--", "app"], &path);
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert_eq!(done.stdout.trim(), "b");
}
