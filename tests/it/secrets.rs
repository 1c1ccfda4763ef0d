//! Secrets stay out of every output: a Postgres password and an S3 secret key, through the real
//! binary, in runs that fail and runs that cannot run (refused credentials, nothing listening,
//! queries that fail after logging in) and in `validate` of rule files with a mistake next to
//! the secret. Stdout, stderr and every report file are searched for the secret as written,
//! percent-encoded, JSON- and HTML-escaped, and for each long run of its letters and digits.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use rstest::rstest;

use crate::cli::{lakecheck, literal_sources, rule_dir, text};
use crate::harness::{pg_world, s3_world, S3Server};

const PASSWORD: &str = "S3cretPassw0rd";
/// With `/`, `+` and `=`, so the encoded forms differ from the raw one.
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=";
/// A password with a raw `@`, which a URL cannot hold unencoded (its tail would become the host).
const AT_PASSWORD: &str = "S3cret@Passw0rd";
/// The role the password belongs to, and one whose password is another (so ours is wrong).
const ROLE: &str = "lakecheck_secret_reader";
const WRONG_ROLE: &str = "lakecheck_secret_other";

/// Every form of `secret` an output could carry it in.
fn forms(secret: &str) -> Vec<String> {
    let percent_upper: String = secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut forms = vec![
        secret.to_string(),
        percent_upper.clone(),
        percent_upper.to_lowercase(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        secret.replace('/', "\\/"),
        secret.replace('/', "&#x2F;").replace('=', "&#x3D;"),
        secret.replace('/', "&#47;").replace('+', "&#43;"),
    ];
    // Any long run of letters and digits: what survives every escaping.
    forms.extend(
        secret
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|run| run.len() >= 7)
            .map(str::to_string),
    );
    forms.sort();
    forms.dedup();
    forms
}

/// Fails naming each output that holds a form of a secret.
fn assert_no_secret(outputs: &[(String, String)]) {
    let mut leaks = Vec::new();
    for secret in [PASSWORD, SECRET_KEY, AT_PASSWORD] {
        for form in forms(secret) {
            for (what, text) in outputs {
                if text.contains(&form) {
                    leaks.push(format!("`{form}` in {what}"));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "secrets leaked: {}\n\n{}",
        leaks.join(", "),
        outputs
            .iter()
            .map(|(what, text)| format!("--- {what}\n{text}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Runs `lakecheck run` on `sources` and `checks`, asserts the exit code and that the console
/// says each of `expected`, and that no output holds a secret.
fn run_without_leaks(sources: &str, checks: &str, exit_code: i32, expected: &[&str]) {
    let dir = rule_dir(sources, checks);
    let out = lakecheck(&["run", "rules.yml", "--reports-dir", "r"], dir.path());
    let console = text(&out);
    assert_eq!(out.status.code(), Some(exit_code), "{console}");
    for phrase in expected {
        assert!(console.contains(phrase), "`{phrase}` not in:\n{console}");
    }
    let mut outputs = vec![
        (
            "stdout".to_string(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        ),
        (
            "stderr".to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        ),
    ];
    let reports = dir.path().join("r");
    let mut files: Vec<_> = std::fs::read_dir(&reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    for report in [
        "junit.xml",
        "lakecheck.html",
        "lakecheck.json",
        "summary.md",
    ] {
        assert!(names.iter().any(|n| n == report), "{report} not written");
    }
    for file in files {
        outputs.push((
            file.display().to_string(),
            std::fs::read_to_string(&file).unwrap(),
        ));
    }
    assert_no_secret(&outputs);
}

/// Checks that fail or cannot run once they reach `source`: a count that is wrong, a filter
/// that names no column, a reconcile against the local lake with rows missing.
fn checks_on(source: &str) -> String {
    format!(
        "  - {{ name: counted, type: row_count, table: {source}.customers, equals: 1 }}\n\
         \x20 - {{ name: broken, type: condition, table: {source}.customers, expression: \"no_such_column > 0\" }}\n\
         \x20 - {{ name: matched, type: table_match, left: {source}.customers, right: lake.customers, key: [customer_id], left_where: \"customer_id % 100 <> 0\" }}\n"
    )
}

/// Requires a password of our two roles on the shared server (every other role keeps trust
/// auth) and creates them: [`ROLE`] with [`PASSWORD`], [`WRONG_ROLE`] with another.
async fn password_roles(admin_url: &str, port: u16) {
    let (client, connection) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let hba: String = client.query_one("SHOW hba_file", &[]).await.unwrap().get(0);
    let rules = std::fs::read_to_string(&hba).unwrap();
    let ours = format!(
        "host all {ROLE} 127.0.0.1/32 scram-sha-256\nhost all {WRONG_ROLE} 127.0.0.1/32 scram-sha-256\n"
    );
    if !rules.contains(&ours) {
        std::fs::write(&hba, format!("{ours}{rules}")).unwrap();
    }
    client
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {ROLE}; DROP ROLE IF EXISTS {WRONG_ROLE};
             CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}';
             CREATE ROLE {WRONG_ROLE} LOGIN PASSWORD 'AnotherPassw0rd';
             GRANT USAGE ON SCHEMA autocorp TO {ROLE};
             GRANT SELECT ON ALL TABLES IN SCHEMA autocorp TO {ROLE};
             SELECT pg_reload_conf();"
        ))
        .await
        .unwrap();
    drop(client);
    let _ = task.await;
    // The reload is asynchronous: wait until the wrong password is refused.
    let deadline = Instant::now() + Duration::from_secs(10);
    let wrong = format!("postgres://{WRONG_ROLE}:{PASSWORD}@127.0.0.1:{port}/autocorp");
    while tokio_postgres::connect(&wrong, tokio_postgres::NoTls)
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "pg_hba.conf was not reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn postgres_source(role: &str, port: u16) -> String {
    format!(
        "  secret: {{ type: postgres, url: \"postgres://{role}:{PASSWORD}@127.0.0.1:{port}/autocorp\", schema: autocorp, connect_timeout: 5s }}\n"
    )
}

#[tokio::test]
async fn a_postgres_password_stays_out_of_every_output() {
    let world = pg_world().await;
    let port = world.pg.port();
    password_roles(&world.pg.url("autocorp"), port).await;
    let sources = literal_sources(&world);

    // The password is refused: every check is an error naming the cause.
    run_without_leaks(
        &format!("{sources}{}", postgres_source(WRONG_ROLE, port)),
        &checks_on("secret"),
        2,
        &["password authentication failed"],
    );
    // Nothing listens (port 1 is privileged and unused).
    assert!(TcpStream::connect(("127.0.0.1", 1)).is_err());
    run_without_leaks(
        &format!("{sources}{}", postgres_source(ROLE, 1)),
        &checks_on("secret"),
        2,
        &["cannot connect"],
    );
    // The password is right: queries run, and fail or err.
    run_without_leaks(
        &format!("{sources}{}", postgres_source(ROLE, port)),
        &checks_on("secret"),
        2,
        &[
            "FAIL  counted",
            "ERROR broken",
            "no_such_column",
            "FAIL  matched",
        ],
    );
}

/// A lake source `secret` (Parquet) on S3 at `endpoint` with the secret key, and Delta and Hudi
/// sources `secret_delta` and `secret_hudi` (which open storage their own way) beside it.
fn s3_source(endpoint: &str) -> String {
    let storage = format!(
        "{{ endpoint: \"{endpoint}\", allow_http: \"true\", region: us-east-1, access_key_id: AKIASECRETTEST, secret_access_key: \"{SECRET_KEY}\" }}"
    );
    format!(
        "  secret:\n    type: lake\n    url: s3://lake/raw/database/autocorp\n    storage: {storage}\n\
         \x20 secret_delta: {{ type: delta, url: s3://lake/raw/database/autocorp, storage: {storage} }}\n\
         \x20 secret_hudi: {{ type: hudi, url: s3://lake/raw/database/autocorp, storage: {storage} }}\n"
    )
}

/// [`checks_on`] the Parquet source, and a count of a table the Delta and Hudi sources lack.
fn s3_checks() -> String {
    format!(
        "{}  - {{ name: delta, type: row_count, table: secret_delta.customers, min: 1 }}\n\
         \x20 - {{ name: hudi, type: row_count, table: secret_hudi.customers, min: 1 }}\n",
        checks_on("secret")
    )
}

#[tokio::test]
async fn an_s3_secret_key_stays_out_of_every_output() {
    let world = s3_world().await;
    let sources = literal_sources(&world);
    // A server that checks signatures and knows no key: refused.
    let locked = tokio::task::spawn_blocking(S3Server::start_enforcing_auth)
        .await
        .unwrap();
    run_without_leaks(
        &format!("{sources}{}", s3_source(&locked.endpoint)),
        &s3_checks(),
        2,
        &["InvalidAccessKeyId", "ERROR delta", "ERROR hudi"],
    );
    run_without_leaks(
        &format!("{sources}{}", s3_source("http://127.0.0.1:1")),
        &s3_checks(),
        2,
        &["127.0.0.1:1"],
    );
    // Accepted: queries run, and fail or err.
    run_without_leaks(
        &format!("{sources}{}", s3_source(&world.s3.endpoint)),
        &s3_checks(),
        2,
        &[
            "FAIL  counted",
            "ERROR broken",
            "no_such_column",
            "FAIL  matched",
        ],
    );
}

/// `lakecheck validate` on a rule file with a mistake next to a secret: located, secret-free.
#[rstest]
#[case::unclosed_quote(
    "  pg: { type: postgres, url: \"postgres://user:S3cretPassw0rd@127.0.0.1:5432/db }\n",
    "invalid YAML"
)]
#[case::bad_port(
    "  pg: { type: postgres, url: \"postgres://user:S3cretPassw0rd@127.0.0.1:notaport/db\" }\n",
    "is not a valid Postgres URL"
)]
#[case::raw_at_in_the_password(
    "  pg: { type: postgres, url: \"postgres://user:S3cret@Passw0rd@127.0.0.1:5432/db\" }\n",
    "has more than one `@`"
)]
#[case::no_scheme(
    "  pg: { type: postgres, url: \"user:S3cretPassw0rd@127.0.0.1:5432/db\" }\n",
    "is not a valid Postgres URL"
)]
#[case::password_in_an_unclosed_fallback(
    "  pg: { type: postgres, url: \"postgres://user:${PGPASS:-S3cretPassw0rd@127.0.0.1:5432/db\" }\n",
    "malformed variable reference"
)]
#[case::password_in_a_fallback_of_a_bad_name(
    "  pg: { type: postgres, url: \"postgres://user:${PG-PASS:-S3cretPassw0rd}@127.0.0.1:5432/db\" }\n",
    "malformed variable reference"
)]
#[case::colon_instead_of_fallback(
    "  pg: { type: postgres, url: \"postgres://${user:S3cretPassw0rd}@127.0.0.1:5432/db\" }\n",
    "malformed variable reference"
)]
#[case::unknown_key_beside_the_url(
    "  pg: { type: postgres, url: \"postgres://user:S3cretPassw0rd@127.0.0.1:5432/db\", shema: x }\n",
    "unknown key `shema`"
)]
#[case::unknown_source_type(
    "  pg: { type: postgress, url: \"postgres://user:S3cretPassw0rd@127.0.0.1:5432/db\" }\n",
    "unknown source type"
)]
#[case::url_as_a_list(
    "  pg: { type: postgres, url: [\"postgres://user:S3cretPassw0rd@127.0.0.1:5432/db\"] }\n",
    "url"
)]
#[case::duplicate_url(
    "  pg: { type: postgres, url: \"postgres://user:S3cretPassw0rd@127.0.0.1/db\", url: \"postgres://user:S3cretPassw0rd@127.0.0.1/db\" }\n",
    "duplicate key `url`"
)]
#[case::secret_key_misspelt(
    "  s3: { type: lake, url: s3://lake/raw, storage: { region: us-east-1, secret_acces_key: \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=\" } }\n",
    "secret_acces_key"
)]
#[case::secret_key_as_a_list(
    "  s3: { type: lake, url: s3://lake/raw, storage: { region: us-east-1, secret_access_key: [\"wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=\"] } }\n",
    "secret_access_key"
)]
#[case::secret_key_as_a_mapping(
    "  s3: { type: lake, url: s3://lake/raw, storage: { region: us-east-1, secret_access_key: { wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=: 1 } } }\n",
    "secret_access_key"
)]
#[case::colon_in_the_secret_key(
    "  s3:\n    type: lake\n    url: s3://lake/raw\n    storage:\n      secret_access_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=: x\n",
    "invalid YAML"
)]
#[case::credentials_in_the_s3_url(
    "  s3: { type: lake, url: \"s3://AKIASECRETTEST:wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYS3cretK3y%3D@lake/raw\" }\n",
    "the URL holds credentials"
)]
#[case::credentials_in_the_endpoint(
    "  s3: { type: lake, url: s3://lake/raw, storage: { endpoint: \"http://AKIASECRETTEST:wJalrXUtnFEMI%2FK7MDENG%2BbPxRfiCYS3cretK3y%3D@127.0.0.1:9000\" } }\n",
    "`endpoint` holds credentials"
)]
#[case::endpoint_not_a_url(
    "  s3: { type: lake, url: s3://lake/raw, storage: { endpoint: \"127.0.0.1 9000\", secret_access_key: \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=\" } }\n",
    "`endpoint` must be an http:// or https:// URL"
)]
#[case::secret_key_on_a_folder(
    "  s3: { type: lake, url: /data/raw, storage: { region: us-east-1, secret_access_key: \"wJalrXUtnFEMI/K7MDENG+bPxRfiCYS3cretK3y=\" } }\n",
    "storage"
)]
fn validate_reports_a_mistake_beside_a_secret_without_it(
    #[case] sources: &str,
    #[case] expected: &str,
) {
    let dir = rule_dir(
        &format!("sources:\n{sources}"),
        "  - { type: row_count, table: pg.customers, min: 1 }\n",
    );
    let out = lakecheck(&["validate", "rules.yml"], dir.path());
    let console = text(&out);
    assert_eq!(out.status.code(), Some(2), "{console}");
    assert!(console.contains("rules.yml:"), "not located: {console}");
    assert!(console.contains(expected), "`{expected}` not in: {console}");
    assert_no_secret(&[
        (
            "stdout".into(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        ),
        (
            "stderr".into(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        ),
    ]);
    // The file really holds the secret next to the mistake.
    let written = std::fs::read_to_string(dir.path().join("rules.yml")).unwrap();
    assert!(forms(PASSWORD)
        .iter()
        .chain(&forms(SECRET_KEY))
        .chain(&forms(AT_PASSWORD))
        .any(|form| written.contains(form.as_str())));
}
