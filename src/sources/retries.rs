//! Retries of a lake source's S3 requests, under a budget the rule states (`retries:`,
//! `retry_timeout:`), counted per table so a check's result can say how many of its table's
//! requests had to be sent again.
//!
//! object_store retries on its own (10 times over up to 3 minutes by default) and keeps no
//! count. A lake source turns that off and retries here instead, in the HTTP client object_store
//! sends every request through ([`HttpConnector`]): the same transient failures (a 5xx, 429 or
//! 408 answer, a connection refused or dropped before the answer, a timeout of a read), the same
//! doubling backoff, and every retry is counted where it is made, so the figure is exactly the
//! number of requests sent again. One difference: a connection lost while an answer's body
//! streams is not resumed (object_store would re-request the rest); the read fails, naming the
//! request.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpService, ReqwestConnector,
};
use object_store::{BackoffConfig, RetryConfig};

use crate::model::reader::format_duration;

/// How often and how long a request is retried: 3 times within 30 s unless the rule says
/// otherwise (object_store's own default, 10 times over 3 minutes, would hold a check for
/// minutes behind a server that is down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryBudget {
    /// Retries of one request after its first attempt (`retries:`); 0 sends each request once.
    pub retries: u32,
    /// No retry starts later than this after the first attempt (`retry_timeout:`).
    pub timeout: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            retries: 3,
            timeout: Duration::from_secs(30),
        }
    }
}

impl RetryBudget {
    /// The first wait; each next one doubles, up to [`MAX_BACKOFF`].
    const FIRST_BACKOFF: Duration = Duration::from_millis(100);

    /// object_store's own retry setting while this budget is in force: none, since the client
    /// retries (and counts). Its timeout still bounds a streaming read's retries, of which there
    /// are none either.
    pub fn object_store_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: 0,
            retry_timeout: self.timeout,
        }
    }
}

/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// Retried requests of one lake source, by table folder.
#[derive(Debug, Default)]
pub struct RetryCounts {
    by_table: Mutex<HashMap<String, u64>>,
}

impl RetryCounts {
    /// Requests for objects of table folder `table` that were sent again, so far in the run.
    pub fn of_table(&self, table: &str) -> u64 {
        self.lock().get(table).copied().unwrap_or(0)
    }

    /// Every retried request of the source, so far in the run (listings of the source's root
    /// included, which belong to no table).
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    fn add(&self, table: String) {
        *self.lock().entry(table).or_default() += 1;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        // A panic while counting leaves a count, not a broken map: carry on with it.
        self.by_table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Makes object_store's HTTP clients for one S3 lake: reqwest's, wrapped in the retry loop.
#[derive(Debug)]
pub struct RetryingConnector {
    budget: RetryBudget,
    counts: Arc<RetryCounts>,
    tables: TableOfRequest,
}

impl RetryingConnector {
    /// A connector for the lake rooted at `prefix` (no leading `/`, ending in `/` unless empty)
    /// in `bucket`, counting into `counts`.
    pub fn new(budget: RetryBudget, counts: Arc<RetryCounts>, bucket: &str, prefix: &str) -> Self {
        Self {
            budget,
            counts,
            tables: TableOfRequest {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            },
        }
    }
}

impl HttpConnector for RetryingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(RetryingClient {
            inner: ReqwestConnector::default().connect(options)?,
            budget: self.budget,
            counts: self.counts.clone(),
            tables: self.tables.clone(),
        }))
    }
}

#[derive(Debug)]
struct RetryingClient {
    inner: HttpClient,
    budget: RetryBudget,
    counts: Arc<RetryCounts>,
    tables: TableOfRequest,
}

#[async_trait]
impl HttpService for RetryingClient {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let started = Instant::now();
        let mut retries = 0;
        let mut backoff = RetryBudget::FIRST_BACKOFF;
        loop {
            let outcome = self.inner.execute(request.clone()).await;
            let transient = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408
                }
                Err(error) => match error.kind() {
                    // The request never reached the server: always safe to send again.
                    HttpErrorKind::Connect | HttpErrorKind::Request => true,
                    // It may have: only reads are sent again (lakecheck makes no other).
                    HttpErrorKind::Timeout | HttpErrorKind::Interrupted => {
                        request.method().is_safe()
                    }
                    _ => false,
                },
            };
            let in_budget =
                retries < self.budget.retries && started.elapsed() + backoff <= self.budget.timeout;
            if !transient || !in_budget {
                return if transient && retries > 0 {
                    self.gave_up(outcome, retries, started.elapsed()).await
                } else {
                    outcome
                };
            }
            retries += 1;
            self.counts.add(self.tables.of(&request));
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

impl RetryingClient {
    /// The last failure of a request that was retried in vain, saying so: the answer's body or
    /// the transport error gains how often and how long it was tried, and the budget.
    async fn gave_up(
        &self,
        outcome: Result<HttpResponse, HttpError>,
        retries: u32,
        elapsed: Duration,
    ) -> Result<HttpResponse, HttpError> {
        let note = self.gave_up_note(retries, elapsed);
        match outcome {
            Ok(response) => {
                let (parts, body) = response.into_parts();
                let body = body.bytes().await?;
                let text = format!("{} ({note})", String::from_utf8_lossy(&body).trim());
                Ok(HttpResponse::from_parts(parts, text.into()))
            }
            Err(error) => Err(HttpError::new(
                error.kind(),
                GaveUp {
                    note,
                    last: causes(&error),
                },
            )),
        }
    }

    fn gave_up_note(&self, retries: u32, elapsed: Duration) -> String {
        let elapsed = Duration::from_millis(elapsed.as_millis() as u64);
        format!(
            "gave up after {retries} {} in {}; the source allows `retries: {}` within `retry_timeout: {}`",
            if retries == 1 { "retry" } else { "retries" },
            format_duration(elapsed),
            self.budget.retries,
            format_duration(self.budget.timeout)
        )
    }
}

/// What `error` wraps, each cause down to the root (`error sending request: connection closed
/// before message completed`): an HTTP error's own message names only the outermost.
fn causes(error: &HttpError) -> String {
    let mut causes = Vec::new();
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !causes.iter().any(|c: &String| c.contains(&text)) {
            causes.push(text);
        }
        next = cause.source();
    }
    if causes.is_empty() {
        error.to_string()
    } else {
        causes.join(": ")
    }
}

/// A transport error that outlasted the retry budget.
#[derive(Debug)]
struct GaveUp {
    note: String,
    last: String,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.last, self.note)
    }
}

impl std::error::Error for GaveUp {}

/// Which table folder of a lake a request reads: the first folder below the lake's prefix in
/// the object key (`GET /bucket/raw/orders/part-0.parquet`) or listing prefix
/// (`GET /bucket?list-type=2&prefix=raw/orders/`). Requests above the tables count as `""`.
#[derive(Debug, Clone)]
struct TableOfRequest {
    bucket: String,
    prefix: String,
}

impl TableOfRequest {
    fn of(&self, request: &HttpRequest) -> String {
        let uri = request.uri();
        let listed = uri.query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == "prefix")
                .map(|(_, value)| value.into_owned())
        });
        let key = listed.unwrap_or_else(|| {
            let path = percent_decode(uri.path().trim_start_matches('/'));
            // Path-style addressing (custom endpoints) names the bucket first.
            let virtual_host = uri
                .host()
                .is_some_and(|h| h.starts_with(&format!("{}.", self.bucket)));
            match path.strip_prefix(&format!("{}/", self.bucket)) {
                Some(key) if !virtual_host => key.to_string(),
                _ => path,
            }
        });
        key.strip_prefix(&self.prefix)
            .and_then(|rest| rest.split_once('/'))
            .map(|(table, _)| table.to_string())
            .unwrap_or_default()
    }
}

/// `%XX` escapes of a URI path decoded (object keys are UTF-8).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn request(uri: &str) -> HttpRequest {
        let mut request = HttpRequest::new(object_store::client::HttpRequestBody::empty());
        *request.uri_mut() = uri.parse().unwrap();
        request
    }

    #[rstest]
    #[case("http://127.0.0.1:9000/lake/raw/db/orders/part-0.parquet", "orders")]
    #[case(
        "http://127.0.0.1:9000/lake?list-type=2&prefix=raw%2Fdb%2Forders%2F",
        "orders"
    )]
    #[case(
        "http://127.0.0.1:9000/lake?list-type=2&prefix=raw%2Fdb%2F&delimiter=%2F",
        ""
    )]
    #[case(
        "http://127.0.0.1:9000/lake/raw/db/sales%20order/x.parquet",
        "sales order"
    )]
    #[case(
        "https://lake.s3.eu-west-1.amazonaws.com/raw/db/orders/_delta_log/0.json",
        "orders"
    )]
    #[case("http://127.0.0.1:9000/lake/elsewhere/orders/x.parquet", "")]
    fn attributes_requests_to_table_folders(#[case] uri: &str, #[case] table: &str) {
        let tables = TableOfRequest {
            bucket: "lake".into(),
            prefix: "raw/db/".into(),
        };
        assert_eq!(tables.of(&request(uri)), table);
    }

    #[test]
    fn counts_add_up_by_table() {
        let counts = RetryCounts::default();
        counts.add("orders".into());
        counts.add("orders".into());
        counts.add(String::new());
        assert_eq!(counts.of_table("orders"), 2);
        assert_eq!(counts.of_table("customers"), 0);
        assert_eq!(counts.total(), 3);
    }
}
