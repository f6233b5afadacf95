//! Secrets read from Secrets Manager at start-up, through the real SDK against a stand-in
//! server speaking its JSON protocol on loopback.

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use shared::platform::secrets;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers GetSecretValue for the secrets it holds, and ResourceNotFoundException otherwise.
async fn secrets_manager(secrets: HashMap<String, String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let secrets = secrets.clone();
            tokio::spawn(async move {
                loop {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    let (head_end, length) = loop {
                        let Ok(n @ 1..) = socket.read(&mut buf).await else {
                            return;
                        };
                        request.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&request).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text[..end]
                                .lines()
                                .find_map(|l| {
                                    let (k, v) = l.split_once(':')?;
                                    k.eq_ignore_ascii_case("content-length")
                                        .then(|| v.trim().parse::<usize>().ok())?
                                })
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while request.len() < head_end + length {
                        let Ok(n @ 1..) = socket.read(&mut buf).await else {
                            return;
                        };
                        request.extend_from_slice(&buf[..n]);
                    }
                    let body: serde_json::Value =
                        serde_json::from_slice(&request[head_end..head_end + length])
                            .unwrap_or_default();
                    let id = body["SecretId"].as_str().unwrap_or_default().to_string();
                    let (status, kind, reply) = match secrets.get(&id) {
                        Some(value) => (
                            "200 OK",
                            None,
                            serde_json::json!({ "ARN": id, "Name": "test", "SecretString": value }),
                        ),
                        None => (
                            "400 Bad Request",
                            Some("ResourceNotFoundException"),
                            serde_json::json!({
                                "__type": "ResourceNotFoundException",
                                "message": "Secrets Manager can't find the specified secret."
                            }),
                        ),
                    };
                    let reply = reply.to_string();
                    let kind = kind
                        .map(|k| format!("x-amzn-errortype: {k}\r\n"))
                        .unwrap_or_default();
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\n{kind}content-length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if socket.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

fn client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    let config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(endpoint)
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

const DB_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:billwire/db-AbCdEf";
const JWT_ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:billwire/jwt-AbCdEf";

#[tokio::test]
async fn settings_that_name_a_secret_are_read_from_secrets_manager() {
    let endpoint = secrets_manager(HashMap::from([
        (
            DB_ARN.to_string(),
            "postgres://app:pw@db.internal/billwire".to_string(),
        ),
        (JWT_ARN.to_string(), "j".repeat(40)),
    ]))
    .await;
    let started = std::time::Instant::now();
    let values = secrets::fetch_from(
        &client(&endpoint),
        vec![
            ("DATABASE_URL", DB_ARN.into()),
            ("JWT_SECRET", JWT_ARN.into()),
        ],
    )
    .await
    .expect("fetched");
    eprintln!(
        "two secrets fetched in {:.1} ms (loopback)",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(
        values["DATABASE_URL"],
        "postgres://app:pw@db.internal/billwire"
    );
    assert_eq!(values["JWT_SECRET"], "j".repeat(40));
}

#[tokio::test]
async fn a_secret_that_cannot_be_read_is_a_start_up_error_naming_its_variable() {
    let endpoint = secrets_manager(HashMap::new()).await;
    let error = secrets::fetch_from(&client(&endpoint), vec![("JWT_SECRET", JWT_ARN.into())])
        .await
        .expect_err("no such secret");
    let text = error.to_string();
    assert!(
        text.starts_with("JWT_SECRET_SECRET_ARN is invalid"),
        "{text}"
    );
    assert!(text.contains("ResourceNotFoundException"), "{text}");
}

#[tokio::test]
async fn without_secret_arns_nothing_is_fetched() {
    let values = secrets::fetch(|_| None, &secrets::NAMES)
        .await
        .expect("nothing to fetch");
    assert!(values.is_empty());
}
