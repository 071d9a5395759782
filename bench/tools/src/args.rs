//! `--name value` flags; a flag may repeat (`--path a --path b`). Errors name the flag.

use std::collections::HashMap;
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};

/// The flags of one subcommand.
pub struct Flags(HashMap<String, Vec<String>>);

impl Flags {
    /// Reads `--name value` pairs.
    pub fn parse(mut argv: impl Iterator<Item = String>) -> Result<Flags> {
        let mut flags: HashMap<String, Vec<String>> = HashMap::new();
        while let Some(name) = argv.next() {
            let Some(key) = name.strip_prefix("--") else { bail!("expected a --flag, found `{name}`") };
            let value = argv.next().ok_or_else(|| anyhow!("--{key} needs a value"))?;
            flags.entry(key.to_owned()).or_default().push(value);
        }
        Ok(Flags(flags))
    }

    /// The last value of a required flag.
    pub fn text(&self, key: &str) -> Result<&str> {
        self.optional(key).ok_or_else(|| anyhow!("--{key} is required"))
    }

    /// The last value of a flag, when given.
    pub fn optional(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|values| values.last()).map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub fn all(&self, key: &str) -> &[String] {
        self.0.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    /// A required flag parsed as `T`.
    pub fn number<T: FromStr>(&self, key: &str) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.text(key)?.parse().with_context(|| format!("--{key} is not a valid number"))
    }

    /// An optional flag parsed as `T`, or `default`.
    pub fn number_or<T: FromStr>(&self, key: &str, default: T) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.optional(key) {
            None => Ok(default),
            Some(text) => text.parse().with_context(|| format!("--{key} is not a valid number")),
        }
    }
}
