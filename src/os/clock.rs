//! Monotonic time as a plain number, so the pure machines can be tested with any instant and no
//! arithmetic on a deadline can overflow.
//!
//! `std::time::Instant + Duration` panics on overflow, and an init that panics takes the container
//! with it (a 2^64-second grace period did exactly that). [`Mono`] is CLOCK_MONOTONIC in
//! nanoseconds; adding saturates at "never".

use std::time::Duration;

/// A point on CLOCK_MONOTONIC, in nanoseconds. `Mono::NEVER` is later than any real instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub u64);

impl Mono {
    #[cfg(test)]
    pub const NEVER: Mono = Mono(u64::MAX);

    /// The current instant. CLOCK_MONOTONIC does not jump with the wall clock.
    pub fn now() -> Mono {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec into a valid, writable local.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let ns = u64::try_from(ts.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0));
        Mono(ns)
    }

    /// `self + d`, saturating at [`Mono::NEVER`].
    pub fn after(self, d: Duration) -> Mono {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Mono(self.0.saturating_add(ns))
    }

    /// How long from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_any_duration_saturates() {
        assert_eq!(Mono(5).after(Duration::MAX), Mono::NEVER);
        assert_eq!(
            Mono(u64::MAX - 1).after(Duration::from_secs(1)),
            Mono::NEVER
        );
        assert_eq!(Mono(1).after(Duration::from_nanos(2)), Mono(3));
        assert_eq!(Mono(1).since(Mono(5)), Duration::ZERO);
    }

    #[test]
    fn now_moves_forward() {
        let a = Mono::now();
        let b = Mono::now();
        assert!(b >= a && a.0 > 0);
    }
}
