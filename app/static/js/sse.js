// A reader for POST /ask/stream's server-sent events.
import { T } from './strings.js';

/** Read the stream of `res`: call onToken(text) per `token` event; return the `done` event's data. */
export async function readStream(res, onToken) {
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
