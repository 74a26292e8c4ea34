//! Compression: precompressed static assets negotiated by `Accept-Encoding`, pages and
//! JSON compressed on the fly (never health checks, forward-auth answers or tiny bodies),
//! the sign-in page with everything it loads within 30 KB on the wire, and CSRF tokens
//! masked per response so compressed pages do not leak them (BREACH).

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TCP relay in front of `app` that counts every byte the server sends: what a client
/// receives on the wire, headers and framing included.
async fn counting_relay(app: &TestApp) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicUsize::new(0));
    let (target, count) = (app.addr, received.clone());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(target).await.unwrap();
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = tokio::io::copy(&mut cr, &mut sw);
                let down = async {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = sr.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        count.fetch_add(n, Ordering::Relaxed);
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = cw.shutdown().await;
                };
                let _ = tokio::join!(up, down);
            });
        }
    });
    (addr, received)
}

/// The `/static/...` URLs a page references (stylesheet, script, icon).
fn static_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/static/"))
        .map(|s| s.replace("&amp;", "&"))
        .collect()
}

fn asset_bytes(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("static")
            .join(name),
    )
    .unwrap()
}

fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The target of issue 12: `/login` and every asset it loads, fetched by a browser-like
/// client that accepts gzip and brotli, is at most 30 KB on the wire (it was 73 KB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_page_with_its_assets_fits_in_30_kb() {
    let Some(app) = TestApp::with_admin(Db::Sqlite).await else {
        return;
    };
    let (relay, received) = counting_relay(&app).await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let get = |path: String| {
        client
            .get(format!("http://{relay}{path}"))
            .header("accept-encoding", "gzip, br")
            .send()
    };
    let page = get("/login".into()).await.unwrap();
    assert_eq!(page.status(), 200);
    let enc = header(&page, "content-encoding").map(str::to_owned);
    let html = String::from_utf8(decode(enc.as_deref(), &page.bytes().await.unwrap())).unwrap();
    let assets = static_urls(&html);
    for needed in ["style.css", "htmx.min.js", "favicon.svg"] {
        assert!(
            assets.iter().any(|a| a.contains(needed)),
            "/login no longer loads {needed}? {assets:?}"
        );
    }
    for url in &assets {
        let r = get(url.clone()).await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        r.bytes().await.unwrap();
    }
    // The relay has counted everything once the client has read each whole response.
    let total = received.load(Ordering::Relaxed);
    eprintln!(
        "sign-in page and {} assets: {total} bytes on the wire",
        assets.len()
    );
    assert!(total <= 30_000, "{total} bytes on the wire");
}

/// Each asset in each encoding: the right `Content-Encoding`, `Vary`, an exact
/// `Content-Length`, bytes that decode to the file, an ETag per encoding, and conditional
/// requests answered per encoding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_are_negotiated_and_decode_to_the_exact_bytes() {
    let Some(app) = TestApp::with_admin(Db::Sqlite).await else {
        return;
    };
    let c = reqwest::Client::new();
    for name in ["style.css", "htmx.min.js", "favicon.svg"] {
        let file = asset_bytes(name);
        let mut etags = Vec::new();
        for (accept, expected) in [
            (Some("gzip, deflate, br"), Some("br")),
            (Some("br;q=1.0, gzip;q=0.8, *;q=0.1"), Some("br")),
            (Some("gzip"), Some("gzip")),
            (Some("br;q=0.1, gzip"), Some("gzip")),
            (None, None),
            (Some("identity"), None),
            (Some("deflate"), None),
            (Some("br;q=0, gzip;q=0"), None),
        ] {
            let mut req = c.get(app.url(&format!("/static/{name}")));
            if let Some(a) = accept {
                req = req.header("accept-encoding", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            let enc = header(&r, "content-encoding").map(str::to_owned);
            // The favicon is tiny: it may stay as it is when compressing does not pay.
            if name != "favicon.svg" || expected.is_none() {
                assert_eq!(enc.as_deref(), expected, "{name} with {accept:?}");
            }
            assert_eq!(header(&r, "vary"), Some("accept-encoding"), "{name}");
            let etag = header(&r, "etag").unwrap().to_owned();
            let length: usize = header(&r, "content-length").unwrap().parse().unwrap();
            let body = r.bytes().await.unwrap();
            assert_eq!(length, body.len(), "{name} with {accept:?}");
            assert_eq!(
                decode(enc.as_deref(), &body),
                file,
                "{name} with {accept:?}"
            );
            etags.push((enc, etag));
        }
        // One ETag per encoding, different across encodings.
        for (a, ta) in &etags {
            for (b, tb) in &etags {
                assert_eq!(a == b, ta == tb, "{name}: {etags:?}");
            }
        }
    }

    // Conditional requests: the brotli ETag matches a brotli request (304, still saying
    // what varies) but not a gzip one, which gets the gzip bytes.
    let br = c
        .get(app.url("/static/htmx.min.js"))
        .header("accept-encoding", "br")
        .send()
        .await
        .unwrap();
    let br_tag = header(&br, "etag").unwrap().to_owned();
    let again = c
        .get(app.url("/static/htmx.min.js"))
        .header("accept-encoding", "br")
        .header("if-none-match", &br_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), Some(br_tag.as_str()));
    assert_eq!(header(&again, "vary"), Some("accept-encoding"));
    let gz = c
        .get(app.url("/static/htmx.min.js"))
        .header("accept-encoding", "gzip")
        .header("if-none-match", &br_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), 200);
    assert_eq!(header(&gz, "content-encoding"), Some("gzip"));
    let plain = c
        .get(app.url("/static/htmx.min.js"))
        .header("if-none-match", &br_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(header(&plain, "content-encoding"), None);
}

/// Pages and JSON over 4 KiB are gzip-compressed for clients that accept it; small bodies
/// (the sign-in page, `/api/auth/me`), the health checks and the forward-auth answers never
/// are.
async fn pages_and_json_are_compressed_but_not_health_or_forward_auth(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let (admin, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    for n in 0..20 {
        let r = admin
            .post(app.url("/api/admin/users"))
            .header("x-csrf-token", &token)
            .json(&serde_json::json!({
                "username": format!("someone{n}"),
                "email": format!("someone{n}@example.com"),
                "password": "a long enough password",
                "role": "user"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }
    // A big page: the user table.
    for (accept, expected) in [
        (Some("gzip, br"), Some("gzip")),
        (Some("gzip"), Some("gzip")),
        (Some("br"), None),
        (None, None),
    ] {
        let mut req = admin.get(app.url("/admin/users"));
        if let Some(a) = accept {
            req = req.header("accept-encoding", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 200);
        let enc = header(&r, "content-encoding").map(str::to_owned);
        assert_eq!(enc.as_deref(), expected, "/admin/users with {accept:?}");
        assert!(
            r.headers()
                .get_all("vary")
                .iter()
                .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("accept-encoding")),
            "/admin/users with {accept:?} must say it varies: {:?}",
            r.headers()
        );
        let html = String::from_utf8(decode(enc.as_deref(), &r.bytes().await.unwrap())).unwrap();
        assert!(
            html.contains("someone19") && html.contains("</html>"),
            "the whole page: {html}"
        );
    }
    // A small page stays plain.
    let r = app
        .client()
        .get(app.url("/login"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-encoding"), None, "/login is small");

    // JSON: a user list is compressed, `/api/auth/me` (a few hundred bytes) is not.
    let list = admin
        .get(app.url("/api/admin/users"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_eq!(header(&list, "content-encoding"), Some("gzip"));
    let json: serde_json::Value =
        serde_json::from_slice(&decode(Some("gzip"), &list.bytes().await.unwrap())).unwrap();
    assert!(json.is_object() || json.is_array(), "{json}");
    let me = admin
        .get(app.url("/api/auth/me"))
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        header(&me, "content-encoding"),
        None,
        "tiny bodies stay plain"
    );

    for path in [
        "/healthz",
        "/readyz",
        "/api/authz/forward-auth",
        "/api/authz/auth-request",
    ] {
        let r = admin
            .get(app.url(path))
            .header("accept-encoding", "gzip, br")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "content-encoding"), None, "{path}");
    }
}

/// Every response carries the CSRF token in new bytes (a random mask), and every one of
/// them is accepted: pages of an anonymous visitor, and of a signed-in session.
async fn csrf_tokens_are_masked_per_response(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    let first = app.csrf(&c, "/login").await;
    let second = app.csrf(&c, "/login").await;
    assert_ne!(first, second, "the same token bytes in two responses");
    // The older token still signs in.
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", first.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());

    // Signed in: two pages, two different tokens, both accepted (by header, as htmx sends).
    let a = app.csrf(&c, "/account").await;
    let b = app.csrf(&c, "/account").await;
    assert_ne!(a, b);
    for token in [&a, &b] {
        let r = c
            .post(app.url("/api/me/api-keys"))
            .header("x-csrf-token", token.as_str())
            .json(&serde_json::json!({ "name": format!("k{}", &token[..6]) }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    // A token of nobody is still refused.
    let r = c
        .post(app.url("/api/me/api-keys"))
        .header("x-csrf-token", "AAAA")
        .json(&serde_json::json!({ "name": "forged" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

both_databases!(
    pages_and_json_are_compressed_but_not_health_or_forward_auth,
    csrf_tokens_are_masked_per_response
);

both_databases!(the_gzipped_user_table_is_the_plain_page_with_its_own_token);

/// `text` with every CSRF token (a run of 80 or more base64url characters) replaced by `T`:
/// tokens are masked afresh in every response.
fn without_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let token_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    for c in text.chars().chain(std::iter::once('\0')) {
        if token_char(c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 80 { "T" } else { &run });
        run.clear();
        if c != '\0' {
            out.push(c);
        }
    }
    out
}

/// The `csrf_token` values of the forms in `html`.
fn form_tokens(html: &str) -> Vec<String> {
    let key = "name=\"csrf_token\" value=\"";
    html.match_indices(key)
        .map(|(at, _)| {
            let rest = &html[at + key.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

/// A kept page of the user table is answered in gzip from rows compressed once, with each
/// request's token stored between them (`web::gzip`): what a browser decodes is exactly the
/// page it gets uncompressed — for an admin whose own row is on the page and for one whose is
/// not, for the page and the htmx fragment, the first time and from the kept pieces — and its
/// row forms carry the token of the session that asked.
async fn the_gzipped_user_table_is_the_plain_page_with_its_own_token(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    for n in 0..12 {
        crate::support::add_user(&app, &format!("member{n:02}"), "user").await;
    }
    crate::support::sql(
        &app,
        "UPDATE users SET status = 'pending' WHERE username IN ('member01', 'member05', 'member09')",
    )
    .await;
    crate::support::add_user(&app, "ada", "admin").await;
    let admin = app.admin_client().await;
    let ada = app.client();
    let r = app
        .login(&ada, "ada", crate::support::MEMBER_PASSWORD)
        .await;
    assert_eq!(r.status(), 303);

    let get = |c: &reqwest::Client, path: &str, gzip: bool, fragment: bool| {
        let mut req = c.get(app.url(path));
        if gzip {
            req = req.header("accept-encoding", "gzip, deflate, br");
        }
        if fragment {
            req = req
                .header("hx-request", "true")
                .header("hx-target", "user-table");
        }
        req.send()
    };
    for c in [&admin, &ada] {
        // The first page shows both admins' rows; the pending page shows neither.
        for path in ["/admin/users", "/admin/users?status=pending"] {
            for fragment in [false, true] {
                for round in 0..3 {
                    let plain = get(c, path, false, fragment).await.unwrap();
                    assert_eq!(header(&plain, "content-encoding"), None);
                    let plain = plain.text().await.unwrap();
                    let r = get(c, path, true, fragment).await.unwrap();
                    assert_eq!(r.status(), 200);
                    assert_eq!(header(&r, "content-encoding"), Some("gzip"));
                    let vary: Vec<_> = r.headers().get_all("vary").iter().collect();
                    assert!(
                        vary.iter()
                            .any(|v| v.as_bytes().eq_ignore_ascii_case(b"accept-encoding")),
                        "{vary:?}"
                    );
                    let body = r.bytes().await.unwrap();
                    let html = String::from_utf8(decode(Some("gzip"), &body)).unwrap();
                    assert_eq!(
                        without_tokens(&html),
                        without_tokens(&plain),
                        "{path} fragment={fragment} round {round}"
                    );
                    assert!(
                        body.len() * 2 < html.len(),
                        "{} of {}",
                        body.len(),
                        html.len()
                    );
                    // One masked token in every row form of this response, not another's.
                    let rows = &html[html.find("<tr id=\"user-").unwrap()..];
                    let tokens = form_tokens(rows);
                    assert!(tokens.len() >= 3, "{html}");
                    assert!(tokens.iter().all(|t| *t == tokens[0]));
                    assert!(!plain.contains(&tokens[0]));
                }
            }
        }
    }

    // A token out of a compressed page's rows is the asking session's own: accepted for it.
    let r = get(&ada, "/admin/users?status=pending", true, false)
        .await
        .unwrap();
    let html = String::from_utf8(decode(Some("gzip"), &r.bytes().await.unwrap())).unwrap();
    let token = form_tokens(&html[html.find("<tr id=\"user-").unwrap()..]).remove(0);
    let pending = crate::support::user(&app, "member01").await.id;
    for (c, expected) in [(&admin, 403), (&ada, 303)] {
        let r = c
            .post(app.url(&format!("/admin/users/{pending}/approve")))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
    // So is the layout's (htmx sends it with every request), stored apart from the rows'.
    let at = html.find("X-CSRF-Token\": \"").unwrap() + "X-CSRF-Token\": \"".len();
    let layout_token = &html[at..at + html[at..].find('"').unwrap()];
    assert_ne!(layout_token, token);
    let pending = crate::support::user(&app, "member05").await.id;
    let r = ada
        .post(app.url(&format!("/admin/users/{pending}/approve")))
        .header("x-csrf-token", layout_token)
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
