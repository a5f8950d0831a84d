import assert from 'node:assert/strict';
import { test } from 'node:test';

import { planOutput } from '../common/outputs';
import { toCodePoints, toUtf16 } from '../common/positions';

test('stream text keeps its channel, lists are joined', () => {
  assert.deepEqual(planOutput({ output_type: 'stream', name: 'stderr', text: ['a\n', 'b'] }), {
    kind: 'stream',
    name: 'stderr',
    text: 'a\nb'
  });
  assert.deepEqual(planOutput({ output_type: 'stream', text: 'x' }), { kind: 'stream', name: 'stdout', text: 'x' });
});

test('a matplotlib figure is a PNG data URL (whitespace in base64 dropped)', () => {
  const plan = planOutput({
    output_type: 'display_data',
    data: { 'image/png': 'iVBORw0K\nGgo=', 'text/plain': '<Figure size 640x480 with 1 Axes>' }
  });
  assert.deepEqual(plan, { kind: 'image', src: 'data:image/png;base64,iVBORw0KGgo=', mime: 'image/png' });
});

test('HTML is preferred to plain text (pandas tables); SVG becomes an image, never inline markup', () => {
  assert.deepEqual(
    planOutput({ output_type: 'execute_result', data: { 'text/html': '<table></table>', 'text/plain': 'df' } }),
    { kind: 'html', html: '<table></table>' }
  );
  const svg = planOutput({ output_type: 'display_data', data: { 'image/svg+xml': '<svg><script>x</script></svg>' } });
  assert.equal(svg.kind, 'image');
  assert.ok(svg.kind === 'image' && svg.src.startsWith('data:image/svg+xml;charset=utf-8,%3Csvg'));
});

test('JavaScript outputs are never chosen', () => {
  assert.deepEqual(planOutput({ output_type: 'display_data', data: { 'application/javascript': 'alert(1)' } }), {
    kind: 'none'
  });
  assert.deepEqual(
    planOutput({ output_type: 'display_data', data: { 'application/javascript': 'alert(1)', 'text/plain': 'obj' } }),
    { kind: 'text', text: 'obj' }
  );
});

test('errors carry the joined traceback', () => {
  assert.deepEqual(
    planOutput({ output_type: 'error', ename: 'ValueError', evalue: 'bad', traceback: ['line 1', 'line 2'] }),
    { kind: 'error', ename: 'ValueError', evalue: 'bad', traceback: 'line 1\nline 2' }
  );
});

test('cursor positions convert between UTF-16 and code points', () => {
  const code = 'x = "😀"\nx.up';
  const end = code.length; // UTF-16 units: the emoji counts 2
  assert.equal(toCodePoints(code, end), end - 1);
  assert.equal(toUtf16(code, end - 1), end);
  assert.equal(toUtf16('abc', 2), 2);
});
