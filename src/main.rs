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
    hookrelay::cli::main(hookrelay::cli::Cli::parse())
}
