//! `pgconverge profile show NAME` / `profile list`: the built-in profiles, which are
//! mapping files compiled into the binary.

use anyhow::{Result, anyhow};

use crate::cli::ProfileCommand;
use crate::cmd::Outcome;
use crate::hint::WithHint;
use crate::mapping::builtin;

pub fn run(command: ProfileCommand) -> Result<Outcome> {
    match command {
        ProfileCommand::Show(a) => {
            let Some(b) = builtin::find(&a.name) else {
                return Err(anyhow!("there is no built-in profile `{}`", a.name)).hint(format!(
                    "the built-in profiles are: {}",
                    builtin::names().join(", ")
                ));
            };
            // A mapping file to redirect into a file: written exactly.
            crate::out::data(b.toml.as_bytes());
        }
        ProfileCommand::List => {
            for b in builtin::BUILTINS {
                crate::out::println(format!(
                    "{}\tsource database ${} (default `{}`)",
                    b.name, b.variable, b.default_db
                ));
            }
        }
    }
    Ok(Outcome::Success)
}
