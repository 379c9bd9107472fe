//! Stamps the binary with the git commit it was built from, for `--version`.
//!
//! Two compile-time variables, read by `src/cli.rs`:
//! - `SIGWARD_BUILD_COMMIT`: the first 7 hex digits of HEAD, or `unknown`. Always exactly 7
//!   characters: Docker puts it after `git.` in the tini-format line that `docker info` parses, and
//!   older daemons slice their own expected init commit to its length (a longer one panics there).
//! - `SIGWARD_BUILD_GIT`: the same, plus `, dirty` when the work tree had uncommitted changes.
//!
//! Reproducible by construction: no time, no path, no host name goes in, only the commit and the
//! tree's state, so two builds of the same tree print the same version wherever and whenever they
//! run (there is nothing for SOURCE_DATE_EPOCH to replace). The commit is cut from the full hash,
//! not `--short`, whose length grows with the number of objects in a clone.
//!
//! Without git or without a `.git` next to Cargo.toml (a crate tarball, a Docker build context
//! that excludes `.git`) the commit is `unknown` and the build goes on; set
//! `SIGWARD_BUILD_COMMIT=<hex>` in the build's environment to stamp such a build by hand.
use std::path::{Path, PathBuf};
use std::process::Command;

const UNKNOWN: &str = "unknown";
const LEN: usize = 7;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SIGWARD_BUILD_COMMIT");
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let (commit, dirty) = match std::env::var("SIGWARD_BUILD_COMMIT") {
        Ok(given) if !given.is_empty() => (given_commit(&given), false),
        _ => from_git(&root).unwrap_or_else(|| (UNKNOWN.to_string(), false)),
    };
    let described = if dirty {
        format!("{commit}, dirty")
    } else {
        commit.clone()
    };
    println!("cargo:rustc-env=SIGWARD_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=SIGWARD_BUILD_GIT={described}");
}

/// A commit handed in through the environment: hex, at least 7 digits; anything else stops the
/// build rather than stamping a version nobody can trace.
fn given_commit(given: &str) -> String {
    let hex = given.trim().to_ascii_lowercase();
    if hex.len() < LEN || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        panic!(
            "SIGWARD_BUILD_COMMIT={given:?}: expected a git commit id (at least {LEN} hex digits)"
        );
    }
    hex[..LEN].to_string()
}

/// The commit and dirtiness of the repository at `root`, and what to watch to keep them current;
/// None when `root` is no git work tree (a `.git` further up belongs to some other project).
fn from_git(root: &Path) -> Option<(String, bool)> {
    if !root.join(".git").exists() {
        return None;
    }
    let hash = git(root, &["rev-parse", "--verify", "HEAD"])?;
    if hash.len() < LEN || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    watch(root);
    // Untracked files count (a new module is part of the build until it is committed); ignored
    // ones (target/) do not.
    let dirty = git(root, &["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
    Some((hash[..LEN].to_string(), dirty))
}

/// Re-runs this script when HEAD moves (a commit, a checkout, a branch reset) or the tree's state
/// may have changed. Worktrees keep HEAD and the index in their own git dir and refs in the common
/// one; `git rev-parse --git-path` knows which is where. Only existing paths are named: cargo
/// re-runs a script on every build for a path that does not exist. Edits to files outside the
/// watched sources (src/, the manifest and lock file), README or tests for
/// instance, mark the tree dirty only at the next re-run.
fn watch(root: &Path) {
    // refs/heads too: with packed refs the branch file may not exist until a commit creates it.
    let mut paths = vec![
        "HEAD".to_string(),
        "index".into(),
        "packed-refs".into(),
        "refs/heads".into(),
    ];
    if let Some(head_ref) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        paths.push(head_ref);
    }
    for p in paths {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &p]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    for p in ["src", "Cargo.toml", "Cargo.lock"] {
        if root.join(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}

/// `git ARGS` in `root`, its trimmed stdout, or None if git is missing or fails. Never takes a
/// lock (a build must not race an interactive `git commit`), and ignores a GIT_DIR set by a hook
/// so that the repository is found from `root`.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("--no-optional-locks")
        .args(args)
        .current_dir(root)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}
