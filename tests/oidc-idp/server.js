// A real OpenID provider (npm `oidc-provider` 8.x) for Hallpass's integration tests.
//
// Started by tests/http/support/idp.rs as `node server.js` with a JSON configuration in the
// environment variable IDP_CONFIG:
//
//   {"users": [{"sub": "<uuid>", "username": "alice", "email": "alice@example.com",
//               "name": "Alice", "password": "...", "groups": ["admins"]}],
//    "clients": [ same shape as POST /__test/clients, optional ],
//    "tls": {"cert": "<PEM file>", "key": "<PEM file>"} (optional: https, issuer https://…)}
//
// Listens on 127.0.0.1 on a random port and prints exactly one line `READY <issuer>` on stdout
// once it accepts requests. Exits when its stdin closes, so a test process that dies never
// leaves it behind.
//
// Everything it serves is local: the login form, error and logout pages load nothing from
// elsewhere. Test controls live under /__test/ (listed above `handleTest`).

import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import {
  CompactSign, decodeProtectedHeader, exportJWK, generateKeyPair,
} from 'jose';

const config = JSON.parse(process.env.IDP_CONFIG || '{}');
const users = (config.users || []).map((u) => ({ groups: [], ...u }));

// ---------------------------------------------------------------------------------------------
// Signing keys. Newest first: oidc-provider signs with the first key that fits RS256.

async function newSigningKey(prefix) {
  const { privateKey } = await generateKeyPair('RS256', { modulusLength: 2048, extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = `${prefix}-${randomBytes(6).toString('hex')}`;
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  return { jwk, privateKey };
}

const signingKeys = [await newSigningKey('k1')];
let unknownKey; // made when tamper mode `unknown_key` is set; never published
const cookieKeys = [randomBytes(32).toString('hex')];

// ---------------------------------------------------------------------------------------------
// In-memory adapter shared by every Provider instance (rotate-key builds a new one), so that
// sessions, codes, grants and the clients registered at run time survive a key rotation.

const storage = new Map();
const grantable = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
]);
const epochNow = () => Math.floor(Date.now() / 1000);

function load(key) {
  const entry = storage.get(key);
  if (!entry) return undefined;
  if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
    storage.delete(key);
    return undefined;
  }
  return entry.value;
}

function store(key, value, expiresIn) {
  storage.set(key, { value, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
}

class MemoryAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    if (this.model === 'Session') store(`sessionUid:${payload.uid}`, id, expiresIn);
    if (grantable.has(this.model) && payload.grantId) {
      const grantKey = `grant:${payload.grantId}`;
      const members = load(grantKey) || [];
      members.push(this.key(id));
      store(grantKey, members, expiresIn);
    }
    if (payload.userCode) store(`userCode:${payload.userCode}`, id, expiresIn);
    store(this.key(id), payload, expiresIn);
  }

  async find(id) {
    return load(this.key(id));
  }

  async findByUid(uid) {
    const id = load(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = load(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    // Tamper mode `code_reuse`: a careless provider that accepts a code more than once.
    if (tamperMode === 'code_reuse' && this.model === 'AuthorizationCode') return;
    const value = load(this.key(id));
    if (value) value.consumed = epochNow();
  }

  async destroy(id) {
    storage.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    const grantKey = `grant:${grantId}`;
    (load(grantKey) || []).forEach((key) => storage.delete(key));
    storage.delete(grantKey);
  }
}

// ---------------------------------------------------------------------------------------------
// Pages: no external fonts, CSS or scripts.

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body>
<h1>${esc(title)}</h1>
${body}
</body>
</html>
`;
}

function loginPage(uid, clientId, error) {
  return page('Test IdP sign-in', `<p>Client: <code>${esc(clientId)}</code></p>
${error ? `<p class="error" role="alert">${esc(error)}</p>\n` : ''}<form method="post" action="/interaction/${esc(uid)}/login">
<label>Username or email <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>`);
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Test IdP error', Object.entries(out)
    .map(([k, v]) => `<p><strong>${esc(k)}</strong>: <span class="${esc(k)}">${esc(v)}</span></p>`)
    .join('\n'));
}

async function logoutSource(ctx, form) {
  ctx.body = page('Sign out of the test IdP?', `${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.body = page('Signed out', '<p>You are signed out of the test IdP.</p>');
}

// ---------------------------------------------------------------------------------------------
// Accounts

function findUser(login) {
  const l = String(login || '').toLowerCase();
  return users.find((u) => u.username.toLowerCase() === l || u.email.toLowerCase() === l);
}

async function findAccount(ctx, sub) {
  const user = users.find((u) => u.sub === sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      return {
        sub,
        preferred_username: user.username,
        name: user.name,
        email: user.email,
        email_verified: true,
        groups: [...user.groups],
      };
    },
  };
}

// Consent is implied: every requested scope and claim is granted without a consent screen.
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const { accountId } = oidc.account;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId || grant.clientId !== clientId) {
    grant = new oidc.provider.Grant({ accountId, clientId });
  }
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  grant.addOIDCClaims([...oidc.requestParamClaims]);
  await grant.save();
  return grant;
}

// ---------------------------------------------------------------------------------------------
// Clients, registered at run time through POST /__test/clients.

const clientAdapter = new MemoryAdapter('Client');

function clientMetadata(body) {
  const { client_id: clientId, client_secret: secret, redirect_uris: redirectUris } = body || {};
  if (typeof clientId !== 'string' || !clientId) throw new Error('client_id (string) is required');
  if (!Array.isArray(redirectUris) || !redirectUris.length) throw new Error('redirect_uris (non-empty array) is required');
  const metadata = {
    client_id: clientId,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    // oidc-provider 8 accepts client_secret_post too for a client registered with
    // client_secret_basic (they share one secret check).
    token_endpoint_auth_method: secret ? 'client_secret_basic' : 'none',
  };
  if (secret) metadata.client_secret = secret;
  if (Array.isArray(body.post_logout_redirect_uris)) {
    metadata.post_logout_redirect_uris = body.post_logout_redirect_uris;
  }
  return metadata;
}

async function registerClient(body) {
  const metadata = clientMetadata(body);
  const previous = await clientAdapter.find(metadata.client_id);
  await clientAdapter.upsert(metadata.client_id, metadata);
  try {
    await current.provider.Client.find(metadata.client_id); // validates the metadata
  } catch (err) {
    if (previous) await clientAdapter.upsert(metadata.client_id, previous);
    else await clientAdapter.destroy(metadata.client_id);
    throw new Error(`invalid client metadata: ${err.error_description || err.message}`);
  }
  return metadata;
}

// ---------------------------------------------------------------------------------------------
// Test controls kept across provider instances.

const TAMPER_MODES = new Set([
  'none', 'nonce', 'audience', 'issuer', 'expired', 'unknown_key',
  'azp', 'iat_ahead', 'code_reuse',
  'big_discovery', 'big_jwks', 'big_token', 'big_userinfo',
]);
let tamperMode = 'none';
let tamperSeconds = 0; // for `iat_ahead`
let lastAuthorization = null;
// Requests per endpoint since start-up (GET /__test/counters).
const counters = { discovery: 0, jwks: 0, token: 0, userinfo: 0 };
const COUNTED = {
  '/.well-known/openid-configuration': 'discovery', '/jwks': 'jwks', '/token': 'token', '/me': 'userinfo',
};
// The `big_*` modes add this much padding to their endpoint's JSON answer: 2 MiB, twice the
// cap Hallpass puts on provider answers.
const BIG_PADDING = 2 * 1024 * 1024;
const BIG_ENDPOINTS = {
  big_discovery: '/.well-known/openid-configuration',
  big_jwks: '/jwks',
  big_token: '/token',
  big_userinfo: '/me',
};
// A claim only the oversized userinfo answer carries (mode `big_userinfo`).
const USERINFO_ONLY_CLAIM = 'userinfo_email';
const USERINFO_ONLY_VALUE = 'oversized@idp.example.com';

const b64json = (part) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

async function tamper(idToken) {
  const [, payloadPart] = idToken.split('.');
  const header = decodeProtectedHeader(idToken);
  const claims = b64json(payloadPart);
  const now = epochNow();
  let key = signingKeys[0];
  switch (tamperMode) {
    case 'nonce': claims.nonce = `${claims.nonce ?? ''}-tampered`; break;
    case 'audience': claims.aud = 'someone-else'; break;
    case 'issuer': claims.iss = 'http://127.0.0.1:1/other'; break;
    case 'expired': claims.exp = now - 3600; claims.iat = now - 7200; break;
    case 'unknown_key': key = unknownKey; break;
    case 'azp': claims.azp = 'someone-else'; break;
    case 'iat_ahead':
      claims.iat = now + tamperSeconds;
      claims.exp = Math.max(claims.exp, claims.iat + 3600);
      break;
    default: return idToken;
  }
  return new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader({ ...header, alg: 'RS256', kid: key.jwk.kid })
    .sign(key.privateKey);
}

// ---------------------------------------------------------------------------------------------
// The provider. Rebuilt (same issuer, adapter, cookie keys) when the signing keys change.

let issuer;
let current; // { provider, callback }

function makeProvider() {
  const provider = new Provider(issuer, {
    adapter: MemoryAdapter,
    jwks: { keys: signingKeys.map(({ jwk }) => jwk) },
    cookies: { keys: cookieKeys },
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Put the scope-requested claims in the ID token too, not only in userinfo.
    conformIdTokenClaims: false,
    responseTypes: ['code'],
    pkce: { methods: ['S256'], required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 60,
      ClientCredentials: 600,
      Grant: 86400,
      IdToken: 3600,
      Interaction: 3600,
      RefreshToken: 86400,
      Session: 86400,
    },
    findAccount,
    loadExistingGrant,
    renderError,
  });

  // Record the last authorization request (GET query, or POST form parameters).
  provider.use(async (ctx, next) => {
    if (ctx.method === 'GET' && ctx.path === '/auth') lastAuthorization = { ...ctx.query };
    await next();
    if (ctx.method === 'POST' && ctx.path === '/auth' && ctx.oidc?.params) {
      lastAuthorization = Object.fromEntries(
        Object.entries(ctx.oidc.params).filter(([, v]) => v !== undefined),
      );
    }
  });

  // Count requests per endpoint.
  provider.use(async (ctx, next) => {
    const counted = COUNTED[ctx.path];
    if (counted) counters[counted] += 1;
    await next();
  });

  // Tamper with the ID token in token endpoint responses.
  provider.use(async (ctx, next) => {
    await next();
    if (tamperMode !== 'none' && ctx.method === 'POST' && ctx.path === '/token'
        && ctx.status === 200 && typeof ctx.body?.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: await tamper(ctx.body.id_token) };
    }
  });

  // The `big_*` modes: the endpoint's JSON answer grows past 2 MiB (same content otherwise).
  provider.use(async (ctx, next) => {
    await next();
    if (BIG_ENDPOINTS[tamperMode] !== ctx.path || ctx.status !== 200) return;
    let { body } = ctx;
    if (Buffer.isBuffer(body) || typeof body === 'string') body = JSON.parse(body.toString());
    const extra = tamperMode === 'big_userinfo' ? { [USERINFO_ONLY_CLAIM]: USERINFO_ONLY_VALUE } : {};
    ctx.body = { ...body, ...extra, padding: 'x'.repeat(BIG_PADDING) };
  });

  ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'end_session.error']
    .forEach((event) => provider.on(event, (ctx, err) => {
      const detail = [err.error_description, err.error_detail].filter(Boolean).join(': ');
      console.error(`idp ${event}: ${err.message}${detail ? ` (${detail})` : ''}`);
    }));

  return { provider, callback: provider.callback() };
}

// ---------------------------------------------------------------------------------------------
// Plain node request handling around the provider.

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1 << 20) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

const json = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value));
const html = (res, status, body) => send(res, status, 'text/html; charset=utf-8', body);

async function readJson(req) {
  const text = await readBody(req);
  return text ? JSON.parse(text) : {};
}

// /__test/ endpoints:
//   POST /__test/clients        {client_id, client_secret?, redirect_uris, post_logout_redirect_uris?}
//   POST /__test/tamper         {mode: none|nonce|audience|issuer|expired|unknown_key|azp|
//                                       iat_ahead|code_reuse|big_discovery|big_jwks|big_token|
//                                       big_userinfo, seconds?: for iat_ahead}
//   GET  /__test/counters       -> {discovery, jwks, token, userinfo}: requests since start-up
//   POST /__test/rotate-key     -> {kid}: new signing key, old one stays in the JWKS
//   GET  /__test/last-authorization -> query parameters of the last authorization request
//   GET  /__test/broken-discovery/.well-known/openid-configuration (no token_endpoint, jwks_uri)
async function handleTest(req, res, path) {
  if (req.method === 'POST' && path === '/__test/clients') {
    try {
      return json(res, 201, await registerClient(await readJson(req)));
    } catch (err) {
      return json(res, 400, { error: err.message });
    }
  }
  if (req.method === 'POST' && path === '/__test/tamper') {
    const { mode, seconds } = await readJson(req);
    if (!TAMPER_MODES.has(mode)) return json(res, 400, { error: `unknown mode ${mode}` });
    if (mode === 'unknown_key') unknownKey = await newSigningKey('unknown');
    tamperMode = mode;
    tamperSeconds = Number.isInteger(seconds) ? seconds : 0;
    return json(res, 200, { mode });
  }
  if (req.method === 'GET' && path === '/__test/counters') {
    return json(res, 200, counters);
  }
  if (req.method === 'POST' && path === '/__test/rotate-key') {
    signingKeys.unshift(await newSigningKey(`k${signingKeys.length + 1}`));
    current = makeProvider();
    return json(res, 200, { kid: signingKeys[0].jwk.kid });
  }
  if (req.method === 'GET' && path === '/__test/last-authorization') {
    return json(res, 200, lastAuthorization);
  }
  if (req.method === 'GET' && path === '/__test/broken-discovery/.well-known/openid-configuration') {
    return json(res, 200, {
      issuer: `${issuer}/__test/broken-discovery`,
      authorization_endpoint: `${issuer}/auth`,
      userinfo_endpoint: `${issuer}/me`,
      response_types_supported: ['code'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      scopes_supported: ['openid', 'profile', 'email', 'groups'],
    });
  }
  return json(res, 404, { error: 'no such test endpoint' });
}

async function handleInteraction(req, res, path) {
  const { provider } = current;
  const [, , uid, action] = path.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return html(res, 400, page('Test IdP error', '<p>interaction mismatch</p>'));
  const clientId = details.params.client_id;

  if (req.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') return html(res, 200, loginPage(uid, clientId));
    if (details.prompt.name === 'consent') {
      // Consent is granted automatically (normally loadExistingGrant already did it).
      const { prompt: { details: missing }, session: { accountId } } = details;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId });
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      Object.entries(missing.missingResourceScopes || {}).forEach(([indicator, scopes]) => {
        grant.addResourceScope(indicator, scopes.join(' '));
      });
      const grantId = await grant.save();
      const consent = details.grantId ? {} : { grantId };
      return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    }
    return html(res, 400, page('Test IdP error', `<p>unsupported prompt ${esc(details.prompt.name)}</p>`));
  }

  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const user = findUser(form.get('login'));
    if (!user || user.password !== form.get('password')) {
      return html(res, 200, loginPage(uid, clientId, 'Invalid credentials'));
    }
    return provider.interactionFinished(
      req,
      res,
      { login: { accountId: user.sub } },
      { mergeWithLastSubmission: false },
    );
  }
  return html(res, 404, page('Test IdP error', '<p>not found</p>'));
}

async function handle(req, res) {
  const path = new URL(req.url, issuer).pathname;
  try {
    if (path.startsWith('/__test/')) return await handleTest(req, res, path);
    if (path.startsWith('/interaction/')) return await handleInteraction(req, res, path);
  } catch (err) {
    console.error(`idp ${req.method} ${path}: ${err.stack || err}`);
    if (!res.headersSent) {
      return html(res, err.statusCode || 500, page('Test IdP error', `<p>${esc(err.error_description || err.message)}</p>`));
    }
    return res.end();
  }
  return current.callback(req, res);
}

// ---------------------------------------------------------------------------------------------

const server = config.tls
  ? https.createServer(
    { cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) },
    (req, res) => { handle(req, res); },
  )
  : http.createServer((req, res) => { handle(req, res); });
server.listen(0, '127.0.0.1', async () => {
  issuer = `${config.tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;
  current = makeProvider();
  for (const client of config.clients || []) {
    await registerClient(client);
  }
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown() {
  server.close();
  process.exit(0);
}
process.stdin.on('end', shutdown);
process.stdin.on('close', shutdown);
process.stdin.resume();
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
