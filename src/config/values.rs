//! The values flags and variables take, each parsed into what it means: durations, signals,
//! rewrites, listen addresses (host names from /etc/hosts only), watched paths, readiness and
//! on-change actions. Pure functions of the text (and the hosts file's contents).

use super::{Listen, ListenAddr, OnChange, Ready};
use crate::os::signals;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The longest duration sigward accepts, for every duration flag: 100 years (36500 days). Far
/// beyond any real grace period or timeout, and far below where deadline arithmetic on the
/// monotonic clock could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 24 * 3600);

/// Where `--listen` looks up host names: the file, never DNS (a static binary has no NSS).
const HOSTS: &str = "/etc/hosts";

/// `25s`, `500ms`, `1m30s`, `2m`, `1h`; a bare number means seconds. At most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let too_long = || {
        format!(
            "more than the maximum of 100 years ({}h)",
            MAX_DURATION.as_secs() / 3600
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration (try 25s, 500ms, 1m30s)".into());
    }
    if t.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    // A part in nanoseconds: `1.5` of a unit of `unit_ns`, as the log writes `1.5s`. Any number
    // too large for u64 is far above the maximum.
    let part = |num: &str, unit_ns: u128| -> Result<u128, String> {
        let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
        let bad = || "expected a number like 25, 1.5 or 0.25 before each unit".to_string();
        if (whole.is_empty() && frac.is_empty()) || frac.contains('.') || frac.len() > 9 {
            return Err(bad());
        }
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse::<u64>().map_err(|_| too_long())?.into()
        };
        let scale = 10u128.pow(frac.len() as u32);
        let frac: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| bad())?
        };
        Ok(whole * unit_ns + frac * unit_ns / scale)
    };
    const SEC: u128 = 1_000_000_000;
    let nanos = if is_number(t) {
        part(t, SEC)?
    } else {
        let mut total: u128 = 0;
        let mut rest = t;
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit() && c != '.')
                .unwrap_or(rest.len());
            let (num, after) = rest.split_at(digits);
            let unit_len = after
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            if !is_number(num) {
                return Err(
                    "expected a number before each unit (try 25s, 500ms, 1m30s)".to_string()
                );
            }
            let unit_ns = match unit {
                "ms" => SEC / 1000,
                "s" => SEC,
                "m" => 60 * SEC,
                "h" => 3600 * SEC,
                _ => return Err(format!("unknown unit '{unit}' (use ms, s, m or h)")),
            };
            total = total.saturating_add(part(num, unit_ns)?);
            rest = next;
        }
        total
    };
    if nanos > MAX_DURATION.as_nanos() {
        return Err(too_long());
    }
    let secs = u64::try_from(nanos / SEC).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % SEC) as u32))
}

pub(super) fn parse_signal(text: &str) -> Result<i32, String> {
    signals::parse(text)
}

/// A signal sigward can receive and act on: not KILL or STOP (uncatchable), not CHLD (reaping).
pub(super) fn parse_catchable(text: &str) -> Result<i32, String> {
    let sig = signals::parse(text)?;
    match sig {
        libc::SIGKILL | libc::SIGSTOP => Err(format!(
            "{} cannot be caught, so it can never reach sigward",
            signals::Name(sig)
        )),
        libc::SIGCHLD => Err("SIGCHLD is sigward's own reaping signal".into()),
        _ => Ok(sig),
    }
}

pub(super) fn parse_rewrite(text: &str) -> Result<(i32, i32), String> {
    let (from, to) = text
        .split_once(':')
        .ok_or("expected FROM:TO, e.g. TERM:QUIT or 15:3")?;
    let from = parse_catchable(from)?;
    let to = if to.trim() == "0" {
        0
    } else {
        signals::parse(to)?
    };
    Ok((from, to))
}

/// `tcp://127.0.0.1:8080`, `tcp6://[::]:8080`, `tcp://localhost:8080`, `unix:/run/app.sock`,
/// each optionally `NAME=` first. Host names are resolved here, so a bad one is a usage error.
pub(super) fn parse_listen(text: &str) -> Result<Listen, String> {
    parse_listen_in(text, || std::fs::read(HOSTS))
}

/// [`parse_listen`] with the hosts file's contents from `hosts` (read only for a host name).
fn parse_listen_in(
    text: &str,
    hosts: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> Result<Listen, String> {
    let (name, addr) = match text.split_once('=') {
        Some((name, addr)) if !name.contains(['/', ':']) => (name, addr),
        _ => ("unknown", text),
    };
    if name.is_empty() || name.contains(|c: char| c == ':' || c.is_control()) || name.len() > 255 {
        return Err("a socket name must be 1-255 characters without ':'".into());
    }
    let addr = if let Some(path) = addr.strip_prefix("unix:") {
        if path.is_empty() {
            return Err("unix: needs a path, e.g. unix:/run/app.sock".into());
        }
        ListenAddr::Unix(path.into())
    } else if let Some(hp) = addr.strip_prefix("tcp://") {
        ListenAddr::Tcp(tcp_addr(hp, false, hosts)?)
    } else if let Some(hp) = addr.strip_prefix("tcp6://") {
        ListenAddr::Tcp(tcp_addr(hp, true, hosts)?)
    } else {
        return Err("expected tcp://HOST:PORT, tcp6://[HOST]:PORT or unix:/path".into());
    };
    Ok(Listen {
        name: name.to_string(),
        addr,
    })
}

/// `HOST:PORT` of a tcp:// (`v6` false) or tcp6:// address: an IP literal of that family, or a
/// host name resolved through the hosts file.
fn tcp_addr(
    hp: &str,
    v6: bool,
    hosts: impl FnOnce() -> std::io::Result<Vec<u8>>,
) -> Result<SocketAddr, String> {
    let wrong_family =
        || "tcp:// takes an IPv4 address, tcp6:// an IPv6 one in brackets".to_string();
    if let Ok(sa) = hp.parse::<SocketAddr>() {
        return if sa.is_ipv6() == v6 {
            Ok(sa)
        } else {
            Err(wrong_family())
        };
    }
    let Some((host, port)) = hp.rsplit_once(':') else {
        return Err(format!(
            "'{hp}' is not HOST:PORT (e.g. 0.0.0.0:8080, [::]:8080, localhost:8080)"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "'{hp}' has no host (e.g. 0.0.0.0:8080, [::]:8080, localhost:8080)"
        ));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{port}' is not a port number (0-65535)"))?;
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) if inner.parse::<Ipv4Addr>().is_ok() => return Err(wrong_family()),
        Some(inner) => return Err(format!("'{inner}' is not an IPv6 address")),
        None => {}
    }
    if host.contains(':') || host.parse::<IpAddr>().is_ok() {
        return Err(if host.parse::<Ipv6Addr>().is_ok() {
            format!("an IPv6 address takes brackets: [{host}]:{port}")
        } else {
            wrong_family()
        });
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("'{host}' is not an IPv4 address"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(format!("'{host}' is not an IP address or a host name"));
    }
    let family = if v6 { "IPv6" } else { "IPv4" };
    let hosts = hosts();
    let found = hosts
        .as_ref()
        .ok()
        .and_then(|text| hosts_lookup(&String::from_utf8_lossy(text), host, v6));
    let localhost = host.eq_ignore_ascii_case("localhost").then_some(if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    });
    match (found.or(localhost), hosts) {
        (Some(ip), _) => Ok(SocketAddr::new(ip, port)),
        (None, Ok(_)) => Err(format!(
            "host '{host}' has no {family} address in {HOSTS} (sigward never asks DNS: give an IP address or add the name there)"
        )),
        (None, Err(e)) => Err(format!(
            "cannot look up host '{host}': cannot read {HOSTS}: {e} (sigward never asks DNS: give an IP address)"
        )),
    }
}

/// The first address of the family (`v6`) listed for `host` in hosts-file `text`, as the C
/// library's "files" lookup finds it: a line is `ADDRESS NAME [ALIAS...]` separated by blanks,
/// `#` starts a comment, names match without regard to ASCII case, malformed lines are skipped.
fn hosts_lookup(text: &str, host: &str, v6: bool) -> Option<IpAddr> {
    text.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_ascii_whitespace();
        let addr: IpAddr = fields.next()?.parse().ok()?;
        (addr.is_ipv6() == v6 && fields.any(|name| name.eq_ignore_ascii_case(host))).then_some(addr)
    })
}

/// A path to watch, made absolute now (sigward moves to `/` once the app runs) and plain: no
/// `.`, `//` or trailing `/`. `..` is refused: the watched directories are found from the path's
/// own names, never by resolving it.
pub(super) fn watch_path(text: &[u8]) -> Result<Vec<u8>, String> {
    if text.is_empty() {
        return Err("empty path (in SIGWARD_WATCH, ':' separates paths)".into());
    }
    let mut out = Vec::new();
    if text.first() != Some(&b'/') {
        let cwd = std::env::current_dir().map_err(|e| format!("cannot make it absolute: {e}"))?;
        out.extend_from_slice(cwd.as_os_str().as_encoded_bytes());
    }
    for part in text.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("a watched path cannot contain '..' (give it without)".into()),
            _ => {
                if out.last() != Some(&b'/') {
                    out.push(b'/');
                }
                out.extend_from_slice(part);
            }
        }
    }
    if out.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}

/// `signal:SIG` or `restart`. Not KILL or STOP: a change asks the app to reload, and neither can
/// be handled, so either would only ever end or freeze the app.
pub(super) fn parse_on_change(text: &str) -> Result<OnChange, String> {
    match text {
        "restart" => Ok(OnChange::Restart),
        _ => match text.strip_prefix("signal:") {
            Some(sig) => match signals::parse(sig)? {
                sig @ (libc::SIGKILL | libc::SIGSTOP) => Err(format!(
                    "{} cannot be handled, so it can never ask the app to reload",
                    signals::Name(sig)
                )),
                sig => Ok(OnChange::Signal(sig)),
            },
            None => Err("expected signal:SIG (e.g. signal:HUP) or restart".into()),
        },
    }
}

/// `--termination-log`: an absolute path, or `off`.
pub(super) fn parse_termination_log(text: &str) -> Result<String, String> {
    if text == "off" || text.starts_with('/') {
        Ok(text.to_string())
    } else {
        Err("expected an absolute path or off".into())
    }
}

pub(super) fn parse_ready(text: &str) -> Result<Ready, String> {
    match text {
        "notify" => Ok(Ready::Notify),
        _ => match text.strip_prefix("after:") {
            Some(d) => parse_duration(d).map(Ready::After),
            None => Err("expected notify or after:DURATION".into()),
        },
    }
}

/// Compact human form: `25s`, `1.5s`, `500ms`, `2m30s` (as the log writes durations).
pub fn fmt_duration(d: Duration) -> String {
    crate::log::Dur(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::rejected;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("25s"), Ok(Duration::from_secs(25)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(
            parse_duration("1h1ms"),
            Ok(Duration::from_millis(3_600_001))
        );
        // What the log writes reads back: `1.5s`, `1.25s`, `0.5`.
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1.25s"), Ok(Duration::from_millis(1250)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        for d in [1500, 1250, 1005, 90_000, 999, 3_601_000] {
            let d = Duration::from_millis(d);
            assert_eq!(
                parse_duration(&fmt_duration(d)),
                Ok(d),
                "{}",
                fmt_duration(d)
            );
        }
        for bad in [
            "",
            "s",
            "5x",
            "-1s",
            "1..5s",
            ".s",
            "1.0000000001s",
            "ms5",
            "99999999999999999999h",
            "5 s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_capped_at_100_years_and_say_so() {
        assert_eq!(parse_duration("876000h"), Ok(MAX_DURATION));
        assert_eq!(parse_duration("3153600000"), Ok(MAX_DURATION));
        assert_eq!(
            parse_duration("875999h59m59s1000ms"),
            Ok(MAX_DURATION),
            "parts add up to exactly the maximum"
        );
        for over in [
            "876000h1ms",
            "3153600001",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999h",
            "18446744073709551615ms",
            "307445734561825861m",
            "9999999999999999999999999999999s",
        ] {
            assert_eq!(
                parse_duration(over),
                Err("more than the maximum of 100 years (876000h)".to_string()),
                "{over}"
            );
        }
    }

    const HOSTS_FILE: &str = "\
# The usual container file, with the odd shapes a hand-edited one has.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback   # loopback
fe00::0\tip6-localnet
10.0.0.7  web-0.web.default.svc.cluster.local\tweb-0   # pod IP
10.0.0.8 Cache cache.internal
#10.0.0.9 commented-out
   10.0.0.10   indented\t\tTabbed
not-an-address broken
fe80::1%eth0 scoped
2001:db8::5 only-v6
10.0.0.11 web-0
";

    fn fixture() -> std::io::Result<Vec<u8>> {
        Ok(HOSTS_FILE.as_bytes().to_vec())
    }

    #[test]
    fn hosts_file_lookup() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let v4 = |h| hosts_lookup(HOSTS_FILE, h, false);
        let v6 = |h| hosts_lookup(HOSTS_FILE, h, true);
        assert_eq!(v4("localhost"), ip("127.0.0.1"));
        assert_eq!(v6("localhost"), ip("::1"));
        assert_eq!(v6("ip6-loopback"), ip("::1"), "an alias");
        assert_eq!(v4("web-0"), ip("10.0.0.7"), "the first line wins");
        assert_eq!(v4("web-0.web.default.svc.cluster.local"), ip("10.0.0.7"));
        assert_eq!(v4("cache"), ip("10.0.0.8"), "names match in any case");
        assert_eq!(v4("CACHE.INTERNAL"), ip("10.0.0.8"));
        assert_eq!(v4("tabbed"), ip("10.0.0.10"), "blanks and tabs separate");
        assert_eq!(v4("indented"), ip("10.0.0.10"));
        assert_eq!(v6("only-v6"), ip("2001:db8::5"));
        for (host, fam6) in [
            ("commented-out", false),
            ("loopback", true),
            ("pod", false),
            ("broken", false),
            ("scoped", true),
            ("only-v6", false),
            ("web-0", true),
            ("web", false),
            ("", false),
        ] {
            assert_eq!(hosts_lookup(HOSTS_FILE, host, fam6), None, "{host}");
        }
    }

    #[test]
    fn listen_takes_ip_literals_and_host_names_from_the_hosts_file() {
        let tcp = |text: &str| match parse_listen_in(text, fixture).map(|l| l.addr) {
            Ok(ListenAddr::Tcp(sa)) => Ok(sa.to_string()),
            other => Err(format!("{other:?}")),
        };
        for (text, addr) in [
            ("tcp://0.0.0.0:8080", "0.0.0.0:8080"),
            ("tcp6://[::]:8080", "[::]:8080"),
            ("tcp://localhost:80", "127.0.0.1:80"),
            ("tcp6://localhost:80", "[::1]:80"),
            ("tcp://web-0:8080", "10.0.0.7:8080"),
            ("tcp://Cache:1", "10.0.0.8:1"),
            ("tcp6://only-v6:443", "[2001:db8::5]:443"),
        ] {
            assert_eq!(tcp(text).as_deref(), Ok(addr), "{text}");
        }
        let l = parse_listen_in("web=tcp://web-0:0", fixture).unwrap();
        assert_eq!(l.name, "web");
    }

    #[test]
    fn localhost_is_loopback_even_without_a_hosts_file_line() {
        let none = || Ok(b"10.0.0.1 other\n".to_vec());
        let missing = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        for hosts in [none as fn() -> _, missing] {
            let addr = |text| match parse_listen_in(text, hosts).unwrap().addr {
                ListenAddr::Tcp(sa) => sa,
                ListenAddr::Unix(_) => unreachable!(),
            };
            assert_eq!(addr("tcp://LOCALHOST:1"), "127.0.0.1:1".parse().unwrap());
            assert_eq!(addr("tcp6://localhost:1"), "[::1]:1".parse().unwrap());
        }
    }

    #[test]
    fn literal_addresses_never_read_the_hosts_file() {
        let never = || -> std::io::Result<Vec<u8>> { panic!("read the hosts file") };
        for text in [
            "tcp://127.0.0.1:1",
            "tcp6://[::1]:1",
            "unix:/x",
            "tcp://1.2.3.4",
        ] {
            let _ = parse_listen_in(text, never);
        }
    }

    #[test]
    fn listen_rejects_what_it_cannot_resolve_and_names_the_host() {
        let missing = || Err(std::io::Error::from(std::io::ErrorKind::NotFound));
        for (text, needle) in [
            (
                "tcp://nowhere:80",
                "host 'nowhere' has no IPv4 address in /etc/hosts",
            ),
            (
                "tcp6://web-0:80",
                "host 'web-0' has no IPv6 address in /etc/hosts",
            ),
            ("tcp://only-v6:80", "host 'only-v6' has no IPv4 address"),
            ("tcp6://127.0.0.1:1", "tcp:// takes an IPv4 address"),
            ("tcp://[::1]:1", "tcp:// takes an IPv4 address"),
            ("tcp6://[127.0.0.1]:1", "tcp:// takes an IPv4 address"),
            ("tcp6://[localhost]:1", "'localhost' is not an IPv6 address"),
            ("tcp6://::1:80", "an IPv6 address takes brackets: [::1]:80"),
            ("tcp://localhost", "'localhost' is not HOST:PORT"),
            ("tcp://localhost:http", "'http' is not a port number"),
            ("tcp://localhost:65536", "'65536' is not a port number"),
            ("tcp://:80", "':80' has no host"),
            ("tcp://999.1.1.1:80", "'999.1.1.1' is not an IPv4 address"),
            ("tcp://a b:80", "'a b' is not an IP address or a host name"),
            ("tcp://bogus", "is not HOST:PORT"),
        ] {
            let err = parse_listen_in(text, fixture).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let err = parse_listen_in("tcp://web-0:80", missing).unwrap_err();
        assert!(
            err.starts_with("cannot look up host 'web-0': cannot read /etc/hosts"),
            "{err}"
        );
        let msg = rejected(&["--listen", "tcp://nowhere.invalid:80", "app"]).unwrap();
        assert!(
            msg.starts_with("invalid value 'tcp://nowhere.invalid:80' for '--listen <ADDR>': host 'nowhere.invalid'"),
            "{msg}"
        );
    }

    #[test]
    fn durations_display_compactly() {
        for (input, shown) in [
            ("0", "0ms"),
            ("500ms", "500ms"),
            ("1500ms", "1.5s"),
            ("1250ms", "1.25s"),
            ("25s", "25s"),
            ("120", "2m"),
            ("90s", "1m30s"),
        ] {
            assert_eq!(fmt_duration(parse_duration(input).unwrap()), shown);
        }
    }

    mod hostile_input {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn value_parsers_never_panic(s in "\\PC*|.*") {
                let _ = parse_duration(&s);
                let _ = signals::parse(&s);
                let _ = parse_rewrite(&s);
                let _ = parse_ready(&s);
                let _ = parse_listen_in(&s, fixture);
                let _ = parse_listen_in(&format!("tcp://{s}"), fixture);
                let _ = parse_listen_in(&format!("tcp6://{s}"), fixture);
                let _ = hosts_lookup(&s, "localhost", false);
                let _ = hosts_lookup(HOSTS_FILE, &s, true);
            }

            #[test]
            fn a_duration_is_its_exact_sum_when_at_most_the_maximum_and_rejected_above(
                parts in prop::collection::vec(
                    (any::<u64>().prop_map(|n| n >> (n % 64)), prop::sample::select(vec!["ms", "s", "m", "h"])),
                    1..4,
                ),
            ) {
                let text: String = parts.iter().map(|(n, unit)| format!("{n}{unit}")).collect();
                let ms: u128 = parts
                    .iter()
                    .map(|&(n, unit)| u128::from(n) * match unit { "ms" => 1, "s" => 1000, "m" => 60_000, _ => 3_600_000 })
                    .sum();
                match parse_duration(&text) {
                    Ok(d) => {
                        prop_assert!(d <= MAX_DURATION);
                        prop_assert_eq!(d.as_millis(), ms);
                    }
                    Err(e) => {
                        prop_assert!(ms > MAX_DURATION.as_millis(), "{text}: {e}");
                        prop_assert!(e.contains("100 years"), "{e}");
                    }
                }
            }
        }
    }
}
