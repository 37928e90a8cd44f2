//! Header names of the Lambda control-plane APIs (protocol.md §1, §2), in lower case.
//! HTTP header names are case-insensitive; `http::HeaderMap` compares them that way.

/// Invocation id on `/next` replies.
pub const REQUEST_ID: &str = "lambda-runtime-aws-request-id";
/// Absolute deadline in Unix epoch milliseconds.
pub const DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
/// The ARN the caller invoked, possibly with a qualifier.
pub const INVOKED_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
/// X-Ray trace header value (`Root=…;Parent=…;Sampled=…`).
pub const TRACE_ID: &str = "lambda-runtime-trace-id";
/// The caller's client context, as JSON text.
pub const CLIENT_CONTEXT: &str = "lambda-runtime-client-context";
/// Amazon Cognito identity, as JSON text.
pub const COGNITO_IDENTITY: &str = "lambda-runtime-cognito-identity";
/// Tenant id, when the function runs in tenant-isolation mode.
pub const TENANT_ID: &str = "lambda-runtime-aws-tenant-id";
/// `streaming` on a streamed `/response`; absent for buffered ones (protocol.md §1.3).
pub const FUNCTION_RESPONSE_MODE: &str = "lambda-runtime-function-response-mode";
/// Error body of a streamed response that failed part-way: a trailer holding the base64
/// of the error JSON (protocol.md §1.3).
pub const FUNCTION_ERROR_BODY: &str = "lambda-runtime-function-error-body";
/// Error type sent with `/error` and `/init/error`, and as a trailer of a streamed
/// response that failed part-way.
pub const FUNCTION_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
/// Invoke API reply header that marks a function error.
pub const AMZ_FUNCTION_ERROR: &str = "x-amz-function-error";
/// Invoke API request header selecting `RequestResponse`, `Event` or `DryRun`.
pub const AMZ_INVOCATION_TYPE: &str = "x-amz-invocation-type";
/// Invoke API request header carrying a base64 client context.
pub const AMZ_CLIENT_CONTEXT: &str = "x-amz-client-context";
/// Invoke API request header: `Tail` asks for the last 4 KB of the invocation's log.
pub const AMZ_LOG_TYPE: &str = "x-amz-log-type";
/// Invoke API reply header with the base64 log tail, when `Tail` was asked for.
pub const AMZ_LOG_RESULT: &str = "x-amz-log-result";
/// Invoke API reply header naming the version that ran.
pub const AMZ_EXECUTED_VERSION: &str = "x-amz-executed-version";
/// AWS request id header on Invoke API replies.
pub const AMZN_REQUEST_ID: &str = "x-amzn-requestid";
/// AWS error type header on Invoke API error replies.
pub const AMZN_ERROR_TYPE: &str = "x-amzn-errortype";
/// X-Ray trace header on Invoke API requests.
pub const AMZN_TRACE_ID: &str = "x-amzn-trace-id";
