//! Zombies are reaped, as PID 1 and as a subreaper; when not PID 1, nothing outside sigward's own
//! tree is ever signalled.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn two_thousand_orphans_are_reaped_as_pid1() {
    let ns = probe_under(&[], &["orphans=2000"]);
    let line = ns.wait_record("orphans", T);
    assert_eq!(line, "orphans made=2000 zombies=0");
    assert_eq!(ns.stop(T).code, 143);
}

#[test]
fn not_pid1_reaps_orphans_and_touches_nothing_outside_its_tree() {
    if skip_without_subreaper() {
        return;
    }
    // PID 1 is a shell. Around sigward live a sibling in sigward's own process group and a process
    // in another session. sigward's child makes orphans (they come to sigward as subreaper) and
    // leaves a TERM-ignoring daemon, so the stop sequence runs all the way to SIGKILL; neither
    // neighbour may get a single signal.
    let script = format!(
        "{{probe}} log={{dir}}sibling & sib=$!; setsid {{probe}} log={{dir}}other & \
         {sigward} -w -t 1s -- sh -c '{{probe}} log={{log}} sid on-term=ignore & {{probe}} log={{dir}}orphans orphans=200 exit=5'; \
         echo sigward=$?; sleep 0.2; \
         other=$(sed -n 's/^start pid=\\([0-9]*\\).*/\\1/p' {{dir}}other); \
         kill -0 $sib && echo sibling-alive; kill -0 $other && echo other-session-alive; \
         echo '--- sibling'; cat {{dir}}sibling; echo '--- other'; cat {{dir}}other; echo '--- end'; \
         kill $sib $other; wait $sib",
        sigward = sigward_bin()
    );
    let ns = Ns::pid1(&["sh", "-c", &script], |_| {});
    let done = ns.wait(T);
    let out = &done.stdout;
    assert!(
        out.contains("sigward=5"),
        "stdout: {out}\nstderr: {}",
        done.stderr
    );
    assert!(
        out.contains("sibling-alive"),
        "sigward killed its sibling: {}",
        done.stderr
    );
    assert!(
        out.contains("other-session-alive"),
        "sigward killed a process in another session: {}",
        done.stderr
    );
    let neighbours = out.split("--- sibling").nth(1).expect("records");
    assert_eq!(neighbours.matches("ready").count(), 2, "{neighbours}");
    assert_eq!(
        signals_seen(neighbours),
        Vec::<i32>::new(),
        "sigward signalled a neighbour:\n{neighbours}"
    );
    let reaped = done.stderr.matches("reaped orphan").count();
    assert!(
        reaped >= 200,
        "sigward reaped only {reaped} orphans as subreaper:\n{}",
        done.stderr
    );
    done.assert_said("killing 1 straggler");
}
