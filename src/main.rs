//! pgconverge: parse the command line, run the subcommand on a tokio runtime, print the
//! whole error chain to stderr (and with `--json`, the failure object on stdout) and turn
//! the outcome into the exit code (0 ok, 1 verification found a difference, 2 an error,
//! 3 an error after which the target needs attention).

use std::process::ExitCode;

use clap::Parser;
use pgconverge::{cli, cmd, hint, out};

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if e.use_stderr() {
                // clap quotes a wrong value back: it may be a URL with its password.
                out::eprint(e.render().to_string());
            } else {
                // --help, --version: as clap styles them (a closed stdout is no crash).
                let _ = e.print();
            }
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let err = anyhow::anyhow!("cannot start the async runtime: {e}");
            return failed(&err, json);
        }
    };
    let result = runtime.block_on(cmd::run(cli));
    // A thread still blocked (a prompt left unanswered after an interruption) must not
    // keep the process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(outcome) => outcome.exit_code(),
        Err(err) => failed(&err, json),
    }
}

/// Report a failure: the error and its hints on stderr, the failure object on stdout
/// with `--json`; the exit code says what the target holds.
fn failed(err: &anyhow::Error, json: bool) -> ExitCode {
    out::eprint(hint::render(err));
    let mut failure = hint::Failure::of(err);
    failure.warnings = pgconverge::progress::warned();
    if json {
        let _ = out::json(&failure);
    }
    ExitCode::from(failure.exit_code)
}
