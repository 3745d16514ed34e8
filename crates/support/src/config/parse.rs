//! Turning the command line and environment into a [`Config`]: empty variables count as unset, `--help`
//! and `--version` become text to print, and every clap error becomes one line.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

use super::{Config, ConfigError, Parsed};

impl Config {
    /// Parses the process arguments and environment (call `dotenvy::dotenv()` first).
    pub fn load() -> Result<Parsed, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// Parses the given arguments (first = program name) and the environment, then validates.
    pub(crate) fn load_from<I, T>(args: I) -> Result<Parsed, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut cmd = Self::command_with_help();
        // Empty environment values (`KEY=` lines of a copied .env.example) mean "unset".
        let empty: Vec<clap::Id> = cmd
            .get_arguments()
            .filter(|a| a.get_env().and_then(std::env::var_os).is_some_and(|v| v.is_empty()))
            .map(|a| a.get_id().clone())
            .collect();
        for id in empty {
            cmd = cmd.mut_arg(id, |a| a.env(None::<&str>));
        }
        let matches = match cmd.try_get_matches_from(args) {
            Ok(m) => m,
            Err(e) => {
                return match e.kind() {
                    clap::error::ErrorKind::DisplayHelp
                    | clap::error::ErrorKind::DisplayVersion
                    | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                        Ok(Parsed::Print(e.render().to_string()))
                    }
                    _ => Err(ConfigError::Invalid(one_line(&e.render().to_string()))),
                };
            }
        };
        let config = Config::from_arg_matches(&matches).map_err(|e| ConfigError::Invalid(one_line(&e.to_string())))?;
        config.validate()?;
        Ok(Parsed::Run(Box::new(config)))
    }

    /// The clap command, with the help texts that name constants (clap attributes take only literals).
    pub(super) fn command_with_help() -> clap::Command {
        Config::command().mut_arg("model", |a| {
            a.help(format!(
                "Model name (default: {} for OpenAI, {} for Gemini; required for openai-compatible)",
                agents::DEFAULT_OPENAI_MODEL,
                agents::DEFAULT_GEMINI_MODEL
            ))
        })
    }
}

/// Reduces a clap error rendering to its first meaningful line, without the `error: ` prefix.
fn one_line(rendered: &str) -> String {
    let line = rendered.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("invalid arguments");
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}
