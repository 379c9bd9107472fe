//! sigward: an init for containers that forwards signals, reaps zombies and owns the stop sequence.
//!
//! `#![no_main]`: Rust's std runtime sets SIGPIPE to ignored before `main`, and an ignored signal
//! survives exec, so every app sigward started would inherit it. A plain C `main` leaves the
//! dispositions exactly as the caller set them, and lets sigward block signals before any other
//! work, so a stop signal that arrives during start-up waits for it instead of being lost.
#![no_main]

/// The allocator. musl's own (mallocng) maps and unmaps pages around the many small, short-lived
/// allocations of argument parsing: ~30 mmap/munmap calls per start. dlmalloc takes one 64 KiB
/// mapping and reuses it: measured side by side (scripts/bench --also), start-up overhead -16 %
/// and SIGTERM-to-gone -5 %, for 7 KiB of binary. Thread-safe (a mutex), and never entered by
/// the forked child before exec (spawn allocates nothing there).
#[global_allocator]
static ALLOC: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

#[unsafe(no_mangle)]
extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: the C runtime passes argc valid, NUL-terminated strings in argv.
    unsafe { sigward::boot::main(argc, argv) }
}
