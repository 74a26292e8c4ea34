//! Self-tests of the test OpenID provider (`support::idp`): no Hallpass server, no database.
//! The code flows are driven from here, the way an OpenID client would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::JsonWebKey;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::idp::{
    ALICE, BOB, CAROL, DefaultUser, Idp, Tamper, USERINFO_ONLY_CLAIM, USERINFO_ONLY_VALUE,
    decode_jwt,
};

/// Never fetched: the flow stops at the redirect back.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const CONFIDENTIAL: &str = "confidential-app";
const SECRET: &str = "confidential-app-secret";
const PUBLIC: &str = "public-app";

#[derive(Debug, Clone, Copy)]
enum ClientAuth {
    Basic,
    Post,
    Public,
}

async fn idp_with_clients() -> Idp {
    let idp = Idp::start(&Idp::default_users()).await;
    let redirect = [REDIRECT_URI.to_owned()];
    idp.add_client(CONFIDENTIAL, Some(SECRET), &redirect).await;
    idp.add_client(PUBLIC, None, &redirect).await;
    idp
}

fn random_b64() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Where the browser would be sent, and what the client keeps meanwhile.
struct Request {
    url: String,
    state: String,
    nonce: String,
    verifier: String,
}

fn authorization_request(idp: &Idp, client_id: &str) -> Request {
    let (state, nonce, verifier) = (random_b64(), random_b64(), random_b64());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = Url::parse_with_params(
        &idp.url("/auth"),
        [
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile email groups"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    Request {
        url: url.into(),
        state,
        nonce,
        verifier,
    }
}

/// The query parameters of a URL.
fn query(url: &str) -> std::collections::HashMap<String, String> {
    Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// Signs `user` in through `client_id` and redeems the code: (token response, nonce sent).
async fn code_flow(idp: &Idp, auth: ClientAuth, user: &DefaultUser) -> (Value, String) {
    let client_id = match auth {
        ClientAuth::Basic | ClientAuth::Post => CONFIDENTIAL,
        ClientAuth::Public => PUBLIC,
    };
    let request = authorization_request(idp, client_id);
    let back = idp
        .authorize(&request.url, user.username, user.password)
        .await;
    assert!(back.starts_with(REDIRECT_URI), "{back}");
    let params = query(&back);
    assert_eq!(params.get("state"), Some(&request.state), "{back}");
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {back}"));

    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", &request.verifier),
    ];
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut token_request = http.post(idp.url("/token"));
    match auth {
        ClientAuth::Basic => token_request = token_request.basic_auth(CONFIDENTIAL, Some(SECRET)),
        ClientAuth::Post => form.extend([("client_id", CONFIDENTIAL), ("client_secret", SECRET)]),
        ClientAuth::Public => form.push(("client_id", PUBLIC)),
    }
    let r = token_request.form(&form).send().await.unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "token endpoint ({auth:?}): {body}");
    (body, request.nonce)
}

fn id_token(tokens: &Value) -> &str {
    tokens["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {tokens}"))
}

/// Whether the JWKS has the key named by the token's `kid` and it verifies the signature.
fn signed_by(token: &str, jwks: &Value) -> bool {
    let set: CoreJsonWebKeySet = serde_json::from_value(jwks.clone()).unwrap();
    let (header, _) = decode_jwt(token);
    let Some(key) = set
        .keys()
        .iter()
        .find(|k| k.key_id().map(|id| id.as_str()) == header["kid"].as_str())
    else {
        return false;
    };
    let (input, signature) = token.rsplit_once('.').unwrap();
    key.verify_signature(
        &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        input.as_bytes(),
        &URL_SAFE_NO_PAD.decode(signature).unwrap(),
    )
    .is_ok()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_the_issuer_and_its_endpoints() {
    let started = std::time::Instant::now();
    let idp = Idp::start(&Idp::default_users()).await;
    eprintln!("IdP ready in {:?}", started.elapsed());
    assert!(
        idp.issuer.starts_with("http://127.0.0.1:"),
        "{}",
        idp.issuer
    );

    let doc: Value = reqwest::get(idp.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], idp.issuer.as_str());
    for (field, path) in [
        ("authorization_endpoint", "/auth"),
        ("token_endpoint", "/token"),
        ("jwks_uri", "/jwks"),
        ("userinfo_endpoint", "/me"),
    ] {
        assert_eq!(doc[field], idp.url(path).as_str(), "{field} in {doc}");
    }
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let scopes = doc["scopes_supported"].as_array().unwrap();
    for scope in ["openid", "profile", "email", "groups"] {
        assert!(scopes.contains(&scope.into()), "{scope} in {doc}");
    }
    assert_eq!(kids(&idp.jwks().await).len(), 1);

    // The broken discovery document names its own issuer but lacks two required endpoints.
    let broken = idp.broken_discovery_issuer();
    let doc: Value = reqwest::get(format!("{broken}/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], broken.as_str());
    assert!(doc["authorization_endpoint"].is_string(), "{doc}");
    assert!(doc.get("token_endpoint").is_none(), "{doc}");
    assert!(doc.get("jwks_uri").is_none(), "{doc}");

    // Dropping the handle ends the server.
    let discovery = idp.url("/.well-known/openid-configuration");
    drop(idp);
    assert!(reqwest::get(discovery).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_flow_with_pkce_for_confidential_and_public_clients() {
    let idp = idp_with_clients().await;
    let jwks = idp.jwks().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    for (auth, user) in [
        (ClientAuth::Basic, ALICE),
        (ClientAuth::Post, CAROL),
        (ClientAuth::Public, BOB),
    ] {
        let (tokens, nonce) = code_flow(&idp, auth, &user).await;
        let token = id_token(&tokens);
        let (header, claims) = decode_jwt(token);
        let client_id = match auth {
            ClientAuth::Public => PUBLIC,
            _ => CONFIDENTIAL,
        };
        assert_eq!(header["alg"], "RS256");
        assert!(signed_by(token, &jwks), "{auth:?}: {header}");
        assert_eq!(claims["iss"], idp.issuer.as_str());
        assert_eq!(claims["aud"], client_id, "{claims}");
        assert_eq!(claims["nonce"], nonce.as_str());
        // The scope claims are in the ID token itself, not only in userinfo.
        let expect = serde_json::json!({
            "sub": user.sub,
            "preferred_username": user.username,
            "email": user.email,
            "email_verified": true,
            "name": user.name,
            "groups": user.groups,
        });
        for (k, v) in expect.as_object().unwrap() {
            assert_eq!(&claims[k], v, "{auth:?} {k} in {claims}");
        }

        // The same claims from userinfo.
        let info: Value = http
            .get(idp.url("/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for (k, v) in expect.as_object().unwrap() {
            assert_eq!(&info[k], v, "{auth:?} userinfo {k} in {info}");
        }

        let last = idp.last_authorization().await;
        assert_eq!(last["client_id"], client_id);
        assert_eq!(last["code_challenge_method"], "S256");
        assert_eq!(last["nonce"], nonce.as_str());
        assert_eq!(last["scope"], "openid profile email groups");
        assert!(last["state"].is_string(), "{last}");
    }

    // Without PKCE the request is refused (sent back to the client with an error).
    let request = authorization_request(&idp, CONFIDENTIAL);
    let mut url = Url::parse(&request.url).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let back = idp
        .authorize(url.as_str(), ALICE.username, ALICE.password)
        .await;
    let params = query(&back);
    assert_eq!(
        params.get("error").map(String::as_str),
        Some("invalid_request"),
        "{back}"
    );
    assert!(!params.contains_key("code"), "{back}");

    // A wrong verifier does not get tokens.
    let request = authorization_request(&idp, PUBLIC);
    let back = idp
        .authorize(&request.url, ALICE.email, ALICE.password)
        .await;
    let code = query(&back)["code"].clone();
    let r = http
        .post(idp.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &random_b64()),
            ("client_id", PUBLIC),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

/// What an ID token checker would look at, true = as it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Checks {
    nonce: bool,
    audience: bool,
    issuer: bool,
    fresh: bool,
    signature: bool,
    /// No `azp`, or `azp` = the client.
    azp: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tamper_mode_changes_exactly_its_claim() {
    let idp = idp_with_clients().await;
    let all_good = Checks {
        nonce: true,
        audience: true,
        issuer: true,
        fresh: true,
        signature: true,
        azp: true,
    };
    // Nonce twice: a mode stays until changed.
    for mode in [
        Tamper::None,
        Tamper::Nonce,
        Tamper::Nonce,
        Tamper::Audience,
        Tamper::Issuer,
        Tamper::Expired,
        Tamper::UnknownKey,
        Tamper::Azp,
        Tamper::IatAhead(10 * 365 * 86_400),
        Tamper::CodeReuse,
        Tamper::BigToken,
        Tamper::BigUserinfo,
        Tamper::None,
    ] {
        idp.set_tamper(mode).await;
        let (tokens, nonce) = code_flow(&idp, ClientAuth::Basic, &ALICE).await;
        let token = id_token(&tokens);
        let (header, claims) = decode_jwt(token);
        let jwks = idp.jwks().await;
        let now = now();
        let checks = Checks {
            nonce: claims["nonce"] == nonce.as_str(),
            audience: claims["aud"] == CONFIDENTIAL,
            issuer: claims["iss"] == idp.issuer.as_str(),
            fresh: claims["exp"].as_i64().unwrap() > now
                && claims["iat"].as_i64().unwrap() <= now + 1,
            signature: signed_by(token, &jwks),
            azp: claims.get("azp").is_none_or(|a| a == CONFIDENTIAL),
        };
        let expected = match mode {
            Tamper::None => Checks { ..all_good },
            Tamper::Nonce => Checks {
                nonce: false,
                ..all_good
            },
            Tamper::Audience => Checks {
                audience: false,
                ..all_good
            },
            Tamper::Issuer => Checks {
                issuer: false,
                ..all_good
            },
            Tamper::Expired => Checks {
                fresh: false,
                ..all_good
            },
            Tamper::UnknownKey => Checks {
                signature: false,
                ..all_good
            },
            Tamper::Azp => Checks {
                azp: false,
                ..all_good
            },
            Tamper::IatAhead(_) => Checks {
                fresh: false,
                ..all_good
            },
            // These change answers, not the ID token.
            Tamper::CodeReuse
            | Tamper::BigDiscovery
            | Tamper::BigJwks
            | Tamper::BigToken
            | Tamper::BigUserinfo => all_good,
        };
        assert_eq!(checks, expected, "{mode:?}: {header} {claims}");
        match mode {
            Tamper::Audience => assert_eq!(claims["aud"], "someone-else"),
            Tamper::Issuer => assert_eq!(claims["iss"], "http://127.0.0.1:1/other"),
            Tamper::Expired => {
                let exp = claims["exp"].as_i64().unwrap();
                assert!((now - 3600 - 5..=now - 3600).contains(&exp), "{claims}");
                assert_eq!(claims["iat"].as_i64().unwrap(), exp - 3600);
            }
            Tamper::UnknownKey => {
                let kid = header["kid"].as_str().unwrap();
                assert!(!kids(&jwks).iter().any(|k| k == kid), "{kid} in {jwks}");
            }
            Tamper::Azp => {
                assert_eq!(claims["azp"], "someone-else");
                assert_eq!(claims["aud"], CONFIDENTIAL);
            }
            Tamper::IatAhead(seconds) => {
                let iat = claims["iat"].as_i64().unwrap();
                assert!(
                    (now + seconds - 5..=now + seconds).contains(&iat),
                    "{claims}"
                );
                assert!(claims["exp"].as_i64().unwrap() > iat, "{claims}");
            }
            _ => {}
        }
        // Everything else is left alone.
        assert_eq!(claims["sub"], ALICE.sub);
        assert_eq!(claims["email"], ALICE.email);
        assert_eq!(header["alg"], "RS256");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_published_and_signs_new_tokens() {
    let idp = idp_with_clients().await;
    let (tokens, _) = code_flow(&idp, ClientAuth::Basic, &ALICE).await;
    let (before, _) = decode_jwt(id_token(&tokens));
    let old_kid = before["kid"].as_str().unwrap().to_owned();
    assert_eq!(kids(&idp.jwks().await), std::slice::from_ref(&old_kid));

    let new_kid = idp.rotate_key().await;
    assert_ne!(new_kid, old_kid);
    let jwks = idp.jwks().await;
    let published = kids(&jwks);
    assert!(published.contains(&new_kid), "{jwks}");
    assert!(published.contains(&old_kid), "{jwks}");
    // The old token still verifies; a new one (same client, registered before) uses the new key.
    assert!(signed_by(id_token(&tokens), &jwks));
    let (tokens, _) = code_flow(&idp, ClientAuth::Public, &BOB).await;
    let (after, claims) = decode_jwt(id_token(&tokens));
    assert_eq!(after["kid"], new_kid.as_str(), "{claims}");
    assert!(signed_by(id_token(&tokens), &jwks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_at_the_idp_does_not_redirect_back() {
    let idp = idp_with_clients().await;
    let request = authorization_request(&idp, CONFIDENTIAL);
    for (login, password) in [
        (ALICE.username, BOB.password),
        ("nobody", ALICE.password),
        (ALICE.username, ""),
    ] {
        let err = idp
            .try_authorize(&request.url, login, password)
            .await
            .unwrap_err();
        assert!(err.contains("Invalid credentials"), "{login}: {err}");
    }
    // Username and email both work, case-insensitively; the same request can still succeed.
    for login in [ALICE.username, "ALICE@IDP.EXAMPLE.COM"] {
        let back = idp.authorize(&request.url, login, ALICE.password).await;
        assert!(query(&back).contains_key("code"), "{back}");
    }
}

/// The answers a careless or hostile provider gives: a code redeemed twice (`code_reuse`),
/// and endpoints whose answers weigh more than 2 MiB (`big_*`), each counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_reuse_counters_and_oversized_answers() {
    let idp = idp_with_clients().await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let redeem = |code: String, verifier: String| {
        let http = http.clone();
        let url = idp.url("/token");
        async move {
            http.post(url)
                .basic_auth(CONFIDENTIAL, Some(SECRET))
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT_URI),
                    ("code_verifier", &verifier),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let before = idp.counters().await;
    for (mode, second_redemption) in [(Tamper::None, 400), (Tamper::CodeReuse, 200)] {
        idp.set_tamper(mode).await;
        let request = authorization_request(&idp, CONFIDENTIAL);
        let back = idp
            .authorize(&request.url, ALICE.username, ALICE.password)
            .await;
        let code = query(&back)["code"].clone();
        assert_eq!(redeem(code.clone(), request.verifier.clone()).await, 200);
        assert_eq!(
            redeem(code, request.verifier).await,
            second_redemption,
            "{mode:?}"
        );
    }
    assert_eq!(idp.counters().await.token, before.token + 4);

    // Each big_* mode pads exactly its own endpoint; the others stay small.
    let size = |path: &'static str| {
        let http = http.clone();
        let url = idp.url(path);
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .len()
        }
    };
    for (mode, path) in [
        (Tamper::BigDiscovery, "/.well-known/openid-configuration"),
        (Tamper::BigJwks, "/jwks"),
    ] {
        idp.set_tamper(mode).await;
        for other in ["/.well-known/openid-configuration", "/jwks"] {
            let n = size(other).await;
            if other == path {
                assert!(n > 2 * 1024 * 1024, "{mode:?}: {other} has {n} bytes");
            } else {
                assert!(n < 64 * 1024, "{mode:?}: {other} has {n} bytes");
            }
        }
    }
    idp.set_tamper(Tamper::BigToken).await;
    let (tokens, _) = code_flow(&idp, ClientAuth::Basic, &ALICE).await;
    assert!(tokens.to_string().len() > 2 * 1024 * 1024);
    idp.set_tamper(Tamper::BigUserinfo).await;
    let (tokens, _) = code_flow(&idp, ClientAuth::Basic, &ALICE).await;
    assert!(tokens.to_string().len() < 64 * 1024);
    let info: Value = http
        .get(idp.url("/me"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(info.to_string().len() > 2 * 1024 * 1024);
    assert_eq!(info[USERINFO_ONLY_CLAIM], USERINFO_ONLY_VALUE);
    assert_eq!(info["sub"], ALICE.sub);
    let after = idp.counters().await;
    assert!(after.discovery >= before.discovery + 2, "{after:?}");
    assert!(after.userinfo > before.userinfo, "{after:?}");
}
