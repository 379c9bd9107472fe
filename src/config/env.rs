//! What the environment configures: sigward's `SIGWARD_*` variables and its peers' (`TINI_*`,
//! `DUMB_INIT_*`), so that images and pod specs written for tini or dumb-init keep their meaning.
//!
//! One rule for every variable, because an engine's init has no flags and the environment is all
//! the user has: an empty value is unset (`docker run -e VAR=`); a set one is always checked, even
//! where a flag overrides it, so a typo never hides; a bad one is named as the user wrote it
//! (`SIGWARD_GRACE_PERIOD=abc: ...`), never as a flag they did not pass.

use super::check_alone;
use super::flags::{Args, Why, escaped, why};
use crate::log::Level;
use clap::FromArgMatches;
use clap::builder::{BoolValueParser, TypedValueParser};
use clap::{Command, Id};
use std::ffi::{OsStr, OsString};

/// The environment: a variable's value by its name (the process's own, or a test's).
pub(super) type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// A variable's value under the one rule: empty is unset.
fn var(env: Env, name: &str) -> Option<OsString> {
    env(name).filter(|v| !v.is_empty())
}

/// A bad variable, named as the user wrote it, on one line.
fn bad(name: &str, value: &OsStr, why: &str) -> String {
    escaped(&format!(
        "{name}={}: {why} (see --help)",
        value.to_string_lossy()
    ))
}

/// A `SIGWARD_*` variable that is set, with the argument it stands for.
pub(super) struct Setting {
    pub(super) id: Id,
    name: String,
    value: OsString,
}

/// The `SIGWARD_*` variables that are set: those the arguments of `command` name (`Arg::env`, so
/// the list is the clap definition's and `--help` shows each beside its flag). Read before the
/// parser's own env reading is switched off ([`without_env`]).
pub(super) fn settings(command: &Command, env: Env) -> Vec<Setting> {
    command
        .get_arguments()
        .filter_map(|arg| {
            let name = arg.get_env()?.to_str()?;
            Some(Setting {
                id: arg.get_id().clone(),
                name: name.to_string(),
                value: var(env, name)?,
            })
        })
        .collect()
}

/// `command` without its arguments' `env`: clap would read the variables itself, taking an empty
/// one as a value and naming the flag in its errors. [`settings`] reads them instead.
pub(super) fn without_env(command: Command) -> Command {
    command.mut_args(|arg| arg.env(None))
}

impl Setting {
    /// Checks the value with its argument's own parser, as the flag alone on a command line, and
    /// returns what it stands for there: `--grace-period=20s`; for a switch, `--single-child`
    /// when true and nothing when false.
    pub(super) fn as_argument(&self, command: &mut Command) -> Result<Option<OsString>, String> {
        let Some(arg) = command.get_arguments().find(|a| *a.get_id() == self.id) else {
            return Ok(None);
        };
        let long = arg.get_long().unwrap_or_default();
        let refused = |e: clap::Error| {
            let why = match why(&e) {
                Some(Why::Because(reason)) => reason,
                Some(Why::OneOf(valid)) => format!("possible values: {valid}"),
                None if e.kind() == clap::error::ErrorKind::InvalidUtf8 => "not UTF-8".into(),
                None => "invalid value".into(),
            };
            bad(&self.name, &self.value, &why)
        };
        if !arg.get_action().takes_values() {
            let on = BoolValueParser::new()
                .parse_ref(command, Some(arg), &self.value)
                .map_err(refused)?;
            return Ok(on.then(|| format!("--{long}").into()));
        }
        let mut flag = OsString::from(format!("--{long}="));
        flag.push(&self.value);
        let alone = [
            OsString::from("sigward"),
            flag.clone(),
            OsString::from("true"),
        ];
        // `.iter()`, as every parse here: one instance of clap's generic parser, not one per
        // kind of argument list.
        let mut matches = command
            .try_get_matches_from_mut(alone.iter())
            .map_err(refused)?;
        // What the value must be on its own (no grace period of 0, no signal rewritten twice),
        // even where a flag overrides it: the day the flag is dropped it would take effect.
        let args = Args::from_arg_matches_mut(&mut matches).map_err(refused)?;
        check_alone(&args).map_err(|why| bad(&self.name, &self.value, &why))?;
        Ok(Some(flag))
    }

    /// How an error about this setting names it: the variable, not the flag.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// Which settings sigward's own flags or `SIGWARD_*` variables gave (a default is not given):
/// those win over the peers' variables. For settings that only mean something beside another,
/// who gave them (the flag, or the variable's name), to name them when the other is missing.
#[derive(Clone, Debug, Default)]
pub(super) struct Given {
    pub(super) log_level: bool,
    pub(super) single_child: bool,
    pub(super) termination_log: bool,
    pub(super) ready: Option<String>,
    pub(super) ready_timeout: Option<String>,
    pub(super) on_change: Option<String>,
    pub(super) watch_debounce: Option<String>,
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
    pub(super) fn read(env: Env) -> Result<Peers, String> {
        let var = |name: &str| var(env, name);
        let bad = |name: &str, value: &OsStr, expected: &str| {
            bad(name, value, &format!("expected {expected}"))
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
                msg.starts_with(&format!("{name}={}: {expected}", escaped(value))),
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
        assert!(odd.starts_with("TINI_VERBOSITY=\\u{1b}[31m: "), "{odd}");
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
            ..Given::default()
        };
        let c = validate(
            args(&["--log-level", "error", "app"]),
            given.clone(),
            &peers,
        )
        .unwrap();
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

    /// Every variable an argument names, from the clap definition itself.
    fn own_variables() -> Vec<String> {
        let command = crate::config::flags::command_for(crate::config::Invocation::Sigward);
        let names: Vec<String> = (command.get_arguments())
            .filter_map(|a| Some(a.get_env()?.to_str()?.to_string()))
            .collect();
        assert!(names.len() >= 13, "{names:?}");
        names
    }

    #[test]
    fn every_variable_is_unset_when_empty() {
        let defaults = with_env(&["app"], &[]);
        for name in own_variables() {
            let c = with_env(&["app"], &[(&name, "")]);
            assert_eq!(format!("{c:?}"), format!("{defaults:?}"), "{name}=");
        }
    }

    #[test]
    fn a_variable_stands_in_for_its_flag_and_the_flag_wins() {
        let c = with_env(&["app"], &[("SIGWARD_GRACE_PERIOD", "20s")]);
        assert_eq!(c.grace_period, std::time::Duration::from_secs(20));
        let c = with_env(&["-t", "5s", "app"], &[("SIGWARD_GRACE_PERIOD", "20s")]);
        assert_eq!(c.grace_period, std::time::Duration::from_secs(5));
        let c = with_env(&["app"], &[("SIGWARD_SINGLE_CHILD", "true")]);
        assert!(c.single_child);
        let c = with_env(&["app"], &[("SIGWARD_STOP_SIGNAL", "USR2,TERM")]);
        assert_eq!(c.stop_signal, libc::SIGUSR2);
        let c = with_env(&["-S", "QUIT", "app"], &[("SIGWARD_STOP_SIGNAL", "USR2")]);
        assert_eq!(c.stop_signal, libc::SIGQUIT);
        let c = with_env(&["app"], &[("SIGWARD_WATCH", "/a:/b/")]);
        assert_eq!(c.watch, [b"/a".to_vec(), b"/b".to_vec()]);
        // A value starting with '-' is the variable's value, never a flag.
        let msg = parse_as("sigward", &["app"], &[("SIGWARD_REWRITE", "-c")]).unwrap_err();
        assert!(msg.starts_with("SIGWARD_REWRITE=-c: "), "{msg}");
    }

    #[test]
    fn a_variable_s_own_checks_hold_even_where_its_flag_is_given() {
        // A grace period of 0 and a signal rewritten twice are wrong in the value itself: the day
        // the flag is dropped they would take effect, so they are refused now, naming the variable.
        for (flag, name, value, why) in [
            (
                &["-t", "5s"][..],
                "SIGWARD_GRACE_PERIOD",
                "0",
                "the grace period must be more than 0",
            ),
            (
                &["-r", "USR1:0"],
                "SIGWARD_REWRITE",
                "TERM:QUIT,TERM:INT",
                "SIGTERM is rewritten twice (as SIGQUIT, then as SIGINT)",
            ),
            (
                &[],
                "SIGWARD_REWRITE",
                "15:0,SIGTERM:QUIT",
                "SIGTERM is rewritten twice (dropped, then as SIGQUIT)",
            ),
        ] {
            let args: Vec<&str> = flag.iter().copied().chain(["app"]).collect();
            for argv0 in ["sigward", "/sbin/docker-init"] {
                let msg = parse_as(argv0, &args, &[(name, value)]).unwrap_err();
                assert!(
                    msg.starts_with(&format!("{name}={value}: {why}")) && !msg.contains('\n'),
                    "{argv0} {flag:?} {name}={value}: {msg}"
                );
            }
        }
        // The flags' own values are refused as before, naming no variable.
        let msg = parse_as("sigward", &["-t", "0", "app"], &[]).unwrap_err();
        assert!(
            msg.starts_with("the grace period must be more than 0"),
            "{msg}"
        );
    }

    #[test]
    fn a_set_variable_is_checked_even_where_its_flag_is_given_and_named_as_set() {
        for (flag, name, value) in [
            (&["-t", "5s"][..], "SIGWARD_GRACE_PERIOD", "abc"),
            (&["-t", "5s"], "SIGWARD_GRACE_PERIOD", "-1s"),
            (&["-S", "TERM"], "SIGWARD_STOP_SIGNAL", "TERM,KILL"),
            (&["-c"], "SIGWARD_SINGLE_CHILD", "yes"),
            (&["--log-level", "warn"], "SIGWARD_LOG", "loud"),
            (&["-e", "1"], "SIGWARD_SUCCESS_EXIT", "256"),
            (
                &["--termination-log", "off"],
                "SIGWARD_TERMINATION_LOG",
                "rel",
            ),
            (&["--watch", "/x"], "SIGWARD_WATCH", "/a/../b"),
            (
                &["--watch", "/x", "--on-change", "restart"],
                "SIGWARD_ON_CHANGE",
                "signal:KILL",
            ),
            (&[], "SIGWARD_GRACE_PERIOD", "1s\nx"),
        ] {
            let args: Vec<&str> = flag.iter().copied().chain(["app"]).collect();
            let msg = parse_as("sigward", &args, &[(name, value)]).unwrap_err();
            assert!(
                msg.starts_with(&format!("{name}={}: ", escaped(value))) && !msg.contains("'--"),
                "{flag:?} {name}={value}: {msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
            // As an engine's init, where there are no flags at all.
            let msg = parse_as("/sbin/docker-init", &["--", "app"], &[(name, value)]).unwrap_err();
            assert!(msg.starts_with(&format!("{name}=")), "{msg}");
        }
    }

    mod hostile_environment {
        use super::*;
        use proptest::prelude::*;

        /// Values that mean something to some setting, or to none, or look like flags.
        const VALUES: [&str; 24] = [
            "0",
            "1s",
            "-1s",
            "true",
            "TERM",
            "HUP",
            "TERM:QUIT",
            "TERM:QUIT,TERM:INT",
            "USR1:0",
            "/x",
            "/a/../b",
            "a::b",
            "restart",
            "signal:USR1",
            "signal:KILL",
            "after:1s",
            "notify",
            "tcp://127.0.0.1:0",
            "debug",
            "json",
            "--",
            "-c",
            "=",
            "x=y:z",
        ];
        const FLAGS: [&str; 16] = [
            "-t",
            "-d",
            "-S",
            "-r",
            "-e",
            "--log-level",
            "--listen",
            "--termination-log",
            "--watch",
            "--on-change",
            "--watch-debounce",
            "--ready",
            "--ready-timeout",
            "--restart-signal",
            "-c",
            "-v",
        ];

        fn variables() -> Vec<String> {
            let mut names = own_variables();
            names.extend(
                ["TINI_VERBOSITY", "DUMB_INIT_DEBUG", "DUMB_INIT_SETSID"].map(String::from),
            );
            names
        }

        fn parse(argv0: &str, args: &[&str], vars: &[(&str, &str)]) -> Result<(), String> {
            let args: Vec<&str> = args.iter().copied().chain(["--", "app"]).collect();
            parse_as(argv0, &args, vars).map(drop)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(1000))]

            /// Any variables under any flags: a config or one line, never a panic; as an engine's
            /// init without flags, never a flag named; and a variable refused alone by name is
            /// refused whatever the flags (a flag never hides a bad variable).
            #[test]
            fn a_variable_refused_alone_is_refused_under_any_flags(
                vars in prop::collection::btree_map(prop::sample::select(variables()), prop::sample::select(VALUES.to_vec()), 0..4),
                flags in prop::collection::vec((prop::sample::select(FLAGS.to_vec()), prop::sample::select(VALUES.to_vec())), 0..4),
            ) {
                let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                let mut args = Vec::new();
                for &(flag, value) in &flags {
                    args.push(flag);
                    if !["-c", "-v"].contains(&flag) {
                        args.push(value);
                    }
                }
                let got = parse("sigward", &args, &vars);
                if let Err(msg) = &got {
                    prop_assert!(!msg.contains('\n'), "not one line: {msg:?}");
                }
                if let Err(msg) = parse("/sbin/docker-init", &[], &vars) {
                    prop_assert!(!msg.contains('\n') && !msg.contains("for '-"), "{vars:?}: {msg}");
                }
                for &(name, value) in &vars {
                    if let Err(alone) = parse("sigward", &[], &[(name, value)])
                        && alone.starts_with(&format!("{name}="))
                    {
                        prop_assert!(got.is_err(), "{name}={value} ({alone}) hid behind {args:?} with {vars:?}");
                    }
                }
            }
        }
    }
}
