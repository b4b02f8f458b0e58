// The conversation in localStorage (data only, never HTML) and the access key in sessionStorage.
import { safeUrl, str } from './dom.js';

const STORE_KEY = 'notes-qa-history';
const KEY_STORE = 'notes-qa-key'; // sessionStorage: the access key lives as long as the tab
const MAX_TURNS = 50;

export const uid = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 7);

function cleanCitation(c) {
  if (!c || typeof c !== 'object') return null;
  const n = Number(c.n);
  if (!Number.isInteger(n)) return null;
  return {
    n, post_id: str(c.post_id), title: str(c.title), url: safeUrl(c.url), snippet: str(c.snippet),
    score: typeof c.score === 'number' ? c.score : null, date: c.date == null ? null : str(c.date),
  };
}

function cleanFilters(f) {
  if (!f || typeof f !== 'object') return null;
  const tags = Array.isArray(f.tags) ? f.tags.map(str).filter(Boolean) : [];
  const date = (d) => (typeof d === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(d) ? d : null);
  const out = { tags, since: date(f.since), until: date(f.until) };
  return tags.length || out.since || out.until ? out : null;
}

export function cleanTurn(t) {
  if (!t || typeof t !== 'object' || typeof t.q !== 'string') return null;
  return {
    id: str(t.id) || uid(), q: t.q, status: t.status === 'error' ? 'error' : 'ok',
    answer: str(t.answer), found: t.found !== false,
    citations: Array.isArray(t.citations) ? t.citations.map(cleanCitation).filter(Boolean) : [],
    mode: str(t.mode), ms: typeof t.ms === 'number' ? t.ms : null, error: str(t.error), warning: str(t.warning),
    filters: cleanFilters(t.filters), feedback: str(t.feedback),
  };
}

export function load() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORE_KEY) || '[]');
    return Array.isArray(raw) ? raw.map(cleanTurn).filter(Boolean).slice(-MAX_TURNS) : [];
  } catch { return []; }
}

export function save(turns) {
  const kept = turns.slice(-MAX_TURNS);
  try { localStorage.setItem(STORE_KEY, JSON.stringify(kept)); } catch { /* storage full or disabled */ }
  return kept;
}

export function getKey() {
  try { return sessionStorage.getItem(KEY_STORE); } catch { return null; }
}

export function setKey(key) {
  try { sessionStorage.setItem(KEY_STORE, key); } catch { /* storage disabled */ }
}
