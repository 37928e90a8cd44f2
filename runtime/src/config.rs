//! The function's configuration, read once at init from Lambda's environment (protocol.md §7).

use std::fmt;

/// What Lambda tells a function about itself through its environment.
///
/// Every field is public so tests can build one; [`Config::from_env`] reads the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub function_name: String,
    /// `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST` or a number).
    pub version: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` in MB.
    pub memory_mb: u32,
    /// `AWS_LAMBDA_LOG_GROUP_NAME`.
    pub log_group: String,
    /// `AWS_LAMBDA_LOG_STREAM_NAME`.
    pub log_stream: String,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` (`on-demand`, `provisioned-concurrency`, `snap-start`, …).
    pub init_type: String,
    /// `AWS_LAMBDA_MAX_CONCURRENCY`: how many invocations one environment may run at once
    /// (Lambda Managed Instances, protocol.md §8); 1 when unset.
    pub max_concurrency: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            function_name: "function".to_owned(),
            version: "$LATEST".to_owned(),
            memory_mb: 128,
            log_group: String::new(),
            log_stream: String::new(),
            init_type: "on-demand".to_owned(),
            max_concurrency: 1,
        }
    }
}

/// A configuration variable that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    variable: &'static str,
    value: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} has an invalid value {:?}", self.variable, self.value)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the configuration through `lookup` (for tests); missing variables take the
    /// defaults of a local run, malformed ones are an error.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let d = Config::default();
        let positive = |variable: &'static str, default: u32| match lookup(variable) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError { variable, value: v }),
        };
        let memory_mb = positive("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", d.memory_mb)?;
        let max_concurrency = positive("AWS_LAMBDA_MAX_CONCURRENCY", d.max_concurrency)?;
        Ok(Config {
            function_name: lookup("AWS_LAMBDA_FUNCTION_NAME").unwrap_or(d.function_name),
            version: lookup("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or(d.version),
            memory_mb,
            log_group: lookup("AWS_LAMBDA_LOG_GROUP_NAME").unwrap_or(d.log_group),
            log_stream: lookup("AWS_LAMBDA_LOG_STREAM_NAME").unwrap_or(d.log_stream),
            init_type: lookup("AWS_LAMBDA_INITIALIZATION_TYPE").unwrap_or(d.init_type),
            max_concurrency,
        })
    }

    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_values_and_defaults() {
        let c = Config::from_lookup(|k| match k {
            "AWS_LAMBDA_FUNCTION_NAME" => Some("hello".into()),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE" => Some("512".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.function_name, "hello");
        assert_eq!(c.memory_mb, 512);
        assert_eq!(c.version, "$LATEST");
    }

    #[test]
    fn max_concurrency_is_one_unless_lambda_says_more() {
        assert_eq!(Config::from_lookup(|_| None).unwrap().max_concurrency, 1);
        let c = Config::from_lookup(|k| (k == "AWS_LAMBDA_MAX_CONCURRENCY").then(|| "16".into()));
        assert_eq!(c.unwrap().max_concurrency, 16);
        for bad in ["0", "many", "-2"] {
            let e = Config::from_lookup(|k| {
                (k == "AWS_LAMBDA_MAX_CONCURRENCY").then(|| bad.to_owned())
            })
            .unwrap_err();
            assert!(e.to_string().contains("AWS_LAMBDA_MAX_CONCURRENCY"), "{e}");
        }
    }

    #[test]
    fn malformed_memory_is_an_error() {
        for bad in ["lots", "0", "-1", ""] {
            let e = Config::from_lookup(|k| {
                (k == "AWS_LAMBDA_FUNCTION_MEMORY_SIZE").then(|| bad.to_owned())
            })
            .unwrap_err();
            assert!(
                e.to_string().contains("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
                "{e}"
            );
        }
    }
}
