//! The OpenAPI document (issue 16, point 3). `GET /api/openapi.json` names every `/api/` route
//! of the real router and nothing else, describes the callers and the error body, and real
//! answers conform to it: [`assert_conforms`] validates an answer against the schema the
//! document gives for its operation and status (`openapi_a`, `_b` and `_c` call it for every
//! operation).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::support::{ADMIN, ADMIN_PASSWORD, Db, TestApp, api_login};

both_databases!(
    the_document_and_the_router_name_the_same_routes,
    error_answers_conform_to_the_error_body,
);

/// Methods an `any(...)` route answers, documented one by one (OpenAPI has no "any").
const ANY: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

async fn the_document_and_the_router_name_the_same_routes(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");

    // Valid against the OpenAPI 3.1 specification's own schema (swagger-parser, in Node).
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let out = crate::support::idp::node_tool("openapi-check.mjs", &[file.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "the document is not valid OpenAPI: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("VALID 3.1.0 "));

    let routed = api_routes(&hallpass::web::router(app.state.clone()));
    // The router's own description was read (not an empty set that agrees with anything).
    assert!(
        routed.len() > 70,
        "only {} /api/ routes found",
        routed.len()
    );
    for known in [
        ("GET", "/api/auth/me"),
        ("POST", "/api/admin/users/{id}/{action}"),
        ("DELETE", "/api/admin/sso/identities/{id}"),
        ("OPTIONS", "/api/authz/forward-auth"),
        ("GET", "/api/openapi.json"),
    ] {
        assert!(
            routed.contains(&(known.0.to_owned(), known.1.to_owned())),
            "{known:?} not found in the router"
        );
    }
    let documented = operations(&doc);
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes the document does not describe: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented operations the router does not have: {unrouted:?}"
    );

    assert_documented(&doc, "GET", "/api/openapi.json", 200);
    assert_documented(&doc, "GET", "/api/authz/forward-auth", 302);

    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["type"], "http");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["api_key_basic"]["scheme"], "basic");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "hallpass_session");
    assert_eq!(schemes["csrf_header"]["in"], "header");
    assert_eq!(schemes["csrf_header"]["name"], "X-CSRF-Token");

    let mut ids: BTreeSet<String> = BTreeSet::new();
    for (method, path) in &documented {
        let op = &doc["paths"][path][method.to_lowercase()];
        let what = format!("{method} {path}");
        // Every `{x}` of the path is a declared path parameter.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let in_path: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        assert_eq!(declared, in_path, "{what}: path parameters");
        // Callers: the API key, or the cookie (with the CSRF header unless the method is
        // safe); or, stated explicitly, anyone.
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no security"));
        let anyone = security.iter().any(|r| r == &json!({}));
        if !anyone {
            let safe = matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
            let cookie = if safe {
                json!({"session_cookie": []})
            } else {
                json!({"session_cookie": [], "csrf_header": []})
            };
            assert_eq!(
                security,
                &vec![json!({"api_key": []}), cookie],
                "{what}: callers"
            );
        }
        if path.starts_with("/api/auth/oidc/") {
            // A browser's round trip: its errors are pages (and the document says so).
            assert!(
                op["responses"]["default"]["content"]["text/html"].is_object(),
                "{what}: the error page"
            );
        } else {
            assert_eq!(
                op["responses"]["default"]["$ref"], "#/components/responses/Error",
                "{what}: the error answer"
            );
        }
        assert!(
            op["responses"]
                .as_object()
                .is_some_and(|r| r.keys().any(|k| k.starts_with('2') || k.starts_with('3'))),
            "{what}: no success answer documented"
        );
        assert!(
            op["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{what}: no summary"
        );
        assert_eq!(
            op["tags"].as_array().map(Vec::len),
            Some(1),
            "{what}: one tag"
        );
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(
            ids.insert(id.to_owned()),
            "{what}: operationId {id} is not unique"
        );
    }
}

async fn error_answers_conform_to_the_error_body(db: Db) {
    let Some(app) = TestApp::with_admin(db).await else {
        return;
    };
    let doc = document(&app).await;
    let c = app.client();
    // Without credentials.
    let r = c.get(app.url("/api/auth/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED");
    assert_conforms(&doc, "GET", "/api/auth/me", 401, &body);
    // A validation error carries `fields`.
    let (admin, token) = api_login(&app, ADMIN, ADMIN_PASSWORD).await;
    let r = admin
        .post(app.url("/api/admin/groups"))
        .header("x-csrf-token", &token)
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "VALIDATION_FAILED");
    assert_eq!(body["error"]["fields"][0]["field"], "name");
    check(
        &doc,
        &json!({"$ref": "#/components/schemas/ErrorBody"}),
        &body,
        "an error",
    );
    // An id that does not parse names nothing: the JSON 404, as for one that does not exist.
    for path in [
        "/api/admin/groups/abc",
        "/api/admin/users/1.5",
        "/api/admin/apps/x",
    ] {
        let r = admin.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "NOT_FOUND", "{path}");
        let template = path.rsplit_once('/').unwrap().0.to_owned() + "/{id}";
        assert_conforms(&doc, "GET", &template, 404, &body);
    }
    let r = admin
        .delete(app.url("/api/admin/groups/1/members/bob"))
        .header("x-csrf-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "Not found: `bob` is not a valid id."
    );

    // The schema is strict: an answer with a field it does not describe fails.
    let mut extra = body.clone();
    extra["error"]["hint"] = json!("not in the document");
    let refused = std::panic::catch_unwind(|| {
        check(
            &doc,
            &json!({"$ref": "#/components/schemas/ErrorBody"}),
            &extra,
            "an error",
        )
    });
    assert!(refused.is_err(), "an undocumented field passed");
    // And a missing required field fails too.
    let refused = std::panic::catch_unwind(|| {
        check(
            &doc,
            &json!({"$ref": "#/components/schemas/ErrorBody"}),
            &json!({"error": {"code": "X"}}),
            "an error",
        )
    });
    assert!(refused.is_err(), "a missing message passed");
}

/// A caller: a client with its cookie jar, and the CSRF token or API key it sends.
pub struct Caller<'a> {
    pub app: &'a TestApp,
    pub doc: &'a Value,
    pub client: reqwest::Client,
    pub csrf: Option<String>,
    pub key: Option<String>,
}

impl<'a> Caller<'a> {
    pub fn anonymous(app: &'a TestApp, doc: &'a Value) -> Self {
        Self {
            app,
            doc,
            client: app.client(),
            csrf: None,
            key: None,
        }
    }

    /// With an API key (`Authorization: Bearer`), no cookie.
    pub fn with_key(app: &'a TestApp, doc: &'a Value, key: &str) -> Self {
        Self {
            key: Some(key.to_owned()),
            ..Self::anonymous(app, doc)
        }
    }

    /// Signed in through `POST /api/auth/login` (its answer checked too).
    pub async fn signed_in(app: &'a TestApp, doc: &'a Value, name: &str, password: &str) -> Self {
        let mut me = Self::anonymous(app, doc);
        let body = me
            .call(
                "POST",
                "/api/auth/login",
                "/api/auth/login",
                Some(json!({ "username": name, "password": password })),
                200,
            )
            .await;
        me.csrf = Some(body["csrf_token"].as_str().unwrap().to_owned());
        me
    }

    /// Sends `method path` (an instance of `template`) with `body`, expects `status`, and
    /// checks the answer against the document; returns its JSON body (`null` when none).
    pub async fn call(
        &self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(m, self.app.url(path));
        if let Some(t) = &self.csrf {
            req = req.header("X-CSRF-Token", t);
        }
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "{method} {path}: {text}");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        };
        if body.is_null() {
            assert_documented(self.doc, method, template, status);
        } else {
            assert_conforms(self.doc, method, template, status, &body);
        }
        body
    }

    /// A browser redirect: expects `303` (documented) and answers its `Location`.
    pub async fn redirect(&self, template: &str, path: &str) -> String {
        let r = self.client.get(self.app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 303, "GET {path}");
        assert_documented(self.doc, "GET", template, 303);
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

/// The document, fetched without credentials.
pub async fn document(app: &TestApp) -> Value {
    let r = app
        .client()
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers().get("set-cookie").is_none());
    r.json().await.unwrap()
}

/// Panics unless `body` conforms to what the document says `method path` answers with
/// `status`. The schemas are read strictly: a field the document does not describe fails too.
pub fn assert_conforms(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let what = format!("{method} {path} → {status}");
    let response = response(doc, method, path, status);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{what}: the document gives no JSON body: {response}"
    );
    check(doc, schema, body, &what);
}

/// Panics unless the document lists `status` for `method path` (for answers without a body,
/// and redirects). 401, 403 and 429 may be left to the `default` error answer.
pub fn assert_documented(doc: &Value, method: &str, path: &str, status: u16) {
    response(doc, method, path, status);
}

fn response<'d>(doc: &'d Value, method: &str, path: &str, status: u16) -> &'d Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not in the document");
    let responses = &op["responses"];
    let mut r = &responses[status.to_string()];
    if r.is_null() && matches!(status, 401 | 403 | 429) {
        r = &responses["default"];
    }
    assert!(
        !r.is_null(),
        "{method} {path}: status {status} is not documented (documented: {:?})",
        responses.as_object().map(|m| m.keys().collect::<Vec<_>>())
    );
    match r["$ref"]
        .as_str()
        .and_then(|p| p.strip_prefix("#/components/responses/"))
    {
        Some(name) => &doc["components"]["responses"][name],
        None => r,
    }
}

/// Validates `instance` against `schema` (which may `$ref` the document's components).
fn check(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let closed: Map<String, Value> = schemas
        .iter()
        .map(|(k, v)| (k.clone(), strict(v, true)))
        .collect();
    let open: Map<String, Value> = schemas
        .iter()
        .map(|(k, v)| (k.clone(), strict(v, false)))
        .collect();
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": {"schemas": closed, "open": open},
        "allOf": [strict(schema, true)],
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&root)
        .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: the answer does not conform to the document:\n{}\nanswer: {instance}\nschema: {schema}",
        errors.join("\n")
    );
}

/// `schema` with object schemas closed: properties they do not describe are refused. By
/// `unevaluatedProperties`, not `additionalProperties`, so that an `allOf` (serde's
/// `flatten`) sees the properties of all its parts; the parts themselves stay open (a `$ref`
/// there points at the open copy of the component).
fn strict(node: &Value, close: bool) -> Value {
    let Value::Object(m) = node else {
        return node.clone();
    };
    let mut out = Map::new();
    for (k, v) in m {
        let child = match (k.as_str(), v) {
            ("allOf", Value::Array(parts)) => {
                Value::Array(parts.iter().map(|p| strict(p, false)).collect())
            }
            ("anyOf" | "oneOf", Value::Array(parts)) => {
                Value::Array(parts.iter().map(|p| strict(p, close)).collect())
            }
            ("properties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(n, s)| (n.clone(), strict(s, true)))
                    .collect(),
            ),
            ("items" | "additionalProperties", s) => strict(s, true),
            ("$ref", Value::String(r)) if !close => {
                Value::String(r.replace("#/components/schemas/", "#/components/open/"))
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), child);
    }
    let object_like = m.contains_key("properties") || m.contains_key("allOf");
    if close && object_like && !m.contains_key("additionalProperties") {
        out.entry("unevaluatedProperties").or_insert(json!(false));
    }
    Value::Object(out)
}

/// `(METHOD, path)` of every documented operation.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in [
            "get", "head", "post", "put", "patch", "delete", "options", "trace",
        ] {
            if item.get(method).is_some() {
                found.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    found
}

/// `(METHOD, path)` of every `/api/` route of the router, read from axum's own description of
/// it (its `Debug`: route ids with their paths, and each method router's `Allow` header).
/// `HEAD` is left out where it only follows `GET`; an `any(...)` route answers [`ANY`].
fn api_routes(router: &axum::Router) -> BTreeSet<(String, String)> {
    let text = format!("{router:?}");
    // The application's routes; the fallback router comes after.
    let text = text.split("fallback_router").next().unwrap();
    let mut methods = std::collections::BTreeMap::new();
    let mut paths = std::collections::BTreeMap::new();
    for chunk in text.split("RouteId(").skip(1) {
        let Some((id, rest)) = chunk.split_once("): ") else {
            continue;
        };
        if let Some(path) = rest.strip_prefix('"') {
            paths.insert(id.to_owned(), path.split('"').next().unwrap().to_owned());
        } else if rest.starts_with("MethodRouter(") {
            let allow = rest.split("allow_header: ").nth(1).unwrap();
            let list: Vec<String> = if let Some(bytes) = allow.strip_prefix("Bytes(b\"") {
                let list = bytes.split('"').next().unwrap();
                let list: Vec<&str> = list.split(',').collect();
                list.iter()
                    .filter(|m| **m != "HEAD" || !list.contains(&"GET"))
                    .map(|m| (*m).to_owned())
                    .collect()
            } else if allow.starts_with("Skip") {
                ANY.iter().map(|m| (*m).to_owned()).collect()
            } else {
                panic!("unexpected allow header in {rest:.200}")
            };
            methods.insert(id.to_owned(), list);
        }
    }
    let mut found = BTreeSet::new();
    for (id, path) in paths {
        if !path.starts_with("/api/") {
            continue;
        }
        for m in methods
            .get(&id)
            .unwrap_or_else(|| panic!("no methods for {path}"))
        {
            found.insert((m.clone(), path.clone()));
        }
    }
    found
}
