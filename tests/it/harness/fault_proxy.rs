//! A TCP proxy in front of the test S3 server (moto) that fails requests on cue: it answers
//! `503 Service Unavailable` or drops the connection without an answer, for the next N requests
//! or for every request after the first N. Everything else it forwards, one request per
//! connection (it answers `Connection: close`, so a client never reuses a connection the proxy
//! is about to drop, and no failure but the injected ones reaches the client).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How a request fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered `503 Service Unavailable` (an S3 `ServiceUnavailable` error), as a busy server.
    Unavailable,
    /// The connection is closed after the request arrives, without an answer.
    Dropped,
}

/// Which requests fail, counted from when the rule was set.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Forward,
    /// The next `count` requests fail.
    Next {
        count: u64,
        fault: Fault,
    },
    /// `passed` more requests are forwarded, then every one fails.
    After {
        passed: u64,
        fault: Fault,
    },
}

#[derive(Debug)]
struct Plan {
    rule: Rule,
    requests: u64,
    faults: u64,
}

impl Plan {
    /// The fate of the next request.
    fn next(&mut self) -> Option<Fault> {
        self.requests += 1;
        let fault = match &mut self.rule {
            Rule::Forward => None,
            Rule::Next { count: 0, .. } => None,
            Rule::Next { count, fault } => {
                *count -= 1;
                Some(*fault)
            }
            Rule::After { passed, fault } if *passed == 0 => Some(*fault),
            Rule::After { passed, .. } => {
                *passed -= 1;
                None
            }
        };
        self.faults += u64::from(fault.is_some());
        fault
    }
}

/// A proxy on a free loopback port; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`, for a source's `storage: { endpoint: ... }`.
    pub endpoint: String,
    plan: Arc<Mutex<Plan>>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (`http://127.0.0.1:<port>`), failing nothing yet.
    pub async fn start(upstream: &str) -> Self {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let plan = Arc::new(Mutex::new(Plan {
            rule: Rule::Forward,
            requests: 0,
            faults: 0,
        }));
        let shared = plan.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (plan, upstream) = (shared.clone(), upstream.clone());
                tokio::spawn(async move {
                    // A client that hangs up mid-request is the client's business.
                    let _ = serve(client, &plan, &upstream).await;
                });
            }
        });
        Self {
            endpoint,
            plan,
            task,
        }
    }

    /// The next `count` requests fail with `fault`; later ones are forwarded.
    pub fn fail_next(&self, count: u64, fault: Fault) {
        self.plan.lock().unwrap().rule = Rule::Next { count, fault };
    }

    /// `passed` more requests are forwarded, then every request fails with `fault`.
    pub fn fail_after(&self, passed: u64, fault: Fault) {
        self.plan.lock().unwrap().rule = Rule::After { passed, fault };
    }

    /// Requests that arrived so far.
    pub fn requests(&self) -> u64 {
        self.plan.lock().unwrap().requests
    }

    /// Requests failed so far.
    pub fn faults(&self) -> u64 {
        self.plan.lock().unwrap().faults
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, plan: &Mutex<Plan>, upstream: &str) -> std::io::Result<()> {
    let Some((head, body)) = read_message(&mut client, false).await? else {
        return Ok(());
    };
    let fault = plan.lock().unwrap().next();
    match fault {
        Some(Fault::Dropped) => Ok(()),
        Some(Fault::Unavailable) => {
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
                        <Message>injected by the test proxy</Message></Error>";
            let answer = format!(
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            client.write_all(answer.as_bytes()).await?;
            client.shutdown().await
        }
        None => {
            let is_head = head.starts_with("HEAD ");
            let mut server = TcpStream::connect(upstream).await?;
            server.write_all(close_after(&head).as_bytes()).await?;
            server.write_all(&body).await?;
            let Some((answer, answer_body)) = read_message(&mut server, is_head).await? else {
                return Ok(());
            };
            client.write_all(close_after(&answer).as_bytes()).await?;
            client.write_all(&answer_body).await?;
            client.shutdown().await
        }
    }
}

/// One HTTP message from `stream`: its head (through the blank line) and its body, read to its
/// `Content-Length`, or to the end of the stream where it has none. `None` if the stream ends
/// before a head. A body is not read for answers that have none (to `HEAD`, 204, 304).
async fn read_message(
    stream: &mut TcpStream,
    answers_head: bool,
) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut body = buffer[head_end..].to_vec();
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    let is_answer = head.starts_with("HTTP/");
    if is_answer && (answers_head || status == "204" || status == "304") {
        return Ok(Some((head, Vec::new())));
    }
    let length = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())
            .flatten()
    });
    match length {
        Some(length) => {
            while body.len() < length {
                let read = stream.read(&mut chunk).await?;
                if read == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..read]);
            }
            body.truncate(length);
        }
        // A request without a length has no body; an answer without one ends with the stream.
        None if is_answer => {
            stream.read_to_end(&mut body).await?;
        }
        None => {}
    }
    Ok(Some((head, body)))
}

/// `head` with its `Connection` header replaced by `Connection: close`.
fn close_after(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end_matches("\r\n")
        .split("\r\n")
        .filter(|line| {
            !line
                .split_once(':')
                .is_some_and(|(name, _)| name.trim().eq_ignore_ascii_case("connection"))
        })
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}
