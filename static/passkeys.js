// Hallpass passkeys: the browser's half of a WebAuthn ceremony, hand-written, no build step.
//
// A form marked data-passkey="sign-in" | "second-factor" | "register" gets the challenge
// from its data-options URL (POST, with the form's CSRF token in X-CSRF-Token), lets the
// authenticator answer, puts the answer (JSON, binary fields in base64url) into the form's
// hidden "credential" field and submits the form: the server answers as for any form (a
// redirect, or the page again with the message). Without JavaScript, or in a browser without
// WebAuthn, these forms stay hidden and the page offers the password form or a code instead.
//
// The invite sign-up is one form with a second submit button (data-passkey-signup: its
// options URL; formaction: where the answer goes). Its options call carries the username,
// email and passkey name, so the server checks them and the link before the authenticator
// makes anything; the answer then goes with the same fields (never the password fields).
(function () {
  'use strict';

  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  function decode(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
    const bin = atob(padded);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) {
      bytes[i] = bin.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function encode(buffer) {
    const bytes = new Uint8Array(buffer);
    let bin = '';
    for (let i = 0; i < bytes.length; i += 1) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(pk) {
    pk.challenge = decode(pk.challenge);
    pk.user.id = decode(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  function requestOptions(pk) {
    pk.challenge = decode(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return pk;
  }

  function registrationAnswer(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: encode(r.attestationObject),
        clientDataJSON: encode(r.clientDataJSON),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : undefined
      },
      extensions: {}
    };
  }

  function assertionAnswer(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: encode(r.authenticatorData),
        clientDataJSON: encode(r.clientDataJSON),
        signature: encode(r.signature),
        userHandle: r.userHandle ? encode(r.userHandle) : null
      },
      extensions: {}
    };
  }

  // What a person reads when the browser or the authenticator said no.
  function explain(err) {
    if (err && err.name === 'NotAllowedError') {
      return 'The passkey request was cancelled or timed out. Try again.';
    }
    if (err && err.name === 'InvalidStateError') {
      return 'This authenticator holds a passkey of this account already.';
    }
    if (err && err.name === 'SecurityError') {
      return 'The browser refused passkeys for this address (it must be the server\'s public address, over https).';
    }
    return (err && err.message) || 'The passkey request failed. Try again.';
  }

  async function ceremony(form) {
    const kind = form.dataset.passkey;
    const token = form.querySelector('input[name="csrf_token"]').value;
    const answer = await fetch(form.dataset.options, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': token, Accept: 'application/json' }
    });
    const body = await answer.json();
    if (!answer.ok) {
      throw new Error((body.error && body.error.message) || 'The server refused to start.');
    }
    if (kind === 'register') {
      const cred = await navigator.credentials.create({ publicKey: creationOptions(body.publicKey) });
      return registrationAnswer(cred);
    }
    const cred = await navigator.credentials.get({ publicKey: requestOptions(body.publicKey) });
    return assertionAnswer(cred);
  }

  function wire(form) {
    const status = form.querySelector('.passkey-status');
    const button = form.querySelector('button[type="submit"]');
    form.hidden = false;
    if (button) {
      button.hidden = false;
    }
    form.querySelectorAll('.passkey-nojs').forEach(function (n) { n.hidden = true; });
    form.addEventListener('submit', async function (event) {
      event.preventDefault();
      if (form.dataset.passkey === 'register' && !form.reportValidity()) {
        return;
      }
      if (button) {
        button.disabled = true;
      }
      if (status) {
        status.textContent = 'Waiting for your passkey…';
      }
      try {
        const answer = await ceremony(form);
        form.querySelector('input[name="credential"]').value = JSON.stringify(answer);
        form.submit();
      } catch (err) {
        if (status) {
          status.textContent = explain(err);
        }
        if (button) {
          button.disabled = false;
        }
      }
    });
  }

  // The fields a passkey sign-up sends (url-encoded, as a form would).
  function signUpFields(form) {
    const body = new URLSearchParams();
    ['csrf_token', 'username', 'email', 'passkey_name'].forEach(function (name) {
      const input = form.elements.namedItem(name);
      if (input) {
        body.append(name, input.value);
      }
    });
    return body;
  }

  async function signUpCeremony(form, button) {
    const answer = await fetch(button.dataset.passkeySignup, {
      method: 'POST',
      credentials: 'same-origin',
      headers: {
        'X-CSRF-Token': form.elements.namedItem('csrf_token').value,
        'Content-Type': 'application/x-www-form-urlencoded',
        Accept: 'application/json'
      },
      body: signUpFields(form)
    });
    const body = await answer.json().catch(function () { return {}; });
    if (!answer.ok) {
      throw new Error((body.error && body.error.message) || 'The server refused to start. Reload the page and try again.');
    }
    const cred = await navigator.credentials.create({ publicKey: creationOptions(body.publicKey) });
    return registrationAnswer(cred);
  }

  function wireSignUp(button) {
    const form = button.form;
    const status = form.querySelector('.passkey-status');
    const section = button.closest('[hidden]');
    if (section) {
      section.hidden = false;
    }
    form.querySelectorAll('.passkey-nojs').forEach(function (n) { n.hidden = true; });
    // Back to this page from the browser's cache: the password fields usable again.
    window.addEventListener('pageshow', function () {
      form.querySelectorAll('input[type="password"]').forEach(function (i) { i.disabled = false; });
      button.disabled = false;
    });
    button.addEventListener('click', async function (event) {
      event.preventDefault();
      button.disabled = true;
      status.textContent = 'Waiting for your passkey…';
      try {
        const answer = await signUpCeremony(form, button);
        form.elements.namedItem('credential').value = JSON.stringify(answer);
        form.querySelectorAll('input[type="password"]').forEach(function (i) { i.disabled = true; });
        button.disabled = false;
        form.requestSubmit(button);
      } catch (err) {
        status.textContent = explain(err);
        button.disabled = false;
      }
    });
  }

  document.querySelectorAll('form[data-passkey]').forEach(wire);
  document.querySelectorAll('button[data-passkey-signup]').forEach(wireSignUp);
})();
