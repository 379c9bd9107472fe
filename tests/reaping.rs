//! Zombies are reaped, as PID 1 and as a subreaper; when not PID 1, nothing outside sigward's own
//! tree is ever signalled.
mod common;
use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn two_thousand_orphans_are_reaped_as_pid1() {
    let ns = Ns::start(&["--", "{probe}", "log={log}", "orphans=2000"]);
    let line = ns.wait_record("orphans", T);
    assert_eq!(line, "orphans made=2000 zombies=0");
    ns.signal(libc::SIGTERM);
    assert_eq!(ns.wait(T).code, 143);
}

#[test]
fn not_pid1_reaps_orphans_and_spares_a_sibling_in_its_own_process_group() {
    // PID 1 is a shell; it starts a sibling probe and sigward in the same process group. sigward's
    // child makes orphans (which come to sigward as subreaper) and leaves a TERM-ignoring daemon,
    // so the stop sequence runs all the way to SIGKILL, which must not touch the sibling.
    let script = format!(
        "{{probe}} log={{dir}}sibling & sib=$!; \
         {sigward} -w -t 1s -- sh -c '{{probe}} log={{log}} sid on-term=ignore & {{probe}} log={{dir}}orphans orphans=200 exit=5'; \
         echo sigward=$?; sleep 0.2; kill -0 $sib && echo sibling-alive; cat {{dir}}sibling; kill $sib; wait",
        sigward = SIGWARD
    );
    let ns = Ns::pid1(&["sh", "-c", &script], |_| {});
    let done = ns.wait(T);
    assert!(
        done.stdout.contains("sigward=5"),
        "stdout: {}\nstderr: {}",
        done.stdout,
        done.stderr
    );
    assert!(
        done.stdout.contains("sibling-alive"),
        "sigward killed its sibling: {}",
        done.stderr
    );
    assert!(done.stdout.contains("ready"), "{}", done.stdout);
    assert_eq!(
        signals_seen(&done.stdout),
        Vec::<i32>::new(),
        "sigward signalled its sibling"
    );
    let reaped = done.stderr.matches("reaped orphan").count();
    assert!(
        reaped >= 200,
        "sigward reaped only {reaped} orphans as subreaper:\n{}",
        done.stderr
    );
    assert!(
        done.stderr.contains("killing 1 straggler"),
        "{}",
        done.stderr
    );
    assert!(
        done.records.contains("start") && done.records.contains("sid="),
        "{}",
        done.records
    );
}
