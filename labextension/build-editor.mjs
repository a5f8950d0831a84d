// Bundles the standalone editor page (Monaco + @jupyterlab/services) and
// Monaco's editor worker into kernel_gateway_ext/static/editor/, served by
// the coderemote extension. No CDN: everything the page loads is here.
import * as esbuild from 'esbuild';
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const outdir = '../kernel_gateway_ext/static/editor';
const common = {
  bundle: true,
  minify: true,
  sourcemap: false,
  target: 'es2020',
  format: 'iife',
  legalComments: 'external',
  logLevel: 'warning'
};

await esbuild.build({
  ...common,
  entryPoints: { main: 'src/editor/main.ts' },
  outdir,
  loader: { '.ttf': 'file' },
  assetNames: '[name]',
  define: { 'process.env.NODE_ENV': '"production"' },
  // @jupyterlab/services names Node's `ws` for use outside a browser.
  external: ['ws']
});
await esbuild.build({
  ...common,
  entryPoints: { 'editor.worker': 'monaco-editor/editor/editor.worker' },
  outdir
});

let total = 0;
for (const name of readdirSync(outdir)) {
  const size = statSync(join(outdir, name)).size;
  total += size;
  console.log(`${name.padEnd(28)} ${(size / 1024).toFixed(1).padStart(8)} KiB`);
}
console.log(`${'total'.padEnd(28)} ${(total / 1024).toFixed(1).padStart(8)} KiB`);
