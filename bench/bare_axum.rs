//! The yardstick of bench/run.sh: a bare axum "hello" server built from the same axum and
//! tokio as Hallpass, with the same runtime (multi-threaded, one worker per core), so the
//! benchmark can say what share of the bare framework's speed a Hallpass endpoint keeps.
//! It uses Hallpass's allocator too, so the comparison is of the request path alone.
//!
//! `bare-axum 127.0.0.1:PORT`

use axum::Router;
use axum::routing::get;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8799".to_owned());
    let app = Router::new().route("/", get(|| async { "hello" }));
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    axum::serve(listener, app).await
}
