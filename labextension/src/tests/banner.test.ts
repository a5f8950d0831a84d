import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bannerFor, deathStatus, type RunStatus } from '../common/banner';
import { snippetList } from '../common/api';

test('a good run has no banner', () => {
  assert.equal(bannerFor('ok'), null);
});

test('every other status has a titled banner', () => {
  const titles: Record<Exclude<RunStatus, 'ok'>, string> = {
    error: 'Error',
    timeout: 'Time limit reached',
    memory_limit: 'Memory limit reached',
    output_limit: 'Output limit reached',
    killed: 'Sandbox stopped',
    interrupted: 'Interrupted'
  };
  for (const [status, title] of Object.entries(titles)) {
    const banner = bannerFor(status as RunStatus);
    assert.equal(banner?.title, title);
    assert.equal(banner?.status, status);
  }
  assert.equal(bannerFor('interrupted')?.level, 'warning');
  assert.equal(bannerFor('memory_limit')?.level, 'error');
});

test('the timeout banner names the limit', () => {
  assert.match(bannerFor('timeout', { timeoutSeconds: 2 })!.detail, /after 2 s/);
});

test("a dead sandbox is memory_limit only when the server says so", () => {
  assert.equal(deathStatus({ coderemote: { reason: 'memory_limit' } }), 'memory_limit');
  assert.equal(deathStatus({ coderemote: { reason: 'killed' } }), 'killed');
  assert.equal(deathStatus({}), 'killed');
  assert.equal(deathStatus(undefined), 'killed');
});

test('snippet lists are read from an array or a page object', () => {
  const one = { id: 1, name: 'a', code: 'x', is_starred: true };
  const read = { ...one, starred: true };
  assert.deepEqual(snippetList([one]), [read]);
  assert.deepEqual(snippetList({ snippets: [one], total: 1 }), [read]);
  assert.deepEqual(snippetList({ items: [{ id: 2, name: 'b', code: 'y' }] }), [{ id: 2, name: 'b', code: 'y', starred: false }]);
  assert.deepEqual(snippetList(null), []);
});
