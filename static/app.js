// kvmgate dashboard: sign in, see who you are and the organisation's devices,
// sign out. Plain JavaScript, no build step. Text reaches the page only
// through textContent, never as HTML. The session cookie is HttpOnly: this
// script never sees it; it keeps the session's CSRF token in memory and
// sends it with every change (X-CSRF-Token).
'use strict';

const api = '/api/v1';
let csrf = '';

const $ = (id) => document.getElementById(id);

function show(id, on) { $(id).hidden = !on; }

function say(id, text) {
  $(id).textContent = text || '';
  show(id, Boolean(text));
}

// fetch() of the API: JSON in and out; returns {status, body}.
async function call(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(api + path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if (r.status !== 204) {
    try { data = await r.json(); } catch (e) { data = null; }
  }
  return { status: r.status, body: data };
}

function errorText(r) {
  const e = r.body && r.body.error;
  return e && e.message ? e.message : 'the gateway answered ' + r.status;
}

function signedOut(message) {
  csrf = '';
  show('who', false);
  show('app', false);
  show('signin', true);
  say('signin-error', message);
  $('password').value = '';
  $('username').focus();
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.appendChild(td);
  return td;
}

async function loadDevices() {
  const r = await call('GET', '/devices');
  if (r.status === 401) return signedOut('Your session has ended; sign in again.');
  if (r.status !== 200) return say('app-error', errorText(r));
  say('app-error', '');
  const tbody = $('devices').querySelector('tbody');
  tbody.replaceChildren();
  const devices = r.body.devices || [];
  for (const d of devices) {
    const tr = document.createElement('tr');
    tr.dataset.device = d.name;
    cell(tr, d.name);
    cell(tr, d.kind);
    const tags = cell(tr, '');
    for (const t of d.tags || []) {
      const s = document.createElement('span');
      s.className = 'tag';
      s.textContent = t;
      tags.appendChild(s);
    }
    cell(tr, d.enabled ? 'yes' : 'no');
    cell(tr, d.has_credentials ? 'set' : 'none');
    tbody.appendChild(tr);
  }
  show('devices', devices.length > 0);
  show('devices-empty', devices.length === 0);
}

function signedIn(s) {
  csrf = s.csrf_token;
  $('who-text').textContent = s.user + ' · ' + s.role + ' in ' + s.organisation;
  show('signin', false);
  say('signin-error', '');
  show('who', true);
  show('app', true);
  return loadDevices();
}

async function onSignIn(ev) {
  ev.preventDefault();
  const button = ev.target.querySelector('button');
  const body = { username: $('username').value, password: $('password').value };
  if ($('org').value.trim() !== '') body.org = $('org').value.trim();
  button.disabled = true;
  try {
    const r = await call('POST', '/session', body);
    $('password').value = '';
    if (r.status === 200) return await signedIn(r.body);
    if (r.status === 429) return say('signin-error', 'Too many failed sign-ins. ' + errorText(r));
    say('signin-error', errorText(r));
  } catch (e) {
    say('signin-error', 'The gateway cannot be reached.');
  } finally {
    button.disabled = false;
  }
}

async function onSignOut() {
  try { await call('DELETE', '/session'); } catch (e) { /* signed out locally anyway */ }
  signedOut('');
}

async function start() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('signout').addEventListener('click', onSignOut);
  try {
    const r = await call('GET', '/session');
    if (r.status === 200) return await signedIn(r.body);
  } catch (e) { /* not reachable: show the form */ }
  signedOut('');
}

document.addEventListener('DOMContentLoaded', start);
