//! What the environment configures: sigward's `SIGWARD_*` variables and its peers' (`TINI_*`,
//! `DUMB_INIT_*`), so that images and pod specs written for tini or dumb-init keep their meaning.

use super::flags::escaped;
use crate::log::Level;
use std::ffi::{OsStr, OsString};

/// Which settings sigward's own flags or `SIGWARD_*` variables gave (a default is not given):
/// those win over the peers' variables.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Given {
    pub(super) log_level: bool,
    pub(super) single_child: bool,
    pub(super) termination_log: bool,
}

/// What tini's and dumb-init's environment variables ask for, so that images and pod specs
/// written for them keep their meaning. Every value is checked, even one that a flag or a
/// `SIGWARD_*` variable overrides: a setting sigward cannot read is an error, never a silent
/// default. Empty values count as unset (`docker run -e VAR=`).
///
/// `TINI_SUBREAPER` and `TINI_KILL_PROCESS_GROUP` are accepted with any value, as tini checks only
/// that they are set: sigward always subreaps when it is not PID 1 and signals the process group
/// unless told `-c`, so they are never read.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Peers {
    /// The base log level: from `TINI_VERBOSITY` and `DUMB_INIT_DEBUG`, the more verbose.
    pub(super) log_level: Option<Level>,
    /// From `DUMB_INIT_SETSID`: `0` is dumb-init's "no new session, signal only the child".
    pub(super) single_child: Option<bool>,
}

impl Peers {
    pub(super) fn read(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Peers, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let bad = |name: &str, value: &OsStr, expected: &str| {
            escaped(&format!(
                "invalid value '{}' for '{name}': expected {expected} (see --help)",
                value.to_string_lossy()
            ))
        };
        let tini = match var("TINI_VERBOSITY") {
            None => None,
            Some(v) => Some(tini_verbosity(&v).ok_or_else(|| {
                bad(
                    "TINI_VERBOSITY",
                    &v,
                    "a number: 0 (errors), 1 (warnings, tini's default), 2 (info) or 3 (debug)",
                )
            })?),
        };
        let dumb = match var("DUMB_INIT_DEBUG") {
            None => None,
            Some(v) => match v.as_encoded_bytes() {
                b"0" => None,
                b"1" => Some(Level::Debug),
                _ => return Err(bad("DUMB_INIT_DEBUG", &v, "1 (debug logging, as -v) or 0")),
            },
        };
        let single_child = match var("DUMB_INIT_SETSID") {
            None => None,
            Some(v) => match v.as_encoded_bytes() {
                b"0" => Some(true),
                b"1" => Some(false),
                _ => {
                    return Err(bad(
                        "DUMB_INIT_SETSID",
                        &v,
                        "0 (signal only the child, as -c) or 1 (its process group, the default)",
                    ));
                }
            },
        };
        Ok(Peers {
            log_level: tini.max(dumb),
            single_child,
        })
    }
}

/// tini's verbosity onto sigward's levels. tini logs fatal errors always, warnings from 1 (its
/// default), info from 2, debug from 3 and a trace from 4, so 3 and above are sigward's debug.
fn tini_verbosity(value: &OsStr) -> Option<Level> {
    let digits = value.to_str()?.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Digits only, so a parse failure is a number too large for u64: the most verbose.
    Some(match digits.parse::<u64>().unwrap_or(u64::MAX) {
        0 => Level::Error,
        1 => Level::Warn,
        2 => Level::Info,
        _ => Level::Debug,
    })
}

/// Precedence for one setting: sigward's own flag or `SIGWARD_*` variable, then the peers'
/// variable, then sigward's default (which `own` holds when it was not given).
pub(super) fn settle<T>(own: T, given: bool, peer: Option<T>) -> T {
    match (given, peer) {
        (false, Some(peer)) => peer,
        _ => own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::{argv, parse_as, with_env};
    use crate::config::{Rejected, flags::Args, try_parse_with, validate};
    use clap::Parser;

    #[test]
    fn tini_verbosity_maps_onto_sigward_levels() {
        for (value, level) in [
            ("0", Level::Error),
            ("1", Level::Warn),
            ("2", Level::Info),
            ("3", Level::Debug),
            ("4", Level::Debug),
            (" 2 ", Level::Info),
            ("007", Level::Debug),
            ("99999999999999999999999", Level::Debug),
        ] {
            assert_eq!(tini_verbosity(OsStr::new(value)), Some(level), "{value}");
            assert_eq!(
                with_env(&["app"], &[("TINI_VERBOSITY", value)]).log_level,
                level,
                "{value}"
            );
        }
        for bad in ["x", "-1", "+1", "1.5", "one", " ", "3x"] {
            assert_eq!(tini_verbosity(OsStr::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn dumb_init_variables() {
        let c = with_env(&["app"], &[("DUMB_INIT_SETSID", "0")]);
        assert!(c.single_child, "DUMB_INIT_SETSID=0 is -c");
        let c = with_env(&["app"], &[("DUMB_INIT_SETSID", "1")]);
        assert!(!c.single_child);
        let c = with_env(&["app"], &[("DUMB_INIT_DEBUG", "1")]);
        assert_eq!(c.log_level, Level::Debug, "DUMB_INIT_DEBUG=1 is -v");
        let c = with_env(&["app"], &[("DUMB_INIT_DEBUG", "0")]);
        assert_eq!(c.log_level, Level::Info);
    }

    #[test]
    fn tini_subreaper_and_kill_process_group_are_accepted_with_any_value() {
        for value in ["1", "0", "", "yes", "anything at all"] {
            let c = with_env(
                &["app"],
                &[
                    ("TINI_SUBREAPER", value),
                    ("TINI_KILL_PROCESS_GROUP", value),
                ],
            );
            assert!(!c.single_child, "{value:?}");
            assert_eq!(c.log_level, Level::Info);
        }
    }

    #[test]
    fn empty_peer_variables_count_as_unset() {
        let c = with_env(
            &["app"],
            &[
                ("TINI_VERBOSITY", ""),
                ("DUMB_INIT_DEBUG", ""),
                ("DUMB_INIT_SETSID", ""),
            ],
        );
        assert_eq!(c.log_level, Level::Info);
        assert!(!c.single_child);
    }

    #[test]
    fn a_bad_peer_value_is_a_one_line_usage_error_naming_variable_and_value() {
        for (name, value, expected) in [
            ("TINI_VERBOSITY", "loud", "expected a number: 0 (errors)"),
            ("TINI_VERBOSITY", "-1", "expected a number"),
            (
                "DUMB_INIT_DEBUG",
                "true",
                "expected 1 (debug logging, as -v) or 0",
            ),
            (
                "DUMB_INIT_SETSID",
                "2",
                "expected 0 (signal only the child, as -c)",
            ),
            ("DUMB_INIT_SETSID", "0\n", "expected 0"),
        ] {
            let msg = parse_as("sigward", &["app"], &[(name, value)]).unwrap_err();
            assert!(
                msg.starts_with(&format!(
                    "invalid value '{}' for '{name}': {expected}",
                    escaped(value)
                )),
                "{msg}"
            );
            assert!(
                !msg.contains('\n') && msg.ends_with("(see --help)"),
                "{msg}"
            );
            // Checked even where a flag overrides the variable: never a silent default.
            let msg = parse_as(
                "sigward",
                &["-c", "--log-level", "warn", "app"],
                &[(name, value)],
            );
            assert!(msg.is_err(), "{name}={value}");
            assert!(matches!(
                try_parse_with(argv(&["app"]), &|n| (n == name).then(|| value.into())),
                Err(Rejected::Usage(_))
            ));
        }
        let odd = parse_as("sigward", &["app"], &[("TINI_VERBOSITY", "\u{1b}[31m")]).unwrap_err();
        assert!(odd.starts_with("invalid value '\\u{1b}[31m'"), "{odd}");
    }

    #[test]
    fn flags_win_over_the_peers_variables() {
        let c = with_env(
            &["--log-level", "warn", "app"],
            &[("TINI_VERBOSITY", "3"), ("DUMB_INIT_DEBUG", "1")],
        );
        assert_eq!(c.log_level, Level::Warn);
        let c = with_env(&["-c", "app"], &[("DUMB_INIT_SETSID", "1")]);
        assert!(c.single_child);
        // -v and -q move from the base level, which the peers' variable set.
        let c = with_env(&["-v", "app"], &[("TINI_VERBOSITY", "1")]);
        assert_eq!(c.log_level, Level::Info);
        let c = with_env(&["-q", "app"], &[("TINI_VERBOSITY", "3")]);
        assert_eq!(c.log_level, Level::Info);
        let c = with_env(&["-qq", "app"], &[("DUMB_INIT_DEBUG", "1")]);
        assert_eq!(c.log_level, Level::Warn);
    }

    #[test]
    fn sigward_variables_win_over_the_peers_variables() {
        // As when SIGWARD_LOG or SIGWARD_SINGLE_CHILD is set: clap reports the value's source as
        // the environment, which counts as given.
        let peers = Peers {
            log_level: Some(Level::Debug),
            single_child: Some(true),
        };
        let args = |a: &[&str]| Args::try_parse_from(argv(a)).unwrap();
        let given = Given {
            log_level: true,
            single_child: true,
            termination_log: false,
        };
        let c = validate(args(&["--log-level", "error", "app"]), given, &peers).unwrap();
        assert_eq!(c.log_level, Level::Error);
        assert!(
            !c.single_child,
            "SIGWARD_SINGLE_CHILD=false beats DUMB_INIT_SETSID=0"
        );
        let c = validate(args(&["app"]), Given::default(), &peers).unwrap();
        assert_eq!(c.log_level, Level::Debug);
        assert!(c.single_child);
        assert_eq!(settle(1, true, Some(2)), 1);
        assert_eq!(settle(1, false, Some(2)), 2);
        assert_eq!(settle(1, false, None), 1);
    }

    #[test]
    fn the_peers_are_combined_by_the_more_verbose() {
        for (tini, dumb, level) in [
            ("0", "1", Level::Debug),
            ("2", "0", Level::Info),
            ("3", "0", Level::Debug),
            ("1", "", Level::Warn),
        ] {
            let c = with_env(
                &["app"],
                &[("TINI_VERBOSITY", tini), ("DUMB_INIT_DEBUG", dumb)],
            );
            assert_eq!(
                c.log_level, level,
                "TINI_VERBOSITY={tini} DUMB_INIT_DEBUG={dumb}"
            );
        }
    }
}
