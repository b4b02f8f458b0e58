// Notes Q&A chat page: asking, and wiring the page together. ES modules, no framework, no build step.
import { LANG, T } from './strings.js';
import { $, els, h, state, str } from './dom.js';
import { cleanTurn, load, save } from './storage.js';
import { renderAll, renderAnswer, renderLoading, renderSources, renderStreaming, renderUser, updateChrome } from './render.js';
import { hidePassage, isOpen, showPassage } from './passage.js';
import { readStream } from './sse.js';
import { checkHealth, openNoteWithKey, post, server, setStatus } from './net.js';
import { currentFilters, initFilters } from './filters.js';
import { download } from './export.js';

const TIMEOUT_MS = 120000;
const MAX_HISTORY = 10; // turns sent with a question, oldest first
const MAX_CONTENT = 4000; // characters per history turn

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

function setBusy(on) {
  state.busy = on;
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

const clip = (s) => (s.length > MAX_CONTENT ? [...s].slice(0, MAX_CONTENT).join('') : s);

/** The conversation before `turn` as {role, content} turns for follow-up questions; error turns skipped. */
function historyBefore(turn) {
  const i = state.turns.indexOf(turn);
  const out = [];
  for (const t of i < 0 ? state.turns : state.turns.slice(0, i)) {
    if (t.status !== 'ok') continue;
    out.push({ role: 'user', content: clip(t.q) });
    const a = t.answer.replace(/\s*\[\d+\]/g, '').trim();
    if (a) out.push({ role: 'assistant', content: clip(a) });
  }
  return out.slice(-MAX_HISTORY);
}

const retry = (turn) => { if (!state.busy) ask(turn.q, turn); };

/** Ask `question`. If `retryOf` is given (an error turn), it is replaced in place, with its filters. */
async function ask(question, retryOf) {
  question = question.trim();
  if (!question || state.busy) return;
  hidePassage(false);
  let turn;
  if (retryOf) {
    turn = retryOf;
    const old = els.messages.querySelector(`.msg.error[data-turn="${CSS.escape(turn.id)}"]`);
    if (old) old.remove();
  } else {
    turn = { ...cleanTurn({ q: question }), filters: currentFilters() };
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
  if (turn.filters) payload.filters = turn.filters;
  try {
    if (!server.health) await server.ready;
    let data;
    if (server.health && server.health.mode === 'llm') {
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
    const clean = cleanTurn({ ...data, q: question, id: turn.id, status: 'ok', filters: turn.filters });
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
  if (!state.turns.includes(turn)) state.turns.push(turn);
  state.turns = save(state.turns);
  const msg = renderAnswer(turn, retry);
  shown.replaceWith(msg);
  setBusy(false);
  renderSources();
  if (!retryOf) { els.q.value = ''; autosize(); }
  els.q.focus({ preventScroll: true });
  scrollToNewest(msg);
}

function autosize() {
  const q = els.q;
  q.style.height = 'auto';
  q.style.height = Math.min(q.scrollHeight + 2, 200) + 'px';
}

function init() {
  applyStrings();
  state.turns = load();
  renderAll(retry);
  if (state.turns.length) requestAnimationFrame(() => { const last = els.messages.lastElementChild; if (last) last.scrollIntoView({ block: 'end' }); });

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
    if (isOpen(chip)) hidePassage(); else showPassage(chip);
  });
  $('#passage-close').addEventListener('click', () => hidePassage());
  $('#key-cancel').addEventListener('click', () => $('#key-dialog').close('cancel'));
  document.addEventListener('click', openNoteWithKey);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') hidePassage(); });
  els.clear.addEventListener('click', () => {
    if (state.busy) return;
    state.turns = save([]);
    hidePassage(false);
    renderAll(retry);
    els.q.focus();
  });
  els.exportBtn.addEventListener('click', () => download(state.turns));
  initFilters();
  checkHealth();
  els.q.focus({ preventScroll: true });
}

init();
