// 👍/👎 under an answer -> POST /feedback; 👎 first asks why: a wrong citation, or the notes do (not) cover it.
import { T } from './strings.js';
import { h, state, str } from './dom.js';
import { save } from './storage.js';
import { post } from './net.js';

export function feedbackRow(turn) {
  const row = h('div', 'feedback', turn.feedback && T.fbThanks);
  const add = (text, body, label) => {
    const b = h('button', 'ghost', text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    b.onclick = () => (body ? send(body) : why());
    row.append(b);
  };
  const send = async (body) => {
    row.textContent = '';
    const citations = turn.citations.map(({ n, post_id, title }) => ({ n, post_id, title }));
    try {
      await post('/feedback', { question: turn.q, answer: turn.answer, citations, ...body }, null, 'application/json');
      turn.feedback = body.verdict;
      state.turns = save(state.turns);
      row.textContent = T.fbThanks;
    } catch (e) { row.textContent = str(e.message); }
  };
  const down = (reason, citation) => ({ verdict: 'down', reason, citation });
  const why = () => {
    row.textContent = '';
    for (const { n } of turn.citations) add(T.fbWrong(n), down('wrong_citation', n));
    add(turn.found ? T.fbNo : T.fbYes, down(turn.found ? 'not_covered' : 'covered'));
    add(T.fbOther, down());
  };
  if (!turn.feedback) { add('👍', { verdict: 'up' }, T.fbUp); add('👎', 0, T.fbDown); }
  return row;
}
