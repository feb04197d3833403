//! How a command speaks: `say!` for its output, `fail` for its error.

use std::process::ExitCode;

/// `println!` for what a command prints: when the reader has gone away (a
/// listing piped into `head`), the command ends quietly with exit 0, as
/// other command-line tools do, instead of panicking on the failed print.
/// Any other failure to write is an error (exit 1).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::output_failed(e)
        }
    }};
}

/// A command's output could not be written (see `say!`).
pub fn output_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("hookrelay: cannot write the output: {e}");
    std::process::exit(1);
}

pub fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("hookrelay: {e}");
    ExitCode::from(1)
}
