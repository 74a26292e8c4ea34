//! Stylesheet, htmx and icons, embedded in the binary, served compressed.
//!
//! Each asset is compressed once per encoding (gzip, brotli at their best settings) when it
//! is first asked for in that encoding, then kept: no request pays for compressing, and a
//! process nobody visits spends nothing. Which encoding a response gets follows the
//! request's `Accept-Encoding` (see [`negotiate`]); every response says `Vary:
//! Accept-Encoding`, and each encoding has its own ETag, so a cache never serves a client
//! bytes it cannot decode and a conditional request is answered for what it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

/// A content coding this module serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
            Encoding::Identity => "identity",
        }
    }
}

/// The encoding to answer with: the one the client weighs highest among brotli, gzip and
/// identity (RFC 9110 §12.5.3: `q` values, `*` for any coding not named, `q=0` refuses),
/// compressed before identity and brotli before gzip on a tie. No header means identity;
/// a header that refuses everything gets identity too (better than a 406 for a stylesheet).
pub fn negotiate(headers: &HeaderMap) -> Encoding {
    let Some(weight) = weights(headers) else {
        return Encoding::Identity;
    };
    let options = [Encoding::Brotli, Encoding::Gzip, Encoding::Identity];
    let mut best = (Encoding::Identity, 0.0_f32);
    for (i, e) in options.into_iter().enumerate() {
        if weight[i] > best.1 {
            best = (e, weight[i]);
        }
    }
    best.0
}

/// Whether a page may be answered gzip-compressed: the client accepts gzip, and weighs it no
/// lower than identity (the only two codings pages are served in).
pub fn gzip_acceptable(headers: &HeaderMap) -> bool {
    weights(headers).is_some_and(|w| w[1] > 0.0 && w[1] >= w[2])
}

/// The weights of brotli, gzip and identity in `Accept-Encoding`; `None` without the header.
fn weights(headers: &HeaderMap) -> Option<[f32; 3]> {
    let mut named: [Option<f32>; 3] = [None; 3];
    let mut any = None;
    let mut seen = false;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            if coding.is_empty() {
                continue;
            }
            seen = true;
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(1.0);
            let slot = match coding.as_str() {
                "br" => &mut named[0],
                "gzip" | "x-gzip" => &mut named[1],
                "identity" => &mut named[2],
                "*" => &mut any,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old: f32| old.max(q)));
        }
    }
    if !seen {
        return None;
    }
    let weight = |i: usize| match (named[i], any) {
        (Some(q), _) | (None, Some(q)) => q,
        // Identity is acceptable unless refused by name or by `*;q=0`.
        (None, None) if i == 2 => 1.0,
        (None, None) => 0.0,
    };
    Some([weight(0), weight(1), weight(2)])
}

/// One asset's compressed forms, made on first use. `None`: compressing did not make it
/// smaller (it is served as is).
#[derive(Default)]
struct Compressed {
    /// The identity bytes' hash these were made from (debug builds read `static/` from disk,
    /// so an edited file gets new ones).
    hash: [u8; 32],
    gzip: OnceLock<Option<Bytes>>,
    brotli: OnceLock<Option<Bytes>>,
}

fn compressed_of(path: &str, hash: [u8; 32]) -> Arc<Compressed> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Compressed>>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let entry = cache.entry(path.to_owned()).or_default();
    if entry.hash != hash {
        *entry = Arc::new(Compressed {
            hash,
            ..Compressed::default()
        });
    }
    entry.clone()
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    enc.finish()
}

fn brotli(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        // A window as large as the biggest asset needs (htmx: 51 KB), not the default 4 MB.
        lgwin: 20,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut std::io::Cursor::new(data), &mut out, &params)?;
    Ok(out)
}

/// The bytes of `data` in `encoding`, compressing them the first time (off the async
/// workers: brotli's best setting takes tens of milliseconds on htmx).
async fn encoded(
    slot: &OnceLock<Option<Bytes>>,
    data: Bytes,
    f: fn(&[u8]) -> std::io::Result<Vec<u8>>,
) -> Option<Bytes> {
    if let Some(done) = slot.get() {
        return done.clone();
    }
    let len = data.len();
    let made = tokio::task::spawn_blocking(move || f(&data))
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|c| c.len() < len)
        .map(Bytes::from);
    slot.get_or_init(|| made).clone()
}

pub async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some(file) = Assets::get(&path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let hash = file.metadata.sha256_hash();
    let identity = match file.data {
        std::borrow::Cow::Borrowed(b) => Bytes::from_static(b),
        std::borrow::Cow::Owned(v) => Bytes::from(v),
    };
    let compressed = compressed_of(&path, hash);
    let (encoding, body) = match negotiate(&headers) {
        Encoding::Brotli => match encoded(&compressed.brotli, identity.clone(), brotli).await {
            Some(b) => (Encoding::Brotli, b),
            None => (Encoding::Identity, identity),
        },
        Encoding::Gzip => match encoded(&compressed.gzip, identity.clone(), gzip).await {
            Some(b) => (Encoding::Gzip, b),
            None => (Encoding::Identity, identity),
        },
        Encoding::Identity => (Encoding::Identity, identity),
    };
    let tag: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let etag = match encoding {
        Encoding::Identity => format!("\"{tag}\""),
        e => format!("\"{tag}-{}\"", e.token()),
    };
    let mut out = HeaderMap::new();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, v);
    }
    if none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, out).into_response();
    }
    let mime = mime_guess::from_path(&path).first_or_octet_stream();
    if let Ok(v) = HeaderValue::from_str(mime.as_ref()) {
        out.insert(header::CONTENT_TYPE, v);
    }
    if encoding != Encoding::Identity {
        out.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(encoding.token()),
        );
    }
    // `Bytes` has an exact size: hyper sets `Content-Length` from it (HEAD included).
    (out, body).into_response()
}

/// `If-None-Match` names `etag` (weak comparison, lists and `*` included).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim())
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn negotiation_follows_q_values() {
        use Encoding::*;
        assert_eq!(negotiate(&HeaderMap::new()), Identity);
        assert_eq!(negotiate(&with("gzip, deflate, br")), Brotli);
        assert_eq!(negotiate(&with("gzip")), Gzip);
        assert_eq!(negotiate(&with("x-gzip")), Gzip);
        assert_eq!(negotiate(&with("br;q=0.5, gzip")), Gzip);
        assert_eq!(negotiate(&with("br;q=0, gzip;q=0")), Identity);
        assert_eq!(negotiate(&with("identity")), Identity);
        assert_eq!(negotiate(&with("deflate")), Identity);
        assert_eq!(negotiate(&with("*")), Brotli);
        assert_eq!(negotiate(&with("*;q=0.5, identity")), Identity);
        assert_eq!(negotiate(&with("gzip;q=0.2, identity;q=0.1")), Gzip);
        assert_eq!(negotiate(&with("*;q=0, gzip")), Gzip);
        assert_eq!(negotiate(&with("BR")), Brotli);
        assert_eq!(negotiate(&with("gzip;q=2")), Gzip, "bad q reads as 1");
        assert_eq!(negotiate(&with("")), Identity);
    }

    #[test]
    fn pages_are_gzipped_when_gzip_is_acceptable() {
        assert!(gzip_acceptable(&with("gzip, deflate, br, zstd")));
        assert!(gzip_acceptable(&with("*")));
        assert!(gzip_acceptable(&with("gzip;q=0.5, identity;q=0.5")));
        assert!(!gzip_acceptable(&HeaderMap::new()));
        assert!(!gzip_acceptable(&with("br")));
        assert!(!gzip_acceptable(&with("gzip;q=0")));
        assert!(!gzip_acceptable(&with("gzip;q=0.2, identity;q=0.5")));
    }

    #[test]
    fn if_none_match_forms() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b-br\""),
        );
        assert!(none_match(&h, "\"b-br\""));
        assert!(none_match(&h, "\"a\""));
        assert!(!none_match(&h, "\"b\""));
        assert!(!none_match(&HeaderMap::new(), "\"a\""));
    }
}
