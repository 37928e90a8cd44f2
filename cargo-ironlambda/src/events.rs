//! Sample events for the common triggers, shipped in the tool (no network): what each
//! service sends a function, written for this project after AWS's documented shapes.
//! `cargo ironlambda invoke NAME --example sqs` sends one; `cargo ironlambda events`
//! lists them.

/// Every sample: its name, what sends it, and the JSON.
pub const EVENTS: [(&str, &str, &str); 11] = [
    (
        "apigw-rest",
        "API Gateway REST API (proxy integration, payload 1.0)",
        include_str!("../events/apigw-rest.json"),
    ),
    (
        "apigw-http",
        "API Gateway HTTP API (payload 2.0)",
        include_str!("../events/apigw-http.json"),
    ),
    (
        "alb",
        "Application Load Balancer target group",
        include_str!("../events/alb.json"),
    ),
    (
        "function-url",
        "Lambda Function URL",
        include_str!("../events/function-url.json"),
    ),
    ("sqs", "SQS queue", include_str!("../events/sqs.json")),
    ("sns", "SNS topic", include_str!("../events/sns.json")),
    ("s3", "S3 object created", include_str!("../events/s3.json")),
    (
        "dynamodb",
        "DynamoDB Streams",
        include_str!("../events/dynamodb.json"),
    ),
    (
        "kinesis",
        "Kinesis Data Streams",
        include_str!("../events/kinesis.json"),
    ),
    (
        "eventbridge",
        "EventBridge custom event",
        include_str!("../events/eventbridge.json"),
    ),
    (
        "scheduled",
        "EventBridge Scheduler / scheduled rule",
        include_str!("../events/scheduled.json"),
    ),
];

/// The sample named `name`.
pub fn find(name: &str) -> Result<&'static str, String> {
    EVENTS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, json)| *json)
        .ok_or_else(|| {
            let names: Vec<&str> = EVENTS.iter().map(|(n, _, _)| *n).collect();
            format!("no sample event {name:?}; there are: {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::{
        alb::AlbTargetGroupRequest,
        apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest},
        cloudwatch_events::CloudWatchEvent,
        dynamodb::Event as DynamoDbEvent,
        eventbridge::EventBridgeEvent,
        kinesis::KinesisEvent,
        lambda_function_urls::LambdaFunctionUrlRequest,
        s3::S3Event,
        sns::SnsEvent,
        sqs::SqsEvent,
    };
    use serde::de::DeserializeOwned;

    /// Sample `name` read as `T`, failing with the field path when it does not fit.
    fn read<T: DeserializeOwned>(name: &str) -> T {
        let json = find(name).unwrap();
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn every_sample_is_json_and_findable_by_name() {
        for (name, _, json) in EVENTS {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_ok(),
                "{name}"
            );
        }
        assert!(find("carrier-pigeon").unwrap_err().contains("sqs"));
    }

    #[test]
    fn api_gateway_rest_reads_as_its_type() {
        let e: ApiGatewayProxyRequest = read("apigw-rest");
        assert_eq!(e.path_parameters.get("id").map(String::as_str), Some("42"));
        assert_eq!(
            e.multi_value_query_string_parameters.all("expand"),
            Some(vec!["lines", "items"])
        );
    }

    #[test]
    fn api_gateway_http_reads_as_its_type() {
        let e: ApiGatewayV2httpRequest = read("apigw-http");
        assert_eq!(e.cookies.as_ref().map(Vec::len), Some(2));
        assert_eq!(e.request_context.http.method, http::Method::POST);
    }

    #[test]
    fn alb_reads_as_its_type() {
        let e: AlbTargetGroupRequest = read("alb");
        assert_eq!(e.path.as_deref(), Some("/health"));
    }

    #[test]
    fn function_url_reads_as_its_type() {
        let e: LambdaFunctionUrlRequest = read("function-url");
        assert_eq!(e.raw_path.as_deref(), Some("/hello/Ada"));
    }

    #[test]
    fn queue_and_topic_events_read_as_their_types() {
        let sqs: SqsEvent = read("sqs");
        assert_eq!(sqs.records[0].body.as_deref(), Some("{\"order\":42}"));
        let sns: SnsEvent = read("sns");
        assert_eq!(sns.records[0].sns.message, "{\"order\":42}");
    }

    #[test]
    fn storage_and_stream_events_read_as_their_types() {
        let s3: S3Event = read("s3");
        assert_eq!(
            s3.records[0].s3.object.key.as_deref(),
            Some("invoices/42.pdf")
        );
        let dynamodb: DynamoDbEvent = read("dynamodb");
        assert_eq!(dynamodb.records[0].event_name, "INSERT");
        let kinesis: KinesisEvent = read("kinesis");
        assert_eq!(kinesis.records[0].kinesis.data.0, br#"{"order":42}"#);
    }

    #[test]
    fn eventbridge_and_scheduled_events_read_as_their_types() {
        let custom: EventBridgeEvent = read("eventbridge");
        assert_eq!(custom.detail_type, "OrderPlaced");
        let scheduled: CloudWatchEvent = read("scheduled");
        assert_eq!(scheduled.detail_type.as_deref(), Some("Scheduled Event"));
    }
}
