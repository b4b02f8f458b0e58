// Messages and the sources list, built from turns with text nodes only.
import { T } from './strings.js';
import { els, h, noteHref, state } from './dom.js';
import { describeFilters } from './filters.js';
import { feedbackRow } from './feedback.js';

export function renderUser(turn) {
  const m = h('div', 'msg user');
  m.dataset.turn = turn.id;
  m.append(h('span', 'sr-only', T.you + ': '), h('div', 'bubble', turn.q));
  if (turn.filters) m.append(h('p', 'turn-filters', T.only + ' ' + describeFilters(turn.filters)));
  return m;
}

export function renderLoading() {
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
  turn.answer.split(/\[(\d+)\]/).forEach((part, i) => {
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

/** The bot (or error) message of a finished turn; `onRetry(turn)` is called by an error's retry button. */
export function renderAnswer(turn, onRetry) {
  if (turn.status === 'error') {
    const m = h('div', 'msg error');
    m.dataset.turn = turn.id;
    m.setAttribute('role', 'alert');
    const b = h('div', 'bubble');
    b.append(h('span', 'err-icon', '!'), h('span', 'err-text', turn.error || T.errServer));
    const retry = h('button', 'retry', T.retry);
    retry.type = 'button';
    retry.addEventListener('click', () => onRetry(turn));
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
  b.append(feedbackRow(turn));
  m.append(b);
  return m;
}

/** The bot message while a generative answer streams in: raw model text, plain text only, marked as a
 * draft: the server has not checked its citations yet, and its final answer replaces it. */
export function renderStreaming() {
  const m = h('div', 'msg bot streaming');
  m.setAttribute('aria-busy', 'true');
  m.append(h('span', 'sr-only', T.bot + ': '));
  const b = h('div', 'bubble');
  b.append(h('p', 'answer'), h('p', 'provisional', T.provisional));
  m.append(b);
  return m;
}

export function updateChrome() {
  els.empty.hidden = state.turns.length > 0 || state.busy;
  els.clear.disabled = state.turns.length === 0 || state.busy;
  els.exportBtn.disabled = !state.turns.some((t) => t.status === 'ok') || state.busy;
}

export function renderSources() {
  const list = els.sources.querySelector('.sources-list');
  const empty = els.sources.querySelector('.sources-empty');
  list.textContent = '';
  const last = [...state.turns].reverse().find((t) => t.status === 'ok');
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

export function renderAll(onRetry) {
  els.messages.textContent = '';
  for (const t of state.turns) els.messages.append(renderUser(t), renderAnswer(t, onRetry));
  updateChrome();
  renderSources();
}
