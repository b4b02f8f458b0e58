// Talking to the server: the access key, POST with JSON, GET of JSON, and /healthz.
import { T } from './strings.js';
import { $, els, str } from './dom.js';
import { getKey, setKey } from './storage.js';

/** What /healthz said last (null until it answered), and the promise of its first answer. */
export const server = { health: null, ready: Promise.resolve() };

export function authHeaders() {
  const key = getKey();
  return key ? { Authorization: 'Bearer ' + key } : {};
}

/** "The server reported an error (422): <its message>"; every error of ours is {"error": {"code", "message"}}. */
export async function errorFrom(res) {
  let msg = '';
  try { msg = str((await res.json()).error.message); } catch { /* not JSON, or not ours */ }
  return `${T.errServer} (${res.status})${msg ? ': ' + msg : ''}`;
}

/** Ask the reader for the server's access key; resolves true when one was given. */
function askKey() {
  const dialog = $('#key-dialog');
  const input = $('#key-input');
  input.value = '';
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      const key = dialog.returnValue === 'ok' ? input.value.trim() : '';
      if (key) setKey(key);
      resolve(Boolean(key));
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}

/** A request with the key; on 401 the reader is asked for the key once and the request sent again. */
async function send(path, init) {
  const go = () => fetch(path, { ...init, headers: { ...init.headers, ...authHeaders() } });
  let res = await go();
  if (res.status === 401 && await askKey()) res = await go();
  if (res.status === 401) throw new Error(T.errKey);
  if (!res.ok) throw new Error(await errorFrom(res));
  return res;
}

export const post = (path, payload, signal, accept) => send(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json', Accept: accept }, body: JSON.stringify(payload), signal,
});

export async function getJSON(path) {
  const res = await send(path, { headers: { Accept: 'application/json' } });
  return res.json();
}

/** A navigation carries no Authorization header: with a key, fetch the note and write it into the new tab. */
export async function openNoteWithKey(e) {
  const a = e.target.closest('a.passage-link, a.source-link');
  const auth = authHeaders();
  if (!a || !auth.Authorization) return;
  e.preventDefault();
  const w = window.open('', '_blank');
  if (!w) return;
  try {
    const res = await fetch(a.getAttribute('href'), { headers: { Accept: 'text/html', ...auth } });
    if (!res.ok) throw new Error(await errorFrom(res));
    const html = await res.text();
    w.document.open();
    w.document.write(html); // the server's escaped note page, the same bytes a navigation would get
    w.document.close();
  } catch (err) {
    w.document.body.textContent = str(err.message) || T.errServer;
  }
}

export function setStatus(state) {
  const s = els.status;
  const health = server.health;
  s.dataset.state = state;
  s.textContent = state === 'online' ? T.online(health && health.posts != null ? health.posts : '?')
    : state === 'offline' ? T.offline : T.checking;
}

export function checkHealth() {
  setStatus('unknown');
  server.ready = (async () => {
    try {
      const res = await fetch('/healthz', { headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error();
      server.health = await res.json();
      setStatus('online');
    } catch { setStatus('offline'); }
  })();
  return server.ready;
}
