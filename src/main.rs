//! pgconverge: parse the command line, run the subcommand on a tokio runtime, print the
//! whole error chain to stderr and turn the outcome into the exit code
//! (0 ok, 1 verification found a difference, 2 an error, 3 the target needs attention).

use std::process::ExitCode;

use clap::Parser;
use pgconverge::{cli, cmd, hint};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    // A thread still blocked (a prompt left unanswered after an interruption) must not
    // keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => {
            eprint!("{}", hint::render(&err));
            ExitCode::from(hint::exit_code(&err))
        }
    }
}
