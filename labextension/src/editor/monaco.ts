/**
 * Monaco with Python highlighting, completions from the kernel
 * (`complete_request`) and hover docs (`inspect_request`). Only the editor
 * features and the Python grammar are bundled, not Monaco's 80 languages.
 */

import * as monaco from 'monaco-editor/editor/editor.api';
import './features';
import 'monaco-editor/languages/definitions/python/register';

import type { Kernel } from '@jupyterlab/services';

import { stripAnsi } from '../common/ansi';
import { toCodePoints, toUtf16 } from '../common/positions';

export { monaco };

/** Kernel requests wait behind running code, and the first completion loads jedi (about 2 s in the sandbox): give up after this rather than leave the widget loading. */
const KERNEL_REPLY_TIMEOUT_MS = 5000;

function withTimeout<T>(promise: Promise<T>): Promise<T | null> {
  return Promise.race([promise, new Promise<null>(resolve => setTimeout(() => resolve(null), KERNEL_REPLY_TIMEOUT_MS))]);
}

const KIND_OF_TYPE: Record<string, monaco.languages.CompletionItemKind> = {
  function: monaco.languages.CompletionItemKind.Function,
  class: monaco.languages.CompletionItemKind.Class,
  module: monaco.languages.CompletionItemKind.Module,
  instance: monaco.languages.CompletionItemKind.Variable,
  statement: monaco.languages.CompletionItemKind.Variable,
  keyword: monaco.languages.CompletionItemKind.Keyword,
  param: monaco.languages.CompletionItemKind.Variable,
  path: monaco.languages.CompletionItemKind.File,
  property: monaco.languages.CompletionItemKind.Property
};

/** Completions and hovers for Python from whatever kernel `getKernel` returns now. */
export function registerKernelProviders(getKernel: () => Kernel.IKernelConnection | null): monaco.IDisposable[] {
  const completion = monaco.languages.registerCompletionItemProvider('python', {
    triggerCharacters: ['.'],
    async provideCompletionItems(model, position) {
      const kernel = getKernel();
      if (!kernel) {
        return { suggestions: [] };
      }
      const code = model.getValue();
      const offset = model.getOffsetAt(position);
      const reply = await withTimeout(kernel.requestComplete({ code, cursor_pos: toCodePoints(code, offset) }));
      if (!reply || reply.content.status !== 'ok') {
        return { suggestions: [] };
      }
      const content = reply.content;
      const start = model.getPositionAt(toUtf16(code, content.cursor_start));
      const end = model.getPositionAt(toUtf16(code, content.cursor_end));
      const range = new monaco.Range(start.lineNumber, start.column, end.lineNumber, end.column);
      const types = (content.metadata?._jupyter_types_experimental ?? []) as { text: string; type?: string }[];
      const typeOf = new Map(types.map(t => [t.text, t.type ?? '']));
      return {
        suggestions: content.matches.map((match, i) => ({
          label: match,
          insertText: match,
          range,
          kind: KIND_OF_TYPE[typeOf.get(match) ?? ''] ?? monaco.languages.CompletionItemKind.Text,
          sortText: String(i).padStart(5, '0')
        }))
      };
    }
  });
  const hover = monaco.languages.registerHoverProvider('python', {
    async provideHover(model, position) {
      const kernel = getKernel();
      const word = model.getWordAtPosition(position);
      if (!kernel || !word) {
        return null;
      }
      const code = model.getValue();
      // Inspect at the end of the word so that `len` and `le|n` both work.
      const offset = model.getOffsetAt({ lineNumber: position.lineNumber, column: word.endColumn });
      const reply = await withTimeout(
        kernel.requestInspect({ code, cursor_pos: toCodePoints(code, offset), detail_level: 0 })
      );
      if (!reply || reply.content.status !== 'ok' || !reply.content.found) {
        return null;
      }
      const text = stripAnsi(String(reply.content.data['text/plain'] ?? '')).trim();
      if (!text) {
        return null;
      }
      return {
        range: new monaco.Range(position.lineNumber, word.startColumn, position.lineNumber, word.endColumn),
        contents: [{ value: '```text\n' + text.slice(0, 4000) + '\n```' }]
      };
    }
  });
  return [completion, hover];
}
