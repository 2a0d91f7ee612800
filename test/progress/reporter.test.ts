/** The live (TTY) progress reporter's layout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createReporter } from '../../src/progress/index.js';

function tty(columns: number): NodeJS.WriteStream & { text(): string } {
  const s = new PassThrough() as unknown as NodeJS.WriteStream & { text(): string };
  let out = '';
  s.on('data', (b: Buffer) => (out += b));
  Object.assign(s, { isTTY: true, columns, text: () => out });
  return s;
}

test('a terminal that reports no size (0 columns) is drawn 80 wide: names keep ~34 columns', () => {
  for (const [columns, width] of [[0, 80], [120, 120]] as const) {
    const out = tty(columns);
    const rep = createReporter('tty', out);
    const ref = `layer-sha256:${'ab'.repeat(32)}`;
    rep.update({ ref, state: 'downloading', offset: 5, total: 10 });
    rep.update({ ref, state: 'done', offset: 10, total: 10 });
    rep.finish();
    const lines = out.text().replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n').filter((l) => l.startsWith('layer-'));
    const last = lines.at(-1)!;
    assert.ok(last.length <= width - 1, `${columns}: ${last.length} > ${width - 1}: ${last}`);
    assert.ok(last.indexOf(' ') >= Math.min(34, width - 46), `${columns}: name too short in ${JSON.stringify(last)}`);
    assert.match(last, /done +\|\++\|$/);
  }
});
