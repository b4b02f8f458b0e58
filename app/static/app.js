// Notes Q&A chat page. No framework, no build step.
// Safety rule: data (questions, answers, notes) only ever goes in via textContent / text nodes.
'use strict';

const STRINGS = {
  zh: {
    title: '笔记问答', tagline: '从我的机器学习笔记里找答案，并给出出处',
    skip: '跳到提问框', conversation: '对话', clear: '清空对话',
    emptyLead: '关于这些笔记，想问点什么？', emptyHint: '可以试试：',
    examples: ['DDP 是怎么同步梯度的?', 'DDIM 和 DDPM 有什么关系?', 'gradient checkpointing 省显存的原理是什么?'],
    sources: '上一个回答的出处', sourcesEmpty: '提问后，这里会列出被引用的笔记。',
    sourcesNone: '上一个问题在笔记里没有找到相关内容。',
    questionLabel: '你的问题', placeholder: '向笔记提问…',
    send: '发送', hint: 'Enter 发送 · Shift+Enter 换行', close: '关闭',
    openNote: '打开整篇笔记 →', original: '原文链接', you: '你', bot: '笔记助手',
    loading: '正在翻阅笔记', notFound: '笔记里没有找到相关内容。',
    cite: (n, t) => `引用 ${n}：${t}`, untitled: '（无标题）',
    errServer: '服务器出错了', errNetwork: '连不上服务器，请确认服务已启动后重试。',
    errTimeout: '请求超时，请稍后重试。', errBad: '服务器返回了无法识别的内容。', retry: '重试',
    errStream: '回答中途断开了，请重试。',
    online: (p) => `在线 · ${p} 篇笔记`, offline: '服务离线', checking: '连接中…',
    modeExtractive: '摘录自笔记', modeLlm: '模型生成',
    fellBack: '生成式回答暂不可用，下面是笔记原文摘录。',
    provisional: '草稿：核对引用后会换成正式回答',
    keyTitle: '这个服务需要访问密钥', keyLabel: '访问密钥（NOTES_API_KEY）', keyCancel: '取消', keySave: '使用这个密钥',
    errKey: '需要正确的访问密钥才能提问。',
  },
  en: {
    title: 'Notes Q&A', tagline: 'Answers from my machine-learning notes, with sources',
    skip: 'Skip to question', conversation: 'Conversation', clear: 'Clear conversation',
    emptyLead: 'Ask anything about the notes.', emptyHint: 'Try one of these:',
    examples: ['How does DDP synchronize gradients?', 'How are DDIM and DDPM related?', 'How does gradient checkpointing save memory?'],
    sources: 'Sources of the last answer', sourcesEmpty: 'Cited notes will be listed here.',
    sourcesNone: 'The notes had nothing on the last question.',
    questionLabel: 'Your question', placeholder: 'Ask the notes…',
    send: 'Send', hint: 'Enter to send · Shift+Enter for a new line', close: 'Close',
    openNote: 'Open the whole note →', original: 'Original link', you: 'You', bot: 'Notes assistant',
    loading: 'Searching the notes', notFound: "The notes don't cover this.",
    cite: (n, t) => `Citation ${n}: ${t}`, untitled: '(untitled)',
    errServer: 'The server reported an error', errNetwork: 'Cannot reach the server. Check that it is running and try again.',
    errTimeout: 'The request timed out. Please try again.', errBad: 'The server sent a response I could not read.', retry: 'Retry',
    errStream: 'The answer was cut off. Please try again.',
    online: (p) => `Online · ${p} notes`, offline: 'Server offline', checking: 'Connecting…',
    modeExtractive: 'Quoted from the notes', modeLlm: 'Generated',
    fellBack: 'The generative answer was unavailable; these are quotes from the notes.',
    provisional: 'Draft: replaced once its citations are checked',
    keyTitle: 'This server needs its access key', keyLabel: 'Access key (NOTES_API_KEY)', keyCancel: 'Cancel',
    keySave: 'Use this key', errKey: 'A valid access key is needed to ask.',
  },
};

const LANG = /^zh/i.test(navigator.language || '') ? 'zh' : 'en';
const T = STRINGS[LANG];
const STORE_KEY = 'notes-qa-history';
const KEY_STORE = 'notes-qa-key'; // sessionStorage: the access key lives as long as the tab
const MAX_TURNS = 50;
const TIMEOUT_MS = 120000;
const MAX_HISTORY = 10; // turns sent with a question, oldest first
const MAX_CONTENT = 4000; // characters per history turn

const $ = (sel) => document.querySelector(sel);
const els = {
  scroller: $('#scroller'), messages: $('#messages'), empty: $('#empty'), examples: $('#examples'),
  form: $('#ask-form'), q: $('#question'), send: $('#send'), clear: $('#clear'), status: $('#status'),
  passage: $('#passage'), sources: $('#sources'),
};

/** @type {Array<{id:string,q:string,status:'ok'|'error',answer?:string,found?:boolean,citations?:Array,mode?:string,ms?:number,error?:string,warning?:string}>} */
let turns = [];
let busy = false;
let activeChip = null;

// ---------- small DOM helpers (text only) ----------
function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = String(text);
  return el;
}
const noteHref = (id) => '/posts/' + encodeURIComponent(String(id));
const safeUrl = (u) => (typeof u === 'string' && /^https?:\/\//i.test(u.trim()) ? u.trim() : null);
const str = (v) => (typeof v === 'string' ? v : v == null ? '' : String(v));

// ---------- i18n of static markup ----------
function applyStrings() {
  document.documentElement.lang = LANG === 'zh' ? 'zh-CN' : 'en';
  document.title = T.title;
  document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = T[el.dataset.i18n]; });
  document.querySelectorAll('[data-i18n-aria]').forEach((el) => el.setAttribute('aria-label', T[el.dataset.i18nAria]));
  document.querySelectorAll('[data-i18n-ph]').forEach((el) => el.setAttribute('placeholder', T[el.dataset.i18nPh]));
  els.messages.setAttribute('aria-label', T.conversation);
  for (const ex of T.examples) {
    const b = h('button', 'example', ex);
    b.type = 'button';
    b.addEventListener('click', () => { els.q.value = ex; autosize(); els.q.focus(); });
    els.examples.append(b);
  }
}

// ---------- persistence (data only, never HTML) ----------
function cleanCitation(c) {
  if (!c || typeof c !== 'object') return null;
  const n = Number(c.n);
  if (!Number.isInteger(n)) return null;
  return {
    n, post_id: str(c.post_id), title: str(c.title), url: safeUrl(c.url), snippet: str(c.snippet),
    score: typeof c.score === 'number' ? c.score : null, date: c.date == null ? null : str(c.date),
  };
}
function cleanTurn(t) {
  if (!t || typeof t !== 'object' || typeof t.q !== 'string') return null;
  return {
    id: str(t.id) || uid(), q: t.q, status: t.status === 'error' ? 'error' : 'ok',
    answer: str(t.answer), found: t.found !== false,
    citations: Array.isArray(t.citations) ? t.citations.map(cleanCitation).filter(Boolean) : [],
    mode: str(t.mode), ms: typeof t.ms === 'number' ? t.ms : null, error: str(t.error), warning: str(t.warning),
  };
}
function load() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
    return Array.isArray(raw) ? raw.map(cleanTurn).filter(Boolean).slice(-MAX_TURNS) : [];
  } catch { return []; }
}
function save() {
  turns = turns.slice(-MAX_TURNS);
  try { localStorage.setItem(STORE_KEY, JSON.stringify(turns)); } catch { /* storage full or disabled */ }
}
function uid() { return Date.now().toString(36) + Math.random().toString(36).slice(2, 7); }

// ---------- rendering ----------
function renderUser(turn) {
  const m = h('div', 'msg user');
  m.dataset.turn = turn.id;
  m.append(h('span', 'sr-only', T.you + ': '), h('div', 'bubble', turn.q));
  return m;
}

function renderLoading() {
  const m = h('div', 'msg loading');
  const b = h('div', 'bubble');
  b.append(h('span', 'loading-text', T.loading));
  const dots = h('span', 'dots');
  dots.setAttribute('aria-hidden', 'true');
  dots.append(h('i'), h('i'), h('i'));
  b.append(dots);
  m.append(b);
  return m;
}

/** Fill `container` with the answer text, turning known [n] markers into chip buttons. */
function renderAnswerText(container, turn) {
  container.textContent = '';
  const byN = new Map(turn.citations.map((c) => [c.n, c]));
  const parts = turn.answer.split(/\[(\d+)\]/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) { if (part) container.append(document.createTextNode(part)); return; }
    const c = byN.get(Number(part));
    if (!c) { container.append(document.createTextNode('[' + part + ']')); return; }
    const chip = h('button', 'chip', String(c.n));
    chip.type = 'button';
    chip.dataset.n = String(c.n);
    chip.dataset.turn = turn.id;
    chip.setAttribute('aria-label', T.cite(c.n, c.title || T.untitled));
    chip.setAttribute('aria-controls', 'passage');
    chip.setAttribute('aria-expanded', 'false');
    chip.title = c.title || '';
    container.append(chip);
  });
}

/** Build the bot (or error) message for a finished turn. A streaming renderer can call this repeatedly. */
function renderAnswer(turn) {
  if (turn.status === 'error') {
    const m = h('div', 'msg error');
    m.dataset.turn = turn.id;
    m.setAttribute('role', 'alert');
    const b = h('div', 'bubble');
    b.append(h('span', 'err-icon', '!'), h('span', 'err-text', turn.error || T.errServer));
    const retry = h('button', 'retry', T.retry);
    retry.type = 'button';
    retry.addEventListener('click', () => { if (!busy) ask(turn.q, turn); });
    b.append(retry);
    m.append(b);
    return m;
  }
  const m = h('div', turn.found ? 'msg bot' : 'msg bot not-found');
  m.dataset.turn = turn.id;
  m.append(h('span', 'sr-only', T.bot + ': '));
  const b = h('div', 'bubble');
  const p = h('p', 'answer');
  if (turn.found) renderAnswerText(p, turn);
  else p.textContent = turn.answer || T.notFound;
  b.append(p);
  if (turn.found && turn.mode) {
    const meta = [turn.mode === 'llm' ? T.modeLlm : T.modeExtractive];
    if (turn.ms != null) meta.push(turn.ms < 1000 ? Math.round(turn.ms) + ' ms' : (turn.ms / 1000).toFixed(1) + ' s');
    b.append(h('p', 'meta', meta.join(' · ')));
  }
  if (turn.warning) {
    // The server's reason is English; say it in the page's language and keep the reason as a tooltip.
    const w = h('p', 'warning', T.fellBack);
    w.title = turn.warning;
    b.append(w);
  }
  m.append(b);
  return m;
}

/** The bot message while a generative answer streams in: raw model text, plain text only, marked as a
 * draft: the server has not checked its citations yet, and its final answer replaces it. */
function renderStreaming() {
  const m = h('div', 'msg bot streaming');
  m.setAttribute('aria-busy', 'true');
  m.append(h('span', 'sr-only', T.bot + ': '));
  const b = h('div', 'bubble');
  b.append(h('p', 'answer'), h('p', 'provisional', T.provisional));
  m.append(b);
  return m;
}

function renderAll() {
  els.messages.textContent = '';
  for (const t of turns) els.messages.append(renderUser(t), renderAnswer(t));
  updateChrome();
  renderSources();
}

function updateChrome() {
  const hasAny = turns.length > 0 || busy;
  els.empty.hidden = hasAny;
  els.clear.disabled = turns.length === 0 || busy;
}

function renderSources() {
  const list = els.sources.querySelector('.sources-list');
  const empty = els.sources.querySelector('.sources-empty');
  list.textContent = '';
  const last = [...turns].reverse().find((t) => t.status === 'ok');
  const seen = new Map();
  for (const c of (last && last.citations) || []) {
    if (!seen.has(c.post_id)) seen.set(c.post_id, { c, ns: [] });
    seen.get(c.post_id).ns.push(c.n);
  }
  empty.textContent = last && !last.found ? T.sourcesNone : T.sourcesEmpty;
  empty.hidden = seen.size > 0;
  els.sources.classList.toggle('is-empty', seen.size === 0);
  for (const { c, ns } of seen.values()) {
    const li = h('li');
    const a = h('a', 'source-link', c.title || T.untitled);
    a.href = noteHref(c.post_id);
    a.target = '_blank';
    a.rel = 'noopener';
    li.append(h('span', 'source-ns', ns.map((n) => '[' + n + ']').join('')), a);
    if (c.date) li.append(h('span', 'source-date', c.date));
    list.append(li);
  }
}

// ---------- passage viewer ----------
function showPassage(chip) {
  const turn = turns.find((t) => t.id === chip.dataset.turn);
  const c = turn && turn.citations.find((x) => x.n === Number(chip.dataset.n));
  if (!c) return;
  const p = els.passage;
  p.querySelector('.passage-n').textContent = '[' + c.n + ']';
  p.querySelector('.passage-title').textContent = c.title || T.untitled;
  const d = p.querySelector('.passage-date');
  d.textContent = c.date || '';
  d.hidden = !c.date;
  p.querySelector('.passage-text').textContent = c.snippet;
  p.querySelector('.passage-link').href = noteHref(c.post_id);
  const src = p.querySelector('.passage-source');
  const url = safeUrl(c.url);
  src.hidden = !url;
  if (url) src.href = url; else src.removeAttribute('href');
  if (activeChip) { activeChip.classList.remove('active'); activeChip.setAttribute('aria-expanded', 'false'); }
  activeChip = chip;
  chip.classList.add('active');
  chip.setAttribute('aria-expanded', 'true');
  p.hidden = false;
  document.body.classList.add('passage-open');
  p.focus({ preventScroll: true });
  if (window.matchMedia('(min-width: 960px)').matches) p.scrollIntoView({ block: 'nearest' });
}
function hidePassage(refocus = true) {
  if (els.passage.hidden) return;
  els.passage.hidden = true;
  document.body.classList.remove('passage-open');
  if (activeChip) {
    activeChip.classList.remove('active');
    activeChip.setAttribute('aria-expanded', 'false');
    if (refocus && activeChip.isConnected) activeChip.focus({ preventScroll: true });
    activeChip = null;
  }
}

// ---------- asking ----------
function setBusy(on) {
  busy = on;
  els.q.disabled = on;
  els.send.disabled = on;
  els.form.setAttribute('aria-busy', on ? 'true' : 'false');
  updateChrome();
}

/** While text streams in, keep the bottom in view if the reader is already there (once per frame). */
let following = false;
function follow() {
  if (following) return;
  following = true;
  requestAnimationFrame(() => {
    following = false;
    const s = els.scroller;
    if (s.scrollHeight - s.scrollTop - s.clientHeight < 120) s.scrollTop = s.scrollHeight;
  });
}

function scrollToNewest(el) {
  const tall = el.offsetHeight > els.scroller.clientHeight * 0.8;
  el.scrollIntoView({ block: tall ? 'start' : 'end', behavior: 'smooth' });
}

async function errorFrom(res) {
  let msg = '';
  try {
    const data = await res.json();
    if (data && data.error && data.error.message) msg = str(data.error.message);
    else if (data && typeof data.detail === 'string') msg = data.detail;
    else if (data && Array.isArray(data.detail) && data.detail[0]) msg = str(data.detail[0].msg);
  } catch { /* not JSON */ }
  return `${T.errServer} (${res.status})${msg ? ': ' + msg : ''}`;
}

const clip = (s) => (s.length > MAX_CONTENT ? [...s].slice(0, MAX_CONTENT).join('') : s);

/** The conversation before `turn` as {role, content} turns for follow-up questions; error turns skipped. */
function historyBefore(turn) {
  const i = turns.indexOf(turn);
  const out = [];
  for (const t of i < 0 ? turns : turns.slice(0, i)) {
    if (t.status !== 'ok') continue;
    out.push({ role: 'user', content: clip(t.q) });
    const a = t.answer.replace(/\s*\[\d+\]/g, '').trim();
    if (a) out.push({ role: 'assistant', content: clip(a) });
  }
  return out.slice(-MAX_HISTORY);
}

// ---------- access key (servers that set NOTES_API_KEY) ----------
function authHeaders() {
  let key = null;
  try { key = sessionStorage.getItem(KEY_STORE); } catch { /* storage disabled */ }
  return key ? { Authorization: 'Bearer ' + key } : {};
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
      if (key) { try { sessionStorage.setItem(KEY_STORE, key); } catch { /* storage disabled */ } }
      resolve(Boolean(key));
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
}

/** A navigation carries no Authorization header: with a key, fetch the note and write it into the new tab. */
async function openNoteWithKey(e) {
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

async function post(path, payload, signal, accept) {
  const send = () => fetch(path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: accept, ...authHeaders() },
    body: JSON.stringify(payload), signal,
  });
  let res = await send();
  if (res.status === 401 && await askKey()) res = await send();
  if (res.status === 401) throw new Error(T.errKey);
  if (!res.ok) throw new Error(await errorFrom(res));
  return res;
}

/** Read POST /ask/stream: call onToken(text) per `token` event; return the `done` event's data. */
async function readStream(res, onToken) {
  if (!res.body) throw new Error(T.errBad);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let done = null;
  const frame = (raw) => {
    let event = 'message';
    const data = [];
    for (const line of raw.split('\n')) {
      if (!line || line[0] === ':') continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let val = i < 0 ? '' : line.slice(i + 1);
      if (val[0] === ' ') val = val.slice(1);
      if (field === 'event') event = val; else if (field === 'data') data.push(val);
    }
    if (!data.length) return;
    let obj;
    try { obj = JSON.parse(data.join('\n')); } catch { throw new Error(T.errBad); }
    if (event === 'done') done = obj;
    else if (event === 'token' && obj && typeof obj.text === 'string') onToken(obj.text);
  };
  for (;;) {
    const { value, done: end } = await reader.read();
    // Normalise line ends; a trailing \r waits for the next chunk (it may be half of \r\n).
    buf = (buf + (end ? dec.decode() : dec.decode(value, { stream: true }))).replace(end ? /\r\n?/g : /\r\n|\r(?!$)/g, '\n');
    let k;
    while (done === null && (k = buf.indexOf('\n\n')) >= 0) { frame(buf.slice(0, k)); buf = buf.slice(k + 2); }
    if (done === null && end && buf.trim()) frame(buf);
    if (done !== null) { if (!end) reader.cancel().catch(() => {}); return done; }
    if (end) throw new Error(T.errStream);
  }
}

/** Ask `question`. If `retryOf` is given (an error turn), it is replaced in place. */
async function ask(question, retryOf) {
  question = question.trim();
  if (!question || busy) return;
  hidePassage(false);
  let turn;
  if (retryOf) {
    turn = retryOf;
    const old = els.messages.querySelector(`.msg.error[data-turn="${CSS.escape(turn.id)}"]`);
    if (old) old.remove();
  } else {
    turn = { id: uid(), q: question, status: 'ok', answer: '', found: true, citations: [], mode: '', ms: null, error: '' };
    els.messages.append(renderUser(turn));
  }
  setBusy(true);
  const loading = renderLoading();
  let shown = loading; // the placeholder the final message replaces
  const anchor = els.messages.querySelector(`.msg.user[data-turn="${CSS.escape(turn.id)}"]`);
  if (anchor) anchor.after(loading); else els.messages.append(loading);
  scrollToNewest(loading);

  const t0 = performance.now();
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), TIMEOUT_MS);
  const payload = { question, top_k: 5, history: historyBefore(turn) };
  try {
    if (!health) await healthReady;
    let data;
    if (health && health.mode === 'llm') {
      const res = await post('/ask/stream', payload, ctrl.signal, 'text/event-stream, application/json');
      let live = null;
      data = await readStream(res, (piece) => {
        if (!live) { live = renderStreaming(); shown.replaceWith(live); shown = live; }
        live.querySelector('.answer').append(document.createTextNode(piece)); // plain text, never HTML
        follow();
      });
    } else {
      const res = await post('/ask', payload, ctrl.signal, 'application/json');
      try { data = await res.json(); } catch { throw new Error(T.errBad); }
    }
    if (!data || typeof data.answer !== 'string') throw new Error(T.errBad);
    const clean = cleanTurn({ ...data, q: question, id: turn.id, status: 'ok' });
    clean.ms = data.timings_ms && typeof data.timings_ms.total === 'number' ? data.timings_ms.total : Math.round(performance.now() - t0);
    Object.assign(turn, clean, { error: '' });
    setStatus('online');
  } catch (e) {
    const network = e instanceof TypeError;
    if (network) setStatus('offline');
    Object.assign(turn, {
      status: 'error', citations: [],
      error: e.name === 'AbortError' ? T.errTimeout : network ? T.errNetwork : str(e.message) || T.errServer,
    });
  } finally {
    clearTimeout(timer);
  }
  if (!turns.includes(turn)) turns.push(turn);
  save();
  const msg = renderAnswer(turn);
  shown.replaceWith(msg);
  setBusy(false);
  renderSources();
  if (!retryOf) { els.q.value = ''; autosize(); }
  els.q.focus({ preventScroll: true });
  scrollToNewest(msg);
}

// ---------- health ----------
let health = null;
let healthReady = Promise.resolve();
function setStatus(state) {
  const s = els.status;
  s.dataset.state = state;
  s.textContent = state === 'online' ? (health && health.posts != null ? T.online(health.posts) : T.online('?'))
    : state === 'offline' ? T.offline : T.checking;
}
async function checkHealth() {
  setStatus('unknown');
  try {
    const res = await fetch('/healthz', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error();
    health = await res.json();
    setStatus('online');
  } catch { setStatus('offline'); }
}

// ---------- input ----------
function autosize() {
  const q = els.q;
  q.style.height = 'auto';
  q.style.height = Math.min(q.scrollHeight + 2, 200) + 'px';
}

function init() {
  applyStrings();
  turns = load();
  renderAll();
  if (turns.length) requestAnimationFrame(() => { const last = els.messages.lastElementChild; if (last) last.scrollIntoView({ block: 'end' }); });

  els.form.addEventListener('submit', (e) => { e.preventDefault(); ask(els.q.value); });
  els.q.addEventListener('keydown', (e) => {
    // Enter sends; Shift+Enter adds a line; never send while an IME is composing (Chinese input).
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      ask(els.q.value);
    }
  });
  els.q.addEventListener('input', autosize);
  els.messages.addEventListener('click', (e) => {
    const chip = e.target.closest('button.chip');
    if (!chip) return;
    if (chip === activeChip && !els.passage.hidden) hidePassage(); else showPassage(chip);
  });
  $('#passage-close').addEventListener('click', () => hidePassage());
  $('#key-cancel').addEventListener('click', () => $('#key-dialog').close('cancel'));
  document.addEventListener('click', openNoteWithKey);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hidePassage(); });
  els.clear.addEventListener('click', () => {
    if (busy) return;
    turns = [];
    save();
    hidePassage(false);
    renderAll();
    els.q.focus();
  });
  healthReady = checkHealth();
  els.q.focus({ preventScroll: true });
}

init();
