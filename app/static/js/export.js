// The conversation as a Markdown file, made in the page from the turns it holds: no server state.
import { T } from './strings.js';
import { h, noteHref } from './dom.js';
import { describeFilters } from './filters.js';

// Characters that would turn note text into markup (links, emphasis, HTML) are escaped; at the start of a
// line, so are those that would make it a heading, a quote or a list item.
const md = (s) => String(s)
  .replace(/[\\`*_[\]<>|~]/g, '\\$&')
  .replace(/^(\s*)([#>+-]|\d+[.)])/gm, '$1\\$2');

/** Markdown for `turns`: each question, its answer with [n] linked to the cited note, then its sources. */
export function toMarkdown(turns, origin, when) {
  const note = (id) => origin + noteHref(id);
  const out = [`# ${T.mdTitle}`, '', `${T.mdExported} ${when} · <${origin}/>`];
  for (const t of turns) {
    if (t.status !== 'ok') continue;
    out.push('', `## ${T.you}: ${md(t.q.replace(/\s+/g, ' '))}`, '');
    if (t.filters) out.push(`*${T.only} ${md(describeFilters(t.filters))}*`, '');
    const byN = new Map(t.citations.map((c) => [c.n, c]));
    const answer = (t.answer || T.notFound).split(/\[(\d+)\]/).map((part, i) => {
      if (i % 2 === 0) return md(part);
      const c = byN.get(Number(part));
      return c ? `[\\[${c.n}\\]](${note(c.post_id)})` : `\\[${part}\\]`;
    }).join('');
    out.push(`**${T.bot}:** ${answer}`);
    if (t.citations.length) {
      out.push('', `${T.mdSources}:`, '');
      for (const c of t.citations) {
        const date = c.date ? ` · ${md(c.date)}` : '';
        out.push(`${c.n}. [${md(c.title || T.untitled)}](${note(c.post_id)}) · \`${c.post_id}\`${date}`);
      }
    }
  }
  return out.join('\n') + '\n';
}

export function download(turns) {
  const when = new Date().toLocaleString('sv').slice(0, 16); // local time as "2026-11-21 21:05"
  const blob = new Blob([toMarkdown(turns, location.origin, when)], { type: 'text/markdown;charset=utf-8' });
  const a = h('a');
  a.href = URL.createObjectURL(blob);
  a.download = `notes-qa-${when.slice(0, 10)}.md`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
