// Bundles the unit tests (src/tests/*.test.ts) for node's own test runner.
import * as esbuild from 'esbuild';
import { readdirSync } from 'node:fs';

await esbuild.build({
  entryPoints: readdirSync('src/tests')
    .filter(name => name.endsWith('.test.ts'))
    .map(name => `src/tests/${name}`),
  outdir: 'build/tests',
  outExtension: { '.js': '.cjs' },
  bundle: true,
  platform: 'node',
  format: 'cjs',
  // Loaded from node_modules at run time: jsdom reads its own files beside it.
  external: ['dompurify', 'jsdom'],
  logLevel: 'warning'
});
