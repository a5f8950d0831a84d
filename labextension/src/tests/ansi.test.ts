import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseAnsi, stripAnsi } from '../common/ansi';

// What IPython prints for a traceback's first line and an arrow line.
const IPYTHON_LINE = '\x1b[0;31mZeroDivisionError\x1b[0m                         Traceback';
const ARROW = '\x1b[0;32m----> 1\x1b[0m \x1b[38;5;241m1\x1b[39m\x1b[38;5;241m/\x1b[39m\x1b[38;5;241m0\x1b[39m';

test('stripAnsi removes colours and cursor sequences', () => {
  assert.equal(stripAnsi(IPYTHON_LINE), 'ZeroDivisionError                         Traceback');
  assert.equal(stripAnsi('50%\x1b[2K\x1b[1Gdone'), '50%done');
  assert.equal(stripAnsi('plain text'), 'plain text');
});

test('parseAnsi turns SGR colours into classes and resets them', () => {
  assert.deepEqual(parseAnsi(IPYTHON_LINE), [
    { text: 'ZeroDivisionError', classes: ['ansi-red-fg'] },
    { text: '                         Traceback', classes: [] }
  ]);
});

test('parseAnsi handles bold, bright and background colours', () => {
  assert.deepEqual(parseAnsi('\x1b[1;93;41mwarn\x1b[22mx\x1b[0m'), [
    { text: 'warn', classes: ['ansi-bright-yellow-fg', 'ansi-red-bg', 'ansi-bold'] },
    { text: 'x', classes: ['ansi-bright-yellow-fg', 'ansi-red-bg'] }
  ]);
});

test('256-colour and true-colour parameters are consumed, not misread', () => {
  const segments = parseAnsi(ARROW);
  assert.equal(segments.map(s => s.text).join(''), '----> 1 1/0');
  assert.deepEqual(segments[0], { text: '----> 1', classes: ['ansi-green-fg'] });
  // 38;5;241 is outside the 16 named colours: no class, and "5" or "241" is not taken as a code.
  assert.ok(segments.slice(1).every(s => s.classes.length === 0));
  assert.deepEqual(parseAnsi('\x1b[38;2;255;0;0;1mX'), [{ text: 'X', classes: ['ansi-bold'] }]);
  assert.deepEqual(parseAnsi('\x1b[38;5;9mY'), [{ text: 'Y', classes: ['ansi-bright-red-fg'] }]);
});

test('an empty SGR (ESC[m) resets', () => {
  assert.deepEqual(parseAnsi('\x1b[31ma\x1b[mb'), [
    { text: 'a', classes: ['ansi-red-fg'] },
    { text: 'b', classes: [] }
  ]);
});
