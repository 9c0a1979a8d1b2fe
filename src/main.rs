//! The `marketflow` binary: argument parsing, config loading, logging setup and wiring
//! of the commands (README "Commands").

mod cli;
mod commands;
mod config;
mod config_env;
mod logging;

use std::process::ExitCode;

use clap::Parser;

/// A problem with how the command was invoked (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    logging::init(cli.log_format);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let usage = e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<config::ConfigErrors>().is_some();
            eprintln!("error: {}", format!("{e:#}").trim_end());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}
