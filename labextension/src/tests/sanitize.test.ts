import assert from 'node:assert/strict';
import { test } from 'node:test';

import { document } from './dom';
import { sanitizeHtml } from '../common/outputs';

/** Kernel HTML as it lands in the output area. */
function render(html: string): HTMLElement {
  const div = document.createElement('div');
  div.appendChild(sanitizeHtml(html));
  return div;
}

const PIXEL =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';

test('ids and names are dropped: kernel HTML cannot clobber the page', () => {
  const out = render('<a id="config" href="#x">a</a><img name="getElementById" src="' + PIXEL + '"><p id="run">p</p>');
  assert.equal(out.querySelectorAll('[id], [name]').length, 0);
  assert.equal(out.querySelector('a')?.getAttribute('href'), '#x');
  assert.equal(out.querySelector('p')?.textContent, 'p');
});

test('forms and their fields are dropped, their text stays', () => {
  const out = render(
    '<form action="http://127.0.0.1:9/steal"><input name="z" value="v"><button>Send</button>' +
      '<select><option>one</option></select><textarea>typed</textarea></form>'
  );
  assert.equal(out.querySelectorAll('form, input, button, select, option, textarea').length, 0);
  assert.match(out.textContent ?? '', /Send.*one.*typed/s);
});

test('remote images are dropped, data: images kept', () => {
  const out = render(
    '<img src="http://127.0.0.1:9/img"><img src="/files/x.png">' +
      `<img src="${PIXEL}" srcset="http://127.0.0.1:9/srcset 2x" alt="dot">` +
      '<video poster="http://127.0.0.1:9/poster" src="http://127.0.0.1:9/video"></video>' +
      '<table background="http://127.0.0.1:9/bg"><tr><td>1</td></tr></table>'
  );
  const images = [...out.querySelectorAll('img')];
  assert.deepEqual(
    images.map(img => img.getAttribute('src')),
    [null, null, PIXEL]
  );
  assert.equal(out.querySelectorAll('[srcset], [poster], [background], video[src]').length, 0);
});

test('remote CSS is dropped: style elements, url() in style attributes, link, base, meta', () => {
  const out = render(
    '<style>body{background:url(http://127.0.0.1:9/style)}</style>' +
      '<link rel="stylesheet" href="http://127.0.0.1:9/link"><base href="http://127.0.0.1:9/">' +
      '<meta http-equiv="refresh" content="0">' +
      '<div style="color: red; background: url(http://127.0.0.1:9/css)">a</div>' +
      '<div style="background-image: url(&quot;http://127.0.0.1:9/quoted&quot;)">b</div>' +
      `<div style="background-image: url('${PIXEL}')">c</div>`
  );
  assert.equal(out.querySelectorAll('style, link, base, meta').length, 0);
  assert.doesNotMatch(out.innerHTML, /127\.0\.0\.1/);
  const [a, b, c] = [...out.querySelectorAll('div')];
  assert.equal(a.style.color, 'red');
  assert.equal(b.getAttribute('style'), null);
  assert.match(c.style.backgroundImage, /^url\(.*data:image\/png/);
});

test('SVG cannot fetch either', () => {
  const out = render(
    '<svg><image href="http://127.0.0.1:9/image"></image><image xlink:href="http://127.0.0.1:9/xlink"></image>' +
      '<rect fill="url(http://127.0.0.1:9/fill#p)" width="5" height="5"></rect>' +
      '<a href="https://example.org/"><text>t</text></a></svg>'
  );
  assert.doesNotMatch(out.innerHTML, /127\.0\.0\.1/);
  assert.equal(out.querySelector('rect')?.getAttribute('width'), '5');
  assert.equal(out.querySelector('svg a')?.getAttribute('href'), 'https://example.org/');
});

test('scripts and event handlers are gone', () => {
  const out = render(
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><a href="javascript:alert(1)">j</a>'
  );
  assert.equal(out.querySelectorAll('script, [onerror]').length, 0);
  assert.equal(out.querySelector('a')?.getAttribute('href'), null);
});

test('a pandas DataFrame table renders as it came (but for its page-wide <style>)', () => {
  const html =
    '<div><style scoped>.dataframe tbody tr th { vertical-align: top; }</style>' +
    '<table border="1" class="dataframe"><thead><tr style="text-align: right;"><th></th><th>n</th></tr></thead>' +
    '<tbody><tr><th>0</th><td>1</td></tr><tr><th>1</th><td>4</td></tr></tbody></table></div>';
  const out = render(html);
  const table = out.querySelector('table.dataframe');
  assert.ok(table);
  assert.equal(table.getAttribute('border'), '1');
  assert.equal(out.querySelector('thead tr')?.getAttribute('style'), 'text-align: right;');
  assert.deepEqual(
    [...out.querySelectorAll('tbody td')].map(td => td.textContent),
    ['1', '4']
  );
  assert.equal(out.querySelector('style'), null);
});
