//! The `hookrelay` binary: parses the command line and hands over to the
//! library.

use clap::Parser;

/// mimalloc instead of glibc malloc: the relay allocates many small,
/// short-lived buffers per event (JSON, HTTP heads) across threads, where
/// glibc's arenas spent a fifth of the CPU (see BENCHMARKS.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    one_malloc_arena();
    hookrelay::cli::main(hookrelay::cli::Cli::parse())
}

/// With mimalloc taking the Rust allocations, what still goes through
/// glibc's malloc is SQLite's own memory (page caches, statements) on
/// the writer, reader and checkpoint threads. glibc gives each thread
/// that allocates an arena of its own, each keeping its freed memory;
/// one arena for them all holds about 1 MB less through a long backlog
/// and costs no throughput (BENCHMARKS.md, twelfth session). A
/// `MALLOC_ARENA_MAX` in the environment still wins.
#[cfg(all(target_os = "linux", target_env = "gnu", feature = "mimalloc"))]
fn one_malloc_arena() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets one of malloc's parameters, before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", feature = "mimalloc")))]
fn one_malloc_arena() {}
