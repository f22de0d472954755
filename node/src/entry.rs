//! The `vaned` process: tune the allocators, start the runtime, parse the configuration,
//! set up logging, run the member. Shared by `vaned` and the test-only `vaned-planted`.

use std::ffi::OsString;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Runs `vaned` with `args` (the program name first) until it is told to stop. Builds the
/// process's runtime itself rather than through `#[tokio::main]`, to size its worker
/// threads from the configuration and to bound its blocking pool to four threads per
/// core, at least eight.
pub fn run(args: Vec<OsString>) -> ExitCode {
    tune_allocators();
    let config = match Config::load_from(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("vaned: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = build_runtime(config.worker_threads.unwrap_or_else(cores));
    match runtime {
        Ok(runtime) => runtime.block_on(main_with(config)),
        Err(e) => {
            eprintln!("vaned: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The member's runtime, with `workers` threads running its tasks (`--worker-threads`).
///
/// Three members sharing two cores, each with a worker per core, ran six workers that
/// woke, stole from and preempted each other. Measured side by side on such a machine
/// with one binary (`vane-bench compare`, put rows, two runs each), one worker per member
/// did 13,513 rather than 11,553 puts/s at 64 clients, with 101 rather than 114 µs of the
/// members' CPU per put, and 16,701 rather than 15,452 at 256 clients. A member alone on
/// its machine keeps one worker per core.
fn build_runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .worker_threads(workers)
        .max_blocking_threads(blocking_threads_max(cores()));
    without_lifo_slot(&mut builder);
    builder.build()
}

async fn main_with(config: Config) -> ExitCode {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match crate::server::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaned: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many threads the blocking pool may hold. Every read that needs the disk (a block
/// not in RocksDB's cache) or many records runs there; what memory answers is answered on
/// the async thread. Tokio's default of 512 let 64 concurrent clients keep 33 threads
/// alive, each with its own stack and allocator heap (about 3 MiB in all, by `smaps`),
/// for no more throughput than the cores can give. Four per core still leaves reads that
/// wait on the disk overlapping; requests beyond the bound queue in order.
fn blocking_threads_max(cores: usize) -> usize {
    (4 * cores).max(8)
}

/// Sets how both allocators give memory back; a member's resident memory is what an
/// operator sizes machines by.
///
/// RocksDB's allocations (memtable arenas above all, about a megabyte each) go through
/// glibc's malloc. glibc serves a large allocation with `mmap` and returns it when freed,
/// but after the first such free it raises its threshold to that size, so later arenas
/// come from its heaps, which keep what they once held. Fixing the threshold keeps every
/// large block mapped on its own and returned when RocksDB frees it: after 130,000 puts a
/// member held 13 MiB less, at the same throughput. glibc also gives each thread that
/// contends for a heap a new one, up to eight per core, and memory freed in one heap is
/// not reused by another: with one or two heaps a member held about 8 MiB less after the
/// same puts, at the same throughput; one per core is kept. Small blocks, most of
/// RocksDB's, come from per-thread caches without the heap's lock either way.
///
/// mimalloc (Rust's allocations) by default returns freed pages to the OS a second after
/// they are freed, whole arena ranges ten seconds after; [`PURGE_DELAY_MS`] makes that
/// prompt. Purging at once held 2-3 MiB less per member after the same puts. What it
/// still holds is live: collecting each worker's heap whenever it went idle
/// (`mi_collect`) left the same 33 MiB of anonymous memory after 140,000 puts.
fn tune_allocators() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// glibc's initial threshold; setting it explicitly turns its growth off.
        const MMAP_THRESHOLD_BYTES: libc::c_int = 128 * 1024;
        let arenas = libc::c_int::try_from(cores()).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets tuning parameters of glibc's allocator; it is called
        // before RocksDB is opened, and glibc serialises it with allocations anyway.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
    // SAFETY: mi_option_set stores an integer option that mimalloc reads when it next
    // purges; any value is valid for this option.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

/// Turns off the runtime's LIFO slot, so that a woken task waits its turn behind the
/// tasks already queued rather than running next.
///
/// The slot speeds up a ping-pong between two tasks, but it splits the replies of a
/// commit. One apply batch wakes the handlers of its writes together; each handler hands
/// its response to its connection's task, which the slot then ran at once, writing that
/// one response to the socket before the next handler had run. Queued behind them
/// instead, the connection task finds every finished response and writes them in one
/// `writev`. With three members and 64 clients on the same two cores, measured side by
/// side with one binary (three pairs): writev calls per second fell from about 15,000
/// to 6,000 across the members, CPU per put by 20%, and puts per second rose from
/// 8,086-8,406 to 9,896-11,144; at 256 clients 12,487-12,995 became 14,135-14,958. One
/// client, which has nothing to batch, lost about 3.5% (853-881 against 886-914 puts/s).
///
/// Tokio offers the switch only to builds with `--cfg tokio_unstable`, which
/// `.cargo/config.toml` sets for this workspace; a build whose `RUSTFLAGS` override it
/// keeps the slot (and `the_build_turns_the_runtime_lifo_slot_off` fails).
fn without_lifo_slot(builder: &mut tokio::runtime::Builder) {
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    #[cfg(not(tokio_unstable))]
    let _ = builder;
}

/// How long mimalloc keeps freed pages before returning them (its default is 1,000 ms,
/// ten times that for arena ranges). 10 ms was mimalloc 2's default: a burst's buffers are
/// still reused by the next burst, and an idle member does not hold the last one's peak.
const PURGE_DELAY_MS: libc::c_long = 10;

/// mimalloc's `mi_option_purge_delay`, the sixteenth entry of `mi_option_e` in
/// `mimalloc.h`; the sys crate does not name it. A test checks it against its default.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_turns_the_runtime_lifo_slot_off() {
        // Read through black_box: the point is what this build was compiled with.
        assert!(
            std::hint::black_box(cfg!(tokio_unstable)),
            "built without --cfg tokio_unstable (see .cargo/config.toml): vaned keeps \
             the runtime's LIFO slot and writes one response per syscall under load"
        );
    }

    #[test]
    fn the_purge_delay_option_is_the_one_mimalloc_documents() {
        // mimalloc 3 documents a 1,000 ms default, and no other option defaults to 1,000;
        // read before any test sets it (only `tune_allocators` does, and no test calls it).
        // SAFETY: mi_option_get reads an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }

    #[test]
    fn the_runtime_runs_as_many_workers_as_configured() {
        for workers in [1, 3] {
            let runtime = build_runtime(workers).unwrap();
            assert_eq!(runtime.metrics().num_workers(), workers);
        }
    }

    #[test]
    fn the_blocking_pool_grows_with_the_cores_and_never_below_eight() {
        assert_eq!(blocking_threads_max(1), 8);
        assert_eq!(blocking_threads_max(2), 8);
        assert_eq!(blocking_threads_max(16), 64);
    }
}
