// The passage viewer: a citation chip opens the cited passage beside the conversation.
import { T } from './strings.js';
import { els, noteHref, safeUrl, state } from './dom.js';

let activeChip = null;

export const isOpen = (chip) => chip === activeChip && !els.passage.hidden;

export function showPassage(chip) {
  const turn = state.turns.find((t) => t.id === chip.dataset.turn);
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

export function hidePassage(refocus = true) {
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
