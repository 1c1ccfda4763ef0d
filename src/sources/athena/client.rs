//! The Athena and Glue clients of one source: the standard AWS credential chain (environment,
//! profile, web identity, container, instance metadata; never the rule file), the source's
//! region, an optional endpoint (a VPC endpoint, or a local test server), and the SDK's standard
//! retry strategy, which retries throttling (`TooManyRequestsException`) with exponential
//! backoff and jitter.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_athena::error::{DisplayErrorContext, ProvideErrorMetadata};

/// How often a throttled or failed call is tried in all (the SDK's standard strategy).
const CALL_ATTEMPTS: u32 = 6;
/// The first pause before a retry (then doubling, with jitter, up to the SDK's 20 s).
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Both clients, built once per source on first use.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub athena: aws_sdk_athena::Client,
    pub glue: aws_sdk_glue::Client,
}

impl AwsClients {
    /// Clients of `region`, or of the standard chain's region when `None`.
    pub async fn new(region: Option<&str>, endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_string()));
        }
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        Self::from_config(&loader.load().await)
    }

    /// Clients of an SDK configuration built elsewhere (an embedding program's, or a test's
    /// with a recorded HTTP exchange), with lakecheck's retry strategy.
    pub fn from_config(config: &SdkConfig) -> Self {
        let retries = RetryConfig::standard()
            .with_max_attempts(CALL_ATTEMPTS)
            .with_initial_backoff(FIRST_RETRY_PAUSE);
        let athena = aws_sdk_athena::config::Builder::from(config).retry_config(retries.clone());
        let glue = aws_sdk_glue::config::Builder::from(config).retry_config(retries);
        Self {
            athena: aws_sdk_athena::Client::from_conf(athena.build()),
            glue: aws_sdk_glue::Client::from_conf(glue.build()),
        }
    }
}

/// An SDK error in words: the service's code and message when it answered, else the whole
/// chain of causes (a connection refused, a timeout), without request ids or credentials.
pub fn describe_error<E, R>(error: &aws_sdk_athena::error::SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => match (service.code(), service.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => DisplayErrorContext(error).to_string(),
        },
        None => DisplayErrorContext(error).to_string(),
    }
}
