//! `hookrelay generate man|completions`: the man pages and shell
//! completions, rendered from the same clap definitions the binary parses
//! with, so they cannot drift from it. Hidden: scripts/package.sh runs it
//! with the binary it packages (a build script would have to compile the
//! whole command-line module a second time).

use clap::CommandFactory as _;
use std::path::Path;
use std::process::ExitCode;

use super::args::{Cli, GenerateCommand};

pub fn generate(what: GenerateCommand) -> ExitCode {
    let dir = match &what {
        GenerateCommand::Man { dir } | GenerateCommand::Completions { dir, .. } => dir.clone(),
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return super::fail(format!("cannot create {}: {e}", dir.display()));
    }
    let result = match what {
        GenerateCommand::Man { .. } => man(&dir),
        GenerateCommand::Completions { shell, .. } => {
            let mut cmd = Cli::command();
            clap_complete::generate_to(shell, &mut cmd, "hookrelay", &dir).map(|path| {
                say!("{}", path.display());
            })
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(format!("cannot write into {}: {e}", dir.display())),
    }
}

/// Every visible command's page: `hookrelay.1`, `hookrelay-init.1`,
/// `hookrelay-dead-letters-replay.1`, …
fn man(dir: &Path) -> std::io::Result<()> {
    let mut cmd = Cli::command();
    cmd.build();
    page(dir, &cmd, "hookrelay")
}

fn page(dir: &Path, cmd: &clap::Command, name: &str) -> std::io::Result<()> {
    // clap takes a command's name as `&'static str` (without its `string`
    // feature); this runs once per page in a short-lived process.
    let cmd = cmd
        .clone()
        .name(&*Box::leak(name.to_owned().into_boxed_str()));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, out)?;
    say!("{}", path.display());
    // clap's own `help` subcommands repeat the pages they point to.
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        page(dir, sub, &format!("{name}-{}", sub.get_name()))?;
    }
    Ok(())
}
