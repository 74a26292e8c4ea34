//! A tiny upstream app for the proxy tests: answers every request (any method, any path) with
//! JSON of what it received — method, URI and every header — so a test sees exactly what a
//! guarded app behind the proxy would see.

use std::net::SocketAddr;

use axum::extract::Request;
use axum::response::Json;
use serde_json::{Map, Value, json};

pub struct Echo {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    /// Listens on 127.0.0.1 on a free port.
    pub async fn start() -> Echo {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(echo);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Echo { addr, task }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(req: Request) -> Json<Value> {
    let mut headers = Map::new();
    for (name, value) in req.headers() {
        let value = Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned());
        match headers.get_mut(name.as_str()) {
            Some(Value::Array(values)) => values.push(value),
            _ => {
                headers.insert(name.as_str().to_owned(), Value::Array(vec![value]));
            }
        }
    }
    Json(json!({
        "echo": true,
        "method": req.method().as_str(),
        "uri": req.uri().to_string(),
        "headers": headers,
    }))
}

/// Every value of header `name` (lower case) in an echoed answer.
pub fn header_values(echoed: &Value, name: &str) -> Vec<String> {
    echoed["headers"][name]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The single value of header `name` in an echoed answer (`None` when absent; a header sent
/// twice fails the test: a guarded app must never have to choose).
pub fn header(echoed: &Value, name: &str) -> Option<String> {
    let mut values = header_values(echoed, name);
    assert!(
        values.len() <= 1,
        "{name} arrived {} times: {values:?}",
        values.len()
    );
    values.pop()
}
