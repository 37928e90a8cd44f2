//! The per-invocation [`Context`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ironlambda_api_client::NextHeaders;
use serde::{Deserialize, Serialize};

use crate::config::Config;

/// What Lambda says about one invocation, next to the event.
///
/// Every field is public and [`Context::new`] builds one for tests.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Context {
    /// The invocation's request id.
    pub request_id: String,
    /// When Lambda stops the invocation; `None` when the platform sent no usable deadline.
    pub deadline: Option<SystemTime>,
    /// The ARN the caller invoked (may carry a version or alias qualifier).
    pub invoked_function_arn: String,
    /// The X-Ray trace header (`Root=…;Parent=…;Sampled=…`), when tracing applies.
    pub xray_trace_id: Option<String>,
    /// The caller's client context (mobile SDK invokes), when sent and readable.
    pub client_context: Option<ClientContext>,
    /// The Amazon Cognito identity of the caller, when sent and readable.
    pub identity: Option<CognitoIdentity>,
    /// The tenant id, for functions in tenant-isolation mode.
    pub tenant_id: Option<String>,
    /// The function's configuration, shared by every invocation.
    pub config: Arc<Config>,
}

/// Client context sent by the AWS Mobile SDK.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientContext {
    /// Information about the calling application.
    #[serde(default)]
    pub client: Option<ClientApplication>,
    /// Custom values set by the calling application.
    #[serde(default)]
    pub custom: HashMap<String, serde_json::Value>,
    /// Environment values set by the mobile SDK.
    #[serde(default)]
    pub env: HashMap<String, serde_json::Value>,
}

/// The calling application, as described in a [`ClientContext`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientApplication {
    /// Installation id.
    #[serde(default)]
    pub installation_id: Option<String>,
    /// Application title.
    #[serde(default)]
    pub app_title: Option<String>,
    /// Version name.
    #[serde(default)]
    pub app_version_name: Option<String>,
    /// Version code.
    #[serde(default)]
    pub app_version_code: Option<String>,
    /// Package name.
    #[serde(default)]
    pub app_package_name: Option<String>,
}

/// The Amazon Cognito identity that authorised the invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CognitoIdentity {
    /// The identity id.
    #[serde(default)]
    pub cognito_identity_id: Option<String>,
    /// The identity pool id.
    #[serde(default)]
    pub cognito_identity_pool_id: Option<String>,
}

impl Context {
    /// A context with only a request id and a configuration, for tests.
    pub fn new(request_id: impl Into<String>, config: Arc<Config>) -> Self {
        Context {
            request_id: request_id.into(),
            deadline: None,
            invoked_function_arn: String::new(),
            xray_trace_id: None,
            client_context: None,
            identity: None,
            tenant_id: None,
            config,
        }
    }

    /// Sets the deadline (builder style, for tests).
    pub fn with_deadline(mut self, deadline: SystemTime) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Builds the context from a `/next` reply's headers. Nothing here can fail: a deadline
    /// that is not a number means no deadline, and a client context or identity that cannot
    /// be read is left out (edge-cases A6–A8).
    pub(crate) fn from_next(headers: NextHeaders, config: Arc<Config>) -> Self {
        Context {
            request_id: headers.request_id,
            deadline: headers
                .deadline_ms
                .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms))),
            invoked_function_arn: headers.invoked_function_arn,
            xray_trace_id: headers.trace_id,
            client_context: headers
                .client_context
                .as_deref()
                .and_then(parse_json_or_base64),
            identity: headers
                .cognito_identity
                .as_deref()
                .and_then(parse_json_or_base64),
            tenant_id: headers.tenant_id,
            config,
        }
    }

    /// Time left before the deadline: `None` without a deadline, zero once it has passed
    /// (a deadline in the past, such as cargo-lambda's constant 1970 one, never fails).
    pub fn remaining(&self) -> Option<Duration> {
        let deadline = self.deadline?;
        Some(
            deadline
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
}

/// Lambda sends decoded JSON; some emulators (cargo-lambda) send it base64-encoded.
fn parse_json_or_base64<T: serde::de::DeserializeOwned>(raw: &str) -> Option<T> {
    serde_json::from_str(raw).ok().or_else(|| {
        let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
        serde_json::from_slice(&decoded).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers() -> NextHeaders {
        NextHeaders {
            request_id: "req-1".into(),
            ..NextHeaders::default()
        }
    }

    #[test]
    fn deadlines_never_panic() {
        let cfg = Arc::new(Config::default());
        let none = Context::from_next(headers(), cfg.clone());
        assert_eq!(none.deadline, None);
        assert_eq!(none.remaining(), None);

        // cargo-lambda sends the constant 600000: ten minutes after 1970.
        let past = Context::from_next(
            NextHeaders {
                deadline_ms: Some(600_000),
                ..headers()
            },
            cfg.clone(),
        );
        assert_eq!(past.remaining(), Some(Duration::ZERO));

        let absurd = Context::from_next(
            NextHeaders {
                deadline_ms: Some(u64::MAX),
                ..headers()
            },
            cfg.clone(),
        );
        let _ = absurd.remaining();

        let soon = SystemTime::now() + Duration::from_secs(30);
        let ms = soon.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let ctx = Context::from_next(
            NextHeaders {
                deadline_ms: Some(ms),
                ..headers()
            },
            cfg,
        );
        let left = ctx.remaining().unwrap();
        assert!(
            left > Duration::from_secs(25) && left <= Duration::from_secs(30),
            "{left:?}"
        );
    }

    #[test]
    fn client_context_json_base64_or_garbage() {
        let json = r#"{"client":{"app_title":"demo"},"custom":{"k":"v"},"env":{}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(json);
        let cfg = Arc::new(Config::default());
        for raw in [json, b64.as_str()] {
            let ctx = Context::from_next(
                NextHeaders {
                    client_context: Some(raw.into()),
                    ..headers()
                },
                cfg.clone(),
            );
            let cc = ctx.client_context.expect(raw);
            assert_eq!(cc.client.unwrap().app_title.as_deref(), Some("demo"));
            assert_eq!(cc.custom["k"], "v");
        }
        let bad = Context::from_next(
            NextHeaders {
                client_context: Some("{not json".into()),
                ..headers()
            },
            cfg.clone(),
        );
        assert!(bad.client_context.is_none());

        let id = r#"{"cognitoIdentityId":"i","cognitoIdentityPoolId":"p"}"#;
        let ctx = Context::from_next(
            NextHeaders {
                cognito_identity: Some(id.into()),
                ..headers()
            },
            cfg,
        );
        assert_eq!(
            ctx.identity.unwrap().cognito_identity_pool_id.as_deref(),
            Some("p")
        );
    }

    proptest::proptest! {
        /// Whatever the `/next` headers hold, a context is built and its deadline read
        /// without a panic (edge-cases A5–A8).
        #[test]
        fn contexts_from_any_headers_never_panic(
            request_id in ".{0,40}",
            deadline in proptest::option::of(proptest::prelude::any::<u64>()),
            client_context in proptest::option::of(".{0,120}"),
            cognito in proptest::option::of(".{0,120}"),
        ) {
            let headers = ironlambda_api_client::NextHeaders {
                request_id,
                deadline_ms: deadline,
                client_context,
                cognito_identity: cognito,
                ..Default::default()
            };
            let ctx = Context::from_next(headers, Arc::new(Config::default()));
            let _ = ctx.remaining();
        }
    }
}
