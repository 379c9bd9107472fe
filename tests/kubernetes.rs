//! The kubelet's termination sequence, replayed exactly against sigward as PID 1 of a PID
//! namespace: optional preStop exec (into the container's namespaces), then SIGTERM to PID 1, then
//! SIGKILL of everything at terminationGracePeriodSeconds, counted from before the hook.
//! With the README's recommended settings the app always sees SIGTERM, drains, and sigward exits
//! on its own before the kubelet's SIGKILL would have been needed.
mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const TERMINATION_GRACE_PERIOD: Duration = Duration::from_secs(30);

struct Outcome {
    done: Done,
    /// From the start of the termination (before the hook) to sigward's exit.
    took: Duration,
    /// The kubelet had to SIGKILL: sigward did not finish within the grace period.
    kubelet_killed: bool,
    /// When the kubelet sent SIGTERM, on the monotonic clock (ns), for comparing with the app.
    sigterm_ns: u128,
}

impl Outcome {
    /// Asserts that sigward was over before the kubelet's deadline, so the kubelet never SIGKILLed.
    #[track_caller]
    fn assert_not_killed_by_the_kubelet(&self) {
        assert!(
            !self.kubelet_killed,
            "the kubelet had to SIGKILL after {:?}: {}",
            self.took, self.done.stderr
        );
    }

    /// Asserts that sigward SIGKILLed the app (exit 137) at the end of its grace period: not
    /// before 24s, and before the kubelet's deadline.
    #[track_caller]
    fn assert_killed_by_sigward_at_its_grace_period(&self) {
        assert_eq!(self.done.code, 137);
        assert!(
            self.took >= Duration::from_secs(24) && self.took < TERMINATION_GRACE_PERIOD,
            "took {:?}",
            self.took
        );
    }
}

/// The README's recommended settings: SIGWARD_PRE_STOP_DELAY=5s, SIGWARD_GRACE_PERIOD=25s.
const RECOMMENDED: &[(&str, &str)] = &[
    ("SIGWARD_PRE_STOP_DELAY", "5s"),
    ("SIGWARD_GRACE_PERIOD", "25s"),
];

/// The probe with `words` under sigward, configured by the environment `env`; once it is ready,
/// the kubelet terminates the pod (with the preStop exec `pre_stop`).
fn terminated(env: &[(&str, &str)], words: &[&str], pre_stop: Option<&str>) -> Outcome {
    let ns = probe_under_with(&[], words, |cmd| {
        cmd.envs(env.iter().copied());
    });
    ns.wait_record("ready", Duration::from_secs(20));
    kubelet_terminates(ns, pre_stop)
}

/// Replays the kubelet: preStop hook (if any), SIGTERM, SIGKILL at the grace period.
fn kubelet_terminates(ns: Ns, pre_stop: Option<&str>) -> Outcome {
    let start = Instant::now();
    if let Some(hook) = pre_stop {
        // `kubectl exec`-style: a new process inside the container's PID and mount namespaces.
        let status = Command::new("nsenter")
            .args([
                "--target",
                &ns.pid1.to_string(),
                "--pid",
                "--mount",
                "--",
                "sh",
                "-c",
                hook,
            ])
            .status()
            .expect("nsenter (util-linux)");
        assert!(status.success(), "preStop hook failed");
    }
    let sigterm_ns = now_ns();
    ns.signal(libc::SIGTERM);
    // The kubelet's deadline, played here: SIGKILL only while sigward (and so the namespace) is
    // still alive, so a recycled pid is never hit.
    let mut ns = ns;
    while ns.alive() && start.elapsed() < TERMINATION_GRACE_PERIOD {
        std::thread::sleep(Duration::from_millis(10));
    }
    let kubelet_killed = ns.alive();
    if kubelet_killed {
        ns.signal(libc::SIGKILL);
    }
    let done = ns.wait(Duration::from_secs(10));
    let took = start.elapsed();
    Outcome {
        done,
        took,
        kubelet_killed,
        sigterm_ns,
    }
}

#[test]
fn recommended_settings_app_keeps_serving_through_the_delay_then_drains() {
    // README: SIGWARD_PRE_STOP_DELAY=5s, SIGWARD_GRACE_PERIOD=25s, terminationGracePeriodSeconds 30.
    let out = terminated(RECOMMENDED, &["on-term=drain:2000:0"], None);
    out.assert_not_killed_by_the_kubelet();
    let got = signal_time(&out.done.records, libc::SIGTERM).expect("the app got SIGTERM");
    assert!(
        got >= out.sigterm_ns + 5_000_000_000,
        "SIGTERM reached the app before the 5s delay"
    );
    assert!(
        out.done.records.contains("drained"),
        "the app was cut off mid-drain:\n{}",
        out.done.records
    );
    assert_eq!(out.done.code, 0, "{}", out.done.stderr);
    assert!(out.took < TERMINATION_GRACE_PERIOD, "took {:?}", out.took);
}

#[test]
fn recommended_settings_app_that_never_stops_is_killed_by_sigward_before_the_kubelet() {
    let out = terminated(RECOMMENDED, &["on-term=ignore"], None);
    out.assert_not_killed_by_the_kubelet();
    out.assert_killed_by_sigward_at_its_grace_period();
    out.done
        .assert_said("grace period of 25s is over: killing 1 straggler");
}

#[test]
fn with_a_prestop_hook_the_recommended_grace_period_still_ends_before_the_kubelet() {
    // README's hook variant: preStop `sleep 5`, SIGWARD_PRE_STOP_DELAY=0s, SIGWARD_GRACE_PERIOD=20s.
    // The hook runs first and its time counts against terminationGracePeriodSeconds.
    let out = terminated(
        &[("SIGWARD_GRACE_PERIOD", "20s")],
        &["on-term=ignore"],
        Some("sleep 5"),
    );
    out.assert_not_killed_by_the_kubelet();
    out.assert_killed_by_sigward_at_its_grace_period();
}
