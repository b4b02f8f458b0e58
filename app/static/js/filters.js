// The filter panel: tags from GET /tags and a date range, sent with each question as `filters`.
import { T } from './strings.js';
import { els, h } from './dom.js';
import { getJSON } from './net.js';

const panel = () => els.filters;
const input = (name) => panel().querySelector(`input[name="${name}"]`);

/** The filters set in the panel, as POST /ask takes them, or null when none is set. */
export function currentFilters() {
  const tags = [...panel().querySelectorAll('.tags input:checked')].map((i) => i.value);
  const since = input('since').value || null;
  const until = input('until').value || null;
  return tags.length || since || until ? { tags, since, until } : null;
}

/** "Python, nlp · 2026-01-01 – 2026-02-01", for a question asked under filters. */
export function describeFilters(f) {
  const parts = [];
  if (f.tags.length) parts.push(f.tags.join(', '));
  if (f.since || f.until) parts.push(`${f.since || '…'} – ${f.until || '…'}`);
  return parts.join(' · ');
}

function showCount() {
  const f = currentFilters();
  const n = f ? f.tags.length + (f.since ? 1 : 0) + (f.until ? 1 : 0) : 0;
  panel().querySelector('.filters-label').textContent = n ? `${T.filters} (${n})` : T.filters;
  panel().classList.toggle('active', n > 0);
}

/** Offer the corpus's tags, most used first; tags already ticked stay ticked. */
async function loadTags() {
  const box = panel().querySelector('.tags');
  const ticked = new Set([...box.querySelectorAll('input:checked')].map((i) => i.value));
  let counts;
  try { counts = await getJSON('/tags'); } catch { return; }
  box.textContent = '';
  for (const [tag, n] of Object.entries(counts || {})) {
    const label = h('label', 'tag');
    const box1 = h('input');
    box1.type = 'checkbox';
    box1.value = tag;
    box1.checked = ticked.has(tag);
    label.append(box1, h('span', null, tag), h('span', 'tag-n', n));
    box.append(label);
  }
  if (!box.childElementCount) box.append(h('span', 'tag-none', T.noTags));
}

export function initFilters() {
  const p = panel();
  p.addEventListener('toggle', () => { if (p.open) loadTags(); });
  p.addEventListener('change', showCount);
  p.querySelector('.filters-reset').addEventListener('click', () => {
    p.querySelectorAll('input').forEach((i) => { if (i.type === 'checkbox') i.checked = false; else i.value = ''; });
    showCount();
  });
  showCount();
}
