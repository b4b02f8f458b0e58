// Small DOM helpers. Safety rule: data (questions, answers, notes) only ever goes in as text, never as HTML.
export const $ = (sel) => document.querySelector(sel);

export function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text != null) el.textContent = String(text);
  return el;
}

export const noteHref = (id) => '/posts/' + encodeURIComponent(String(id));
export const safeUrl = (u) => (typeof u === 'string' && /^https?:\/\//i.test(u.trim()) ? u.trim() : null);
export const str = (v) => (typeof v === 'string' ? v : v == null ? '' : String(v));

export const els = {
  scroller: $('#scroller'), messages: $('#messages'), empty: $('#empty'), examples: $('#examples'),
  form: $('#ask-form'), q: $('#question'), send: $('#send'), clear: $('#clear'), exportBtn: $('#export'),
  status: $('#status'), passage: $('#passage'), sources: $('#sources'), filters: $('#filters'),
};

/** Shared by the modules: the conversation and whether a question is in flight. */
export const state = { turns: [], busy: false };
