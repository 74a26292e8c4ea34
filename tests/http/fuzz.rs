//! Hostile input in every field, on both databases: every HTML form (found by crawling the
//! pages as the admin, as an anonymous visitor and on a fresh instance), every JSON route
//! (a table), every path parameter and every query parameter gets NUL, other control
//! characters, invalid UTF-8, lone surrogates, very long strings and a few classics.
//!
//! What must hold: never a 5xx, `/healthz` still answers, and a NUL is refused with a 4xx
//! that names the field in quotes (the rule of `web::input`). Failures are collected and
//! reported together, so one run shows every field that breaks the rule.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login, csrf_in};

/// The value whose refusal must name the field.
const NUL: &str = "fuzz\0value";

/// Other text every field gets: each must be answered without a 5xx.
fn nasty_texts() -> Vec<String> {
    let mut v: Vec<String> = [
        "fuzz\u{1}value",
        "fuzz\u{1b}[31mvalue",
        "fuzz\u{7f}value",
        "fuzz\r\nvalue",
        "fuzz\tvalue",
        "fuzz\u{85}value",
        "\u{202e}fuzzvalue",
        "\u{fffd}\u{ffff}\u{10ffff}",
        "<script>alert(1)</script>",
        "' OR '1'='1' --",
        "../../../../etc/passwd",
        "%00",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("A".repeat(5_000));
    // Over the default 64 KiB body limit: 413, not a crash.
    v.push("A".repeat(70_000));
    v
}

/// Already url-encoded values that decode to invalid UTF-8 (a lone byte, a broken sequence,
/// a UTF-8-encoded surrogate).
const RAW_ENCODED: &[&str] = &["%FF", "fuzz%C3%28value", "%ED%A0%80", "%C0%80"];

/// Every failure of the rule, reported together at the end.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    requests: usize,
}

impl Findings {
    fn fail(&mut self, what: String) {
        self.failures.push(what);
    }

    /// Not a 5xx (and for NUL: a 4xx naming `field`).
    fn judge(&mut self, what: &str, status: u16, body: &str, nul_field: Option<&str>) {
        self.requests += 1;
        if status >= 500 {
            self.fail(format!("{what}: answered {status}"));
            return;
        }
        if let Some(field) = nul_field {
            // A damaged CSRF token is a forged form: the CSRF check refuses it (403) before
            // the body is read for anything else, so it names no field.
            if field == "csrf_token" {
                if status != 403 {
                    self.fail(format!(
                        "{what}: a NUL CSRF token answered {status}, not 403"
                    ));
                }
                return;
            }
            if !(400..500).contains(&status) {
                self.fail(format!("{what}: NUL answered {status}, not a 4xx"));
            } else if !names_field(body, field) {
                self.fail(format!(
                    "{what}: NUL answered {status} without naming \"{field}\": {}",
                    excerpt(body)
                ));
            }
        }
    }
}

fn excerpt(body: &str) -> String {
    let text: String = body.chars().take(300).collect();
    text.replace('\n', " ")
}

/// The field's name in quotes: in a JSON error's message, or in an HTML page (askama
/// escapes the quotes).
fn names_field(body: &str, field: &str) -> bool {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("\"{field}\"")));
    }
    ["&#34;", "&quot;", "\""]
        .iter()
        .any(|q| body.contains(&format!("{q}{field}{q}")))
}

// ---------------------------------------------------------------------------------------
// A small scanner for the forms of our own pages (askama output: quoted attributes).

#[derive(Debug, Clone)]
struct Form {
    page: String,
    action: String,
    method: String,
    fields: Vec<(String, String)>,
}

fn decode_entities(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The attributes of a start tag (`s` starts right after `<`), and where the tag ends.
fn tag_at(s: &str) -> (String, Vec<(String, String)>, usize) {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
        i += 1;
    }
    let name = s[..i].to_ascii_lowercase();
    let mut attrs = Vec::new();
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() || b[i] == b'>' {
            return (name, attrs, i + 1);
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' && b[i] != b'>' {
            i += 1;
        }
        let key = s[start..i].to_ascii_lowercase();
        let mut value = String::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                let vstart = i + 1;
                i = vstart;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                value = decode_entities(&s[vstart..i.min(b.len())]);
                i += 1;
            } else {
                let vstart = i;
                while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&s[vstart..i]);
            }
        }
        attrs.push((key, value));
    }
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// One start tag: where it starts, its name and attributes, and the offset just past it.
struct Tag {
    start: usize,
    name: String,
    attrs: Vec<(String, String)>,
    end: usize,
}

/// Every start tag of `html`, in order.
fn tags(html: &str) -> Vec<Tag> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = html[at..].find('<') {
        let start = at + p + 1;
        let rest = &html[start..];
        if rest.starts_with('/') || rest.starts_with('!') {
            at = start;
            continue;
        }
        let (name, attrs, len) = tag_at(rest);
        out.push(Tag {
            start: start - 1,
            name,
            attrs,
            end: start + len,
        });
        at = start + len.max(1);
    }
    out
}

/// The forms of a page with the values a browser would submit by default.
fn forms_in(html: &str, page: &str) -> Vec<Form> {
    let all = tags(html);
    let mut forms = Vec::new();
    let mut i = 0;
    while i < all.len() {
        let Tag {
            name, attrs, end, ..
        } = &all[i];
        i += 1;
        if name != "form" {
            continue;
        }
        let close = html[*end..].find("</form>").map_or(html.len(), |p| end + p);
        let mut form = Form {
            page: page.to_owned(),
            action: attr(attrs, "action").unwrap_or(page).to_owned(),
            method: attr(attrs, "method").unwrap_or("get").to_ascii_uppercase(),
            fields: Vec::new(),
        };
        let mut select: Option<(String, Option<String>)> = None;
        while i < all.len() && all[i].start < close {
            let Tag {
                name: tag,
                attrs: a,
                end: tag_end,
                ..
            } = &all[i];
            i += 1;
            let field = attr(a, "name").map(str::to_owned);
            match tag.as_str() {
                "input" => {
                    let Some(field) = field else { continue };
                    let kind = attr(a, "type").unwrap_or("text");
                    let checked = attr(a, "checked").is_some();
                    let value = attr(a, "value").unwrap_or_default().to_owned();
                    match kind {
                        "checkbox" | "radio" if !checked => {}
                        "checkbox" | "radio" => form.fields.push((field, value)),
                        "submit" | "button" | "image" | "reset" => {}
                        _ => form.fields.push((field, value)),
                    }
                }
                "textarea" => {
                    let Some(field) = field else { continue };
                    let text = html[*tag_end..].split("</textarea>").next().unwrap_or("");
                    form.fields.push((field, decode_entities(text)));
                }
                "select" => {
                    if let Some(field) = field {
                        select = Some((field, None));
                    }
                }
                "option" => {
                    if let Some((_, chosen)) = select.as_mut() {
                        let value = attr(a, "value").unwrap_or_default().to_owned();
                        if chosen.is_none() || attr(a, "selected").is_some() {
                            *chosen = Some(value);
                        }
                    }
                }
                "button" => {
                    // The first named button stands for the one a person clicks.
                    if let Some(field) = field
                        && !form.fields.iter().any(|(f, _)| *f == field)
                    {
                        form.fields
                            .push((field, attr(a, "value").unwrap_or_default().to_owned()));
                    }
                }
                _ => {}
            }
            if tag != "select"
                && tag != "option"
                && let Some((field, chosen)) = select.take()
            {
                form.fields.push((field, chosen.unwrap_or_default()));
            }
        }
        if let Some((field, chosen)) = select.take() {
            form.fields.push((field, chosen.unwrap_or_default()));
        }
        forms.push(form);
    }
    forms
}

/// Same-site links (`href`, `hx-get`) worth visiting.
fn links_in(html: &str) -> Vec<String> {
    tags(html)
        .into_iter()
        .flat_map(|tag| {
            tag.attrs
                .into_iter()
                .filter(|(k, _)| k == "href" || k == "hx-get")
                .map(|(_, v)| v)
        })
        .filter(|l| l.starts_with('/') && !l.starts_with("//"))
        .filter(|l| !l.starts_with("/static/") && !l.starts_with("/api/") && l != "/logout")
        .map(|l| l.split('#').next().unwrap_or_default().to_owned())
        .collect()
}

/// A page or action with its numbers taken out: one visit per kind of page (the query
/// counts, so `/admin/users?status=deleted` is a page of its own).
fn pattern(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_number = false;
    for c in path.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("{n}");
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// GETs `seeds` and every page they lead to; returns one form of each kind.
async fn crawl(app: &TestApp, client: &reqwest::Client, seeds: &[&str]) -> Vec<Form> {
    let mut queue: VecDeque<String> = seeds.iter().map(|s| (*s).to_owned()).collect();
    let mut pages = HashSet::new();
    let mut kinds = HashSet::new();
    let mut forms = Vec::new();
    while let Some(path) = queue.pop_front() {
        if !pages.insert(pattern(&path)) || pages.len() > 200 {
            continue;
        }
        let r = client.get(app.url(&path)).send().await.unwrap();
        let html_page = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        if r.status() != 200 || !html_page {
            continue;
        }
        let html = r.text().await.unwrap();
        for form in forms_in(&html, &path) {
            let mut names: Vec<&str> = form.fields.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            let kind = format!("{} {} {names:?}", form.method, pattern(&form.action));
            if kinds.insert(kind) {
                forms.push(form);
            }
        }
        for link in links_in(&html) {
            if !pages.contains(&pattern(&link)) {
                queue.push_back(link);
            }
        }
    }
    forms
}

// ---------------------------------------------------------------------------------------
// Sending.

fn encode_pairs(pairs: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The form's default fields with `field` set to `value` (or to an already encoded value).
fn form_body(form: &Form, field: &str, value: Result<&str, &str>) -> String {
    let others: Vec<(String, String)> = form
        .fields
        .iter()
        .filter(|(n, _)| n != field)
        .cloned()
        .collect();
    let mut body = encode_pairs(&others);
    if !body.is_empty() {
        body.push('&');
    }
    match value {
        Ok(text) => body.push_str(&encode_pairs(&[(field.to_owned(), text.to_owned())])),
        Err(raw) => {
            body.push_str(&encode_pairs(&[(field.to_owned(), String::new())]));
            body.push_str(raw);
        }
    }
    body
}

async fn send_form(
    app: &TestApp,
    client: &reqwest::Client,
    form: &Form,
    body: String,
) -> (u16, String) {
    let r = if form.method == "GET" {
        let sep = if form.action.contains('?') { '&' } else { '?' };
        client
            .get(app.url(&format!("{}{sep}{body}", form.action)))
            .send()
            .await
    } else {
        client
            .post(app.url(&form.action))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
    };
    match r {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        // A connection closed on a huge body is the server's right, not a crash.
        Err(e) => (0, format!("request error: {e}")),
    }
}

async fn healthy(app: &TestApp, findings: &mut Findings, after: &str) {
    let r = reqwest::get(app.url("/healthz")).await;
    if !r.is_ok_and(|r| r.status() == 200) {
        findings.fail(format!("/healthz did not answer 200 after {after}"));
    }
}

/// Every field of every form: NUL (must be named), the nasty texts, invalid UTF-8, and one
/// field name with NUL in it.
async fn fuzz_forms(
    app: &TestApp,
    client: &reqwest::Client,
    forms: &[Form],
    signed_in_as: Option<&str>,
    findings: &mut Findings,
) {
    let nasty = nasty_texts();
    for form in forms {
        let form = &fresh_token(app, client, form).await;
        for (field, _) in &form.fields {
            let what = |v: &str| {
                format!(
                    "{} {} (form on {}) field \"{field}\" = {v}",
                    form.method, form.action, form.page
                )
            };
            let (status, body) =
                send_form(app, client, form, form_body(form, field, Ok(NUL))).await;
            findings.judge(&what("NUL"), status, &body, Some(field));
            for value in &nasty {
                let (status, body) =
                    send_form(app, client, form, form_body(form, field, Ok(value))).await;
                findings.judge(&what(&format!("{:.20?}", value)), status, &body, None);
            }
            for raw in RAW_ENCODED {
                let (status, body) =
                    send_form(app, client, form, form_body(form, field, Err(raw))).await;
                findings.judge(&what(raw), status, &body, None);
            }
        }
        let mut body = encode_pairs(&form.fields);
        body.push_str("&user%00name=x");
        let (status, body) = send_form(app, client, form, body).await;
        if !(400..500).contains(&status) {
            findings.fail(format!(
                "{} {}: a field name with NUL answered {status}: {}",
                form.method,
                form.action,
                excerpt(&body)
            ));
        }
        healthy(app, findings, &format!("{} {}", form.method, form.action)).await;
        if let Some(login) = signed_in_as
            && !client
                .get(app.url("/api/auth/me"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        {
            // Only a request that got past the rule can sign the admin out (the default
            // sign-out form with a NUL-named extra field): note it and sign in again.
            findings.fail(format!(
                "{} {}: the admin was signed out by the fuzz",
                form.method, form.action
            ));
            assert_eq!(app.login(client, login, ADMIN_PASSWORD).await.status(), 303);
        }
    }
}

/// The form with the CSRF token its page holds now (an earlier request may have rotated it)
/// and its empty fields filled.
async fn fresh_token(app: &TestApp, client: &reqwest::Client, form: &Form) -> Form {
    let mut form = form.clone();
    let Ok(r) = client.get(app.url(&form.page)).send().await else {
        return form;
    };
    let html = r.text().await.unwrap_or_default();
    let token = csrf_in(&html);
    for (name, value) in &mut form.fields {
        if name == "csrf_token" {
            if let Some(token) = &token {
                value.clone_from(token);
            }
        } else if value.is_empty() {
            // An empty field stops most handlers at "required": a filler lets the fuzzed
            // field reach the lookups behind it. One per field, so no confirmation matches
            // its password and no default submission changes anything that matters.
            *value = format!("fuzz-{name}-1");
        }
    }
    form
}

// ---------------------------------------------------------------------------------------
// JSON routes, path parameters, query parameters: tables.

/// One JSON route and a body whose fields are fuzzed one at a time.
struct JsonRoute {
    method: Method,
    path: String,
    base: Value,
    admin: bool,
}

async fn fuzz_json(app: &TestApp, admin_key: &str, routes: &[JsonRoute], findings: &mut Findings) {
    let client = reqwest::Client::new();
    let send = |route: &JsonRoute, body: Vec<u8>| {
        let mut rb = client
            .request(route.method.clone(), app.url(&route.path))
            .header("content-type", "application/json")
            .body(body);
        if route.admin {
            rb = rb.bearer_auth(admin_key);
        }
        async move {
            match rb.send().await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    (status, r.text().await.unwrap_or_default())
                }
                Err(e) => (0, format!("request error: {e}")),
            }
        }
    };
    let nasty = nasty_texts();
    for route in routes {
        let Value::Object(base) = &route.base else {
            continue;
        };
        for field in base.keys() {
            let what = |v: &str| format!("{} {} field \"{field}\" = {v}", route.method, route.path);
            let with = |v: Value| {
                let mut body = base.clone();
                body.insert(field.clone(), v);
                serde_json::to_vec(&body).unwrap()
            };
            let (status, body) = send(route, with(json!(NUL))).await;
            findings.judge(&what("NUL"), status, &body, Some(field));
            for value in &nasty {
                let (status, body) = send(route, with(json!(value))).await;
                findings.judge(&what(&format!("{:.20?}", value)), status, &body, None);
            }
            // Lone surrogates and raw invalid UTF-8 cannot be made by serde_json: spliced in.
            let template = String::from_utf8(with(json!("__FUZZ__"))).unwrap();
            for raw in [
                &br#""\ud800""#[..],
                br#""\udc00x""#,
                b"\"\xff\xfe\"",
                b"\"fuzz\xc3\x28\"",
            ] {
                let (head, tail) = template.split_once("\"__FUZZ__\"").unwrap();
                let body = [head.as_bytes(), raw, tail.as_bytes()].concat();
                let (status, text) = send(route, body).await;
                findings.judge(&what(&String::from_utf8_lossy(raw)), status, &text, None);
            }
            // A wrong type where text is expected.
            let (status, body) = send(route, with(json!({ "nested": [NUL] }))).await;
            findings.judge(&what("{nested:[NUL]}"), status, &body, None);
        }
        let mut body = base.clone();
        body.insert("user\0name".into(), json!("x"));
        let (status, text) = send(route, serde_json::to_vec(&body).unwrap()).await;
        if !(400..500).contains(&status) {
            findings.fail(format!(
                "{} {}: a key with NUL answered {status}: {}",
                route.method,
                route.path,
                excerpt(&text)
            ));
        }
        healthy(app, findings, &format!("{} {}", route.method, route.path)).await;
    }
}

/// Every route with a path parameter, with `{name}` standing for the parameter (named as in
/// the router) and a valid value next to it, to be replaced by a hostile one.
fn path_routes(victim: i64, key: i64, identity: i64) -> Vec<(Method, String, &'static str)> {
    let v = victim.to_string();
    let k = key.to_string();
    let i = identity.to_string();
    let get = Method::GET;
    let post = Method::POST;
    vec![
        (get.clone(), format!("/admin/users/{{id:{v}}}/edit"), "id"),
        (get.clone(), format!("/admin/users/{{id:{v}}}/row"), "id"),
        (get.clone(), format!("/admin/users/{{id:{v}}}/purge"), "id"),
        (post.clone(), format!("/admin/users/{{id:{v}}}"), "id"),
        (
            post.clone(),
            format!("/admin/users/{{id:{v}}}/password"),
            "id",
        ),
        (
            get.clone(),
            format!("/admin/users/{v}/confirm/{{action:disable}}"),
            "action",
        ),
        (
            post.clone(),
            format!("/admin/users/{v}/{{action:disable}}"),
            "action",
        ),
        (
            get.clone(),
            format!("/account/api-keys/{{id:{k}}}/revoke"),
            "id",
        ),
        (
            post.clone(),
            format!("/account/api-keys/{{id:{k}}}/revoke"),
            "id",
        ),
        (
            post.clone(),
            "/account/identities/{provider:home}/link".into(),
            "provider",
        ),
        (
            get.clone(),
            format!("/account/identities/{{id:{i}}}/unlink"),
            "id",
        ),
        (
            post.clone(),
            format!("/account/identities/{{id:{i}}}/unlink"),
            "id",
        ),
        (get.clone(), "/admin/sso/providers/{id:home}".into(), "id"),
        (post.clone(), "/admin/sso/providers/{id:home}".into(), "id"),
        (
            get.clone(),
            "/admin/sso/providers/{id:home}/links".into(),
            "id",
        ),
        (
            post.clone(),
            "/admin/sso/providers/{id:home}/links".into(),
            "id",
        ),
        (
            post.clone(),
            "/admin/sso/providers/{id:home}/verify".into(),
            "id",
        ),
        (
            post.clone(),
            "/admin/sso/providers/{id:home}/enabled".into(),
            "id",
        ),
        (
            get.clone(),
            "/admin/sso/providers/{id:home}/revert".into(),
            "id",
        ),
        (
            get.clone(),
            "/admin/sso/providers/{id:home}/delete".into(),
            "id",
        ),
        (
            get.clone(),
            format!("/admin/sso/identities/{{id:{i}}}/unlink"),
            "id",
        ),
        (
            get.clone(),
            "/api/auth/oidc/{provider:home}/login".into(),
            "provider",
        ),
        (
            get.clone(),
            "/api/auth/oidc/{provider:home}/callback".into(),
            "provider",
        ),
        (get.clone(), format!("/api/admin/users/{{id:{v}}}"), "id"),
        (Method::PATCH, format!("/api/admin/users/{{id:{v}}}"), "id"),
        (
            post.clone(),
            format!("/api/admin/users/{v}/{{action:disable}}"),
            "action",
        ),
        (
            get.clone(),
            format!("/api/admin/users/{{id:{v}}}/api-keys"),
            "id",
        ),
        (Method::DELETE, format!("/api/me/api-keys/{{id:{k}}}"), "id"),
        (
            Method::DELETE,
            format!("/api/admin/api-keys/{{id:{k}}}"),
            "id",
        ),
    ]
}

/// Every query parameter a handler reads, on its route.
const QUERY_ROUTES: &[(&str, &[&str])] = &[
    ("/login", &["next", "notice", "sso_error"]),
    ("/", &["notice"]),
    ("/account", &["notice", "linked", "link_error"]),
    (
        "/admin/users",
        &["q", "role", "status", "sort", "dir", "notice"],
    ),
    ("/admin/audit", &["user", "action", "before"]),
    ("/admin/sso", &["notice"]),
    (
        "/admin/sso/providers/home/links",
        &["notice", "linked", "link_error"],
    ),
    ("/admin/settings", &["saved"]),
    ("/admin/proxy", &["saved"]),
    (
        "/api/admin/users",
        &["q", "role", "status", "sort", "dir", "limit", "after"],
    ),
    ("/api/admin/audit", &["user", "action", "before", "limit"]),
    ("/api/auth/oidc/home/login", &["next"]),
    ("/api/auth/oidc/home/callback", &["state", "code", "error"]),
];

/// Sends a request as the admin: the session cookie and CSRF token for pages and JSON, an
/// empty url-encoded form for HTML POSTs.
async fn admin_request(
    app: &TestApp,
    admin: &reqwest::Client,
    csrf: &str,
    method: Method,
    path: &str,
) -> (u16, String) {
    let mut rb = admin
        .request(method.clone(), app.url(path))
        .header("x-csrf-token", csrf);
    if method == Method::POST && !path.starts_with("/api/") {
        rb = rb
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf_token={csrf}"));
    }
    match rb.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
        Err(e) => (0, format!("request error: {e}")),
    }
}

async fn fuzz_paths_and_queries(
    app: &TestApp,
    admin: &reqwest::Client,
    csrf: &str,
    routes: &[(Method, String, &'static str)],
    findings: &mut Findings,
) {
    for (method, template, name) in routes {
        let start = template.find('{').unwrap();
        let end = template.find('}').unwrap();
        let valid = &template[start + 1 + name.len() + 1..end];
        let with = |v: &str| format!("{}{v}{}", &template[..start], &template[end + 1..]);
        let what = |v: &str| format!("{method} {} ({name} = {v})", with(v));
        for nul in ["%00", &format!("{valid}%00"), &format!("%00{valid}")] {
            let (status, body) = admin_request(app, admin, csrf, method.clone(), &with(nul)).await;
            findings.judge(&what(nul), status, &body, Some(name));
        }
        for v in [
            "%01",
            "%1B",
            "%7F",
            "%0A",
            "%C2%85",
            "%FF",
            "%ED%A0%80",
            "%25",
            "..",
            "%2E%2E",
            "-1",
            "99999999999999999999999",
            "%F0%9F%92%A9",
        ] {
            let (status, body) = admin_request(app, admin, csrf, method.clone(), &with(v)).await;
            findings.judge(&what(v), status, &body, None);
        }
        let long = "A".repeat(5_000);
        let (status, body) = admin_request(app, admin, csrf, method.clone(), &with(&long)).await;
        findings.judge(&what("5000 x A"), status, &body, None);
    }
    healthy(app, findings, "the path parameters").await;
    for (path, names) in QUERY_ROUTES {
        for name in *names {
            let what = |v: &str| format!("GET {path}?{name}={v}");
            let (status, body) = admin_request(
                app,
                admin,
                csrf,
                Method::GET,
                &format!("{path}?{name}=a%00b"),
            )
            .await;
            findings.judge(&what("a%00b"), status, &body, Some(name));
            for v in [
                "%01",
                "%1B%5B31m",
                "%7F",
                "%0D%0A",
                "%09",
                "%C2%85",
                "%FF",
                "%ED%A0%80",
                "%E2%80%AE",
                "%25%30%30",
                "<script>",
                "-1",
                "99999999999999999999999",
            ] {
                let (status, body) =
                    admin_request(app, admin, csrf, Method::GET, &format!("{path}?{name}={v}"))
                        .await;
                findings.judge(&what(v), status, &body, None);
            }
            let long = format!("{path}?{name}={}", "A".repeat(5_000));
            let (status, body) = admin_request(app, admin, csrf, Method::GET, &long).await;
            findings.judge(&what("5000 x A"), status, &body, None);
        }
        // A parameter no handler reads, and a NUL in a parameter's name.
        let (status, body) =
            admin_request(app, admin, csrf, Method::GET, &format!("{path}?zz=%00")).await;
        findings.judge(&format!("GET {path}?zz=%00"), status, &body, Some("zz"));
        let (status, body) =
            admin_request(app, admin, csrf, Method::GET, &format!("{path}?a%00b=1")).await;
        if !(400..500).contains(&status) {
            findings.fail(format!(
                "GET {path}?a%00b=1: a NUL in a name answered {status}: {}",
                excerpt(&body)
            ));
        }
    }
    healthy(app, findings, "the query parameters").await;
}

// ---------------------------------------------------------------------------------------
// The data the pages need so that every form shows up.

struct Fixture {
    victim: i64,
    goner: i64,
    key_id: i64,
    identity: i64,
}

async fn api(
    app: &TestApp,
    client: &reqwest::Client,
    csrf: &str,
    method: Method,
    path: &str,
    body: Value,
) -> Value {
    let r = client
        .request(method.clone(), app.url(path))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Users in every state (active, disabled, deleted), an API key, registration open, a UI
/// provider `home` whose issuer is a closed loopback port (nothing leaves the machine), and
/// an identity of the admin linked to it.
async fn fixture(app: &TestApp, admin: &reqwest::Client) -> Fixture {
    let (c, csrf) = api_login(app, ADMIN, ADMIN_PASSWORD).await;
    let mut ids = Vec::new();
    for name in ["victim", "sleeper", "goner", "waiting"] {
        let body = json!({ "username": name, "email": format!("{name}@example.com"),
                           "password": "victim password 1" });
        let user = api(app, &c, &csrf, Method::POST, "/api/admin/users", body).await;
        ids.push(user["user"]["id"].as_i64().unwrap());
    }
    api(
        app,
        &c,
        &csrf,
        Method::POST,
        &format!("/api/admin/users/{}/disable", ids[1]),
        json!({}),
    )
    .await;
    let r = c
        .delete(app.url(&format!("/api/admin/users/{}", ids[2])))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "delete: {}", r.status());
    crate::support::sql(
        app,
        "UPDATE users SET status = 'pending' WHERE username = 'waiting'",
    )
    .await;
    let key = api(
        app,
        &c,
        &csrf,
        Method::POST,
        "/api/me/api-keys",
        json!({ "name": "fuzz" }),
    )
    .await;
    let key_id = key["id"].as_i64().unwrap();
    let settings = json!({ "registration_enabled": true, "auto_approve_registrations": false });
    api(app, &c, &csrf, Method::PUT, "/api/admin/settings", settings).await;

    let token = app.csrf(admin, "/admin/sso/new").await;
    let r = admin
        .post(app.url("/admin/sso/new"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("id", "home"),
            ("issuer", "http://127.0.0.1:9/"),
            ("client_id", "hallpass"),
            ("client_secret", "fuzz-client-secret-0123456789"),
            ("action", "save"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        303,
        "create provider: {}",
        r.text().await.unwrap()
    );
    let token = app.csrf(admin, "/admin/sso/providers/home/links").await;
    let r = admin
        .post(app.url("/admin/sso/providers/home/links"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("subject", "admin-sub"),
            ("username", ADMIN),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "link: {}", r.text().await.unwrap());
    let account = admin.get(app.url("/account")).send().await.unwrap();
    let html = account.text().await.unwrap();
    let identity = links_in(&html)
        .iter()
        .find_map(|l| {
            l.strip_prefix("/account/identities/")?
                .strip_suffix("/unlink")?
                .parse::<i64>()
                .ok()
        })
        .expect("the linked identity on /account");
    Fixture {
        victim: ids[0],
        goner: ids[2],
        key_id,
        identity,
    }
}

fn json_routes(victim: i64) -> Vec<JsonRoute> {
    let route = |method: Method, path: &str, base: Value, admin: bool| JsonRoute {
        method,
        path: path.to_owned(),
        base,
        admin,
    };
    let user = format!("/api/admin/users/{victim}");
    vec![
        route(
            Method::POST,
            "/api/auth/login",
            json!({ "username": "nobody", "password": "wrong password 1" }),
            false,
        ),
        route(
            Method::POST,
            "/api/me/password",
            json!({ "current_password": "wrong password 1", "new_password": "" }),
            true,
        ),
        route(
            Method::POST,
            "/api/admin/users",
            json!({ "username": "", "email": "", "display_name": "", "role": "user",
                    "password": "" }),
            true,
        ),
        route(
            Method::POST,
            "/api/admin/invites",
            json!({ "username": "", "email": "", "role": "user", "groups": [],
                    "expires_in_days": 7, "needs_approval": false }),
            true,
        ),
        route(
            Method::PATCH,
            &user,
            json!({ "username": "victim", "email": "victim@example.com",
                    "display_name": "Victim", "role": "user" }),
            true,
        ),
        route(
            Method::POST,
            &format!("{user}/password"),
            json!({ "password": "" }),
            true,
        ),
        route(
            Method::POST,
            &format!("{user}/purge"),
            json!({ "confirm": "" }),
            true,
        ),
        route(
            Method::POST,
            "/api/me/api-keys",
            json!({ "name": "", "expires_in_days": 1 }),
            true,
        ),
        route(
            Method::PUT,
            "/api/admin/settings",
            json!({ "registration_enabled": true, "auto_approve_registrations": false }),
            true,
        ),
    ]
}

async fn every_field_refuses_nul_and_survives_hostile_input(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let Some(fresh) = TestApp::empty(db).await else {
        return;
    };
    let started = Instant::now();
    let admin = app.admin_client().await;
    let fx = fixture(&app, &admin).await;
    let mut findings = Findings::default();

    let seeds = [
        "/",
        "/account",
        "/admin/users",
        "/admin/users/new",
        "/admin/audit",
        "/admin/settings",
        "/admin/proxy",
        "/admin/diagnostics",
        "/admin/sso",
        "/admin/sso/new",
        "/admin/users?status=deleted",
        "/admin/users?status=pending",
        &format!("/admin/users/{}/purge", fx.goner),
    ];
    let admin_forms = crawl(&app, &admin, &seeds).await;
    let anonymous = app.client();
    // An invite link's sign-up form (issue 15), open to anyone holding the link.
    let invite = hallpass::service::invites::create(
        &app.state.db,
        &app.state.secret,
        hallpass::service::Actor::system("test"),
        hallpass::domain::invite::NewInvite::parse(hallpass::domain::invite::InviteFields {
            role: "user",
            ..Default::default()
        })
        .unwrap(),
    )
    .await
    .unwrap();
    let invite_path = format!("/invite/{}", invite.token);
    let anonymous_forms = crawl(&app, &anonymous, &["/login", "/register", &invite_path]).await;
    assert!(anonymous_forms.iter().any(|f| f.action == invite_path));
    let setup_client = fresh.client();
    let setup_forms = crawl(&fresh, &setup_client, &["/setup"]).await;
    // The crawl found the forms the issue names, so a template change cannot hide one.
    for expected in [
        "/login",
        "/register",
        "/admin/proxy/links",
        "/admin/sso/providers/home/links",
        "/admin/users/{n}",
        "/account/password",
        "/account/api-keys",
        "/admin/settings",
        "/admin/sso/modes",
        "/admin/users/{n}/restore",
        "/admin/users/{n}/approve",
        "/admin/users/{n}/reject",
        "/admin/users/{n}/purge",
        "/admin/invites",
        "/logout",
    ] {
        assert!(
            admin_forms
                .iter()
                .chain(&anonymous_forms)
                .any(|f| pattern(&f.action) == expected),
            "no form posts to {expected}"
        );
    }
    assert!(setup_forms.iter().any(|f| f.action == "/setup"));

    fuzz_forms(&app, &admin, &admin_forms, Some(ADMIN), &mut findings).await;
    fuzz_forms(&app, &anonymous, &anonymous_forms, None, &mut findings).await;
    fuzz_forms(&fresh, &setup_client, &setup_forms, None, &mut findings).await;
    // A key made now: the form fuzz may have revoked the fixture's (only if a request got
    // past the rule, which the findings then show).
    let (c, csrf) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let key = api(
        &app,
        &c,
        &csrf,
        Method::POST,
        "/api/me/api-keys",
        json!({ "name": "json" }),
    )
    .await;
    let admin_key = key["key"].as_str().unwrap().to_owned();
    fuzz_json(&app, &admin_key, &json_routes(fx.victim), &mut findings).await;
    let csrf = app.csrf(&admin, "/account").await;
    let routes = path_routes(fx.victim, fx.key_id, fx.identity);
    fuzz_paths_and_queries(&app, &admin, &csrf, &routes, &mut findings).await;

    // The fuzz reached the handlers as the admin: the session survived it.
    let me = admin.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(
        me.status(),
        200,
        "the admin's session did not survive the fuzz"
    );

    let forms: Vec<String> = admin_forms
        .iter()
        .chain(&anonymous_forms)
        .chain(&setup_forms)
        .map(|f| format!("{} {}", f.method, pattern(&f.action)))
        .collect();
    eprintln!(
        "fuzz on {db:?}: {} forms ({}), {} requests, {} failures, {:.1} s",
        forms.len(),
        forms.join(", "),
        findings.requests,
        findings.failures.len(),
        started.elapsed().as_secs_f64()
    );
    for f in &findings.failures {
        eprintln!("fuzz failure: {f}");
    }
    assert!(
        findings.failures.is_empty(),
        "{} of {} fuzz requests broke the rule; the first 40:\n{}",
        findings.failures.len(),
        findings.requests,
        findings
            .failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The requests of the report, one by one: the same clear refusal on both databases, every
/// time, and nothing reaches the database.
async fn nul_in_a_sign_in_is_a_400_naming_the_field(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let c = app.client();
    for _ in 0..5 {
        let r = c
            .post(app.url("/api/auth/login"))
            .json(&json!({ "username": "alice\u{0}", "password": "wrong password 1" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "INVALID_INPUT", "{body}");
        assert_eq!(body["error"]["field"], "username", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("\"username\"") && message.contains("U+0000"),
            "{message}"
        );
    }
    let token = app.csrf(&c, "/login").await;
    let r = c
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice\0"),
            ("password", "wrong password 1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(names_field(&page, "username"), "{page}");
    let admin = app.admin_client().await;
    let r = admin
        .get(app.url("/admin/users?q=a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(names_field(&r.text().await.unwrap(), "q"));
    let r = admin
        .get(app.url("/admin/sso/providers/%00x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(names_field(&r.text().await.unwrap(), "id"));
    // Each answer names its field, which only the edge check can do (the database net of
    // `unstorable_text_past_the_edge_is_a_client_error` cannot know the field): nothing
    // reached the database. (The log is shared by every test of this binary, and that test
    // sends a NUL to PostgreSQL on purpose, so the log is no witness here.)
}

/// Text PostgreSQL cannot store that reaches the service layer anyway (past the edge check,
/// as a future route might) is a client error, never a 500.
async fn unstorable_text_past_the_edge_is_a_client_error(db: Db) {
    use hallpass::web::error::ApiError;
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let result = hallpass::service::auth::login_with_password(
        &app.state.db,
        &app.state.hasher,
        &app.state.config,
        "alice\0",
        "some password",
        None,
    )
    .await;
    let Err(err) = result else {
        panic!("a NUL username signed in");
    };
    let api = ApiError::from(err);
    match db {
        Db::Postgres => {
            assert_eq!(api.status, 400, "{api:?}");
            assert_eq!(api.code, "INVALID_INPUT");
        }
        Db::Sqlite => assert_eq!(api.status, 401, "{api:?}"),
    }
}

both_databases!(
    every_field_refuses_nul_and_survives_hostile_input,
    nul_in_a_sign_in_is_a_400_naming_the_field,
    unstorable_text_past_the_edge_is_a_client_error
);
