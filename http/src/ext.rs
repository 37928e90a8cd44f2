//! What an event carries beyond the HTTP message, read from the request:
//! [`RequestExt`] and the [`Params`] it hands out.

use ironlambda_runtime::Context;

use crate::context::RequestContext;

/// Name–value pairs in the order the event listed them; a name may repeat (`?tag=a&tag=b`).
///
/// ```
/// use ironlambda_http::Params;
/// let query = Params::from_query("tag=a&tag=b&q=hello%20world");
/// assert_eq!(query.get("q"), Some("hello world"));
/// assert_eq!(query.get_all("tag").collect::<Vec<_>>(), ["a", "b"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The pairs of a URL query string (`a=1&b=2`), decoded.
    pub fn from_query(query: &str) -> Self {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(String, String)> for Params {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Params(iter.into_iter().collect())
    }
}

/// The request extensions the adapter adds, under types of their own so they cannot clash
/// with a user's.
#[derive(Debug, Clone)]
pub(crate) struct PathParameters(pub(crate) Params);
#[derive(Debug, Clone)]
pub(crate) struct StageVariables(pub(crate) Params);
/// The path as the client sent it, stage included, whatever the adapter routes on.
#[derive(Debug, Clone)]
pub(crate) struct RawPath(pub(crate) String);

/// Lambda's and the trigger's extras on an [`http::Request`]: the invocation's
/// [`Context`], the trigger's [`RequestContext`], path parameters and stage variables.
///
/// ```
/// use ironlambda_http::{Request, RequestExt};
/// async fn who(req: Request) -> Result<String, ironlambda_runtime::Error> {
///     let ip = req.request_context().and_then(|c| c.source_ip()).unwrap_or("unknown");
///     let id = req.lambda_context().map(|c| c.request_id.as_str()).unwrap_or("-");
///     Ok(format!("{ip} in invocation {id}"))
/// }
/// ```
pub trait RequestExt {
    /// The Lambda invocation's context (request id, deadline, ARN…).
    fn lambda_context(&self) -> Option<&Context>;
    /// The trigger's request context.
    fn request_context(&self) -> Option<&RequestContext>;
    /// The path parameters API Gateway matched (`{name}` in `/hello/{name}`).
    fn path_parameters(&self) -> Option<&Params>;
    /// API Gateway's stage variables.
    fn stage_variables(&self) -> Option<&Params>;
    /// The query string's pairs, decoded, repeated names kept.
    fn query_string_parameters(&self) -> Params;
    /// The path as the client sent it, stage included (the URI's path may have the stage
    /// stripped; see [`Adapter::strip_stage`](crate::Adapter::strip_stage)).
    fn raw_http_path(&self) -> &str;
}

impl<B> RequestExt for http::Request<B> {
    fn lambda_context(&self) -> Option<&Context> {
        self.extensions().get()
    }

    fn request_context(&self) -> Option<&RequestContext> {
        self.extensions().get()
    }

    fn path_parameters(&self) -> Option<&Params> {
        self.extensions().get::<PathParameters>().map(|p| &p.0)
    }

    fn stage_variables(&self) -> Option<&Params> {
        self.extensions().get::<StageVariables>().map(|p| &p.0)
    }

    fn query_string_parameters(&self) -> Params {
        self.uri()
            .query()
            .map(Params::from_query)
            .unwrap_or_default()
    }

    fn raw_http_path(&self) -> &str {
        match self.extensions().get::<RawPath>() {
            Some(p) => &p.0,
            None => self.uri().path(),
        }
    }
}
