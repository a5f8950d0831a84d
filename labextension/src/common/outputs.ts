/**
 * Rendering Jupyter outputs (stream, display_data, execute_result, error)
 * into an output area, as they arrive.
 *
 * `planOutput` decides what to show (pure, unit-tested); `OutputArea` puts
 * it on the page. HTML from the kernel is sanitized; SVG is shown as an
 * image so that no script inside it can run.
 */

import DOMPurify from 'dompurify';

import { parseAnsi } from './ansi';

/** The part of a Jupyter output dict this module reads. */
export interface JupyterOutput {
  output_type: string;
  name?: string;
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

export type OutputPlan =
  | { kind: 'stream'; name: 'stdout' | 'stderr'; text: string }
  | { kind: 'html'; html: string }
  | { kind: 'image'; src: string; mime: string }
  | { kind: 'text'; text: string }
  | { kind: 'error'; ename: string; evalue: string; traceback: string }
  | { kind: 'none' };

/** Richest first, as JupyterLab orders them (JavaScript is never run). */
const MIME_ORDER = ['text/html', 'image/svg+xml', 'image/png', 'image/jpeg', 'image/gif', 'text/plain'];

function joined(value: unknown): string {
  return Array.isArray(value) ? value.join('') : String(value ?? '');
}

/** What to show for one output. */
export function planOutput(output: JupyterOutput): OutputPlan {
  switch (output.output_type) {
    case 'stream':
      return { kind: 'stream', name: output.name === 'stderr' ? 'stderr' : 'stdout', text: joined(output.text) };
    case 'error':
      return {
        kind: 'error',
        ename: output.ename ?? 'Error',
        evalue: output.evalue ?? '',
        traceback: (output.traceback ?? []).join('\n')
      };
    case 'display_data':
    case 'execute_result':
    case 'update_display_data': {
      const data = output.data ?? {};
      const mime = MIME_ORDER.find(m => m in data);
      if (mime === undefined) {
        return { kind: 'none' };
      }
      const value = joined(data[mime]);
      if (mime === 'text/html') {
        return { kind: 'html', html: value };
      }
      if (mime === 'text/plain') {
        return { kind: 'text', text: value };
      }
      const src =
        mime === 'image/svg+xml'
          ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(value)}`
          : `data:${mime};base64,${value.replace(/\s/g, '')}`;
      return { kind: 'image', src, mime };
    }
    default:
      return { kind: 'none' };
  }
}

/** Text with ANSI colours as spans (escape sequences never reach the page). */
export function ansiFragment(text: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  for (const segment of parseAnsi(text)) {
    if (segment.classes.length === 0) {
      fragment.appendChild(document.createTextNode(segment.text));
    } else {
      const span = document.createElement('span');
      span.className = segment.classes.join(' ');
      span.textContent = segment.text;
      fragment.appendChild(span);
    }
  }
  return fragment;
}

/** HTML from the kernel without scripts, event handlers, forms or frames. */
export function sanitizeHtml(html: string): DocumentFragment {
  return DOMPurify.sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: ['style', 'form', 'input', 'button', 'iframe', 'object', 'embed'],
    FORBID_ATTR: ['style']
  });
}

/** An output area that grows as outputs arrive; consecutive stream text joins one block. */
export class OutputArea {
  readonly node: HTMLElement;
  private lastStream: { name: string; pre: HTMLElement } | null = null;
  private clearPending = false;

  constructor(node?: HTMLElement) {
    this.node = node ?? document.createElement('div');
    this.node.classList.add('cr-output');
  }

  clear(wait = false): void {
    if (wait) {
      // clear_output(wait=True): clear when the next output arrives.
      this.clearPending = true;
      return;
    }
    this.node.replaceChildren();
    this.lastStream = null;
    this.clearPending = false;
  }

  add(output: JupyterOutput): void {
    if (this.clearPending) {
      this.clear();
    }
    const plan = planOutput(output);
    if (plan.kind === 'stream') {
      this.addStream(plan.name, plan.text);
      return;
    }
    this.lastStream = null;
    const element = this.element(plan);
    if (element) {
      this.node.appendChild(element);
    }
  }

  /** A line of the page's own (e.g. the input a person typed), in the output's flow. */
  addNote(text: string, className: string): void {
    this.lastStream = null;
    const div = document.createElement('div');
    div.className = className;
    div.textContent = text;
    this.node.appendChild(div);
  }

  private addStream(name: string, text: string): void {
    if (!this.lastStream || this.lastStream.name !== name) {
      const pre = document.createElement('pre');
      pre.className = `cr-stream cr-${name}`;
      this.node.appendChild(pre);
      this.lastStream = { name, pre };
    }
    this.lastStream.pre.appendChild(ansiFragment(text));
  }

  private element(plan: OutputPlan): HTMLElement | null {
    switch (plan.kind) {
      case 'html': {
        const div = document.createElement('div');
        div.className = 'cr-html';
        div.appendChild(sanitizeHtml(plan.html));
        return div;
      }
      case 'image': {
        const img = document.createElement('img');
        img.className = 'cr-image';
        img.src = plan.src;
        img.alt = plan.mime === 'image/svg+xml' ? 'figure (SVG)' : 'figure';
        return img;
      }
      case 'text': {
        const pre = document.createElement('pre');
        pre.className = 'cr-result';
        pre.appendChild(ansiFragment(plan.text));
        return pre;
      }
      case 'error': {
        const pre = document.createElement('pre');
        pre.className = 'cr-error';
        pre.setAttribute('aria-label', `${plan.ename}: ${plan.evalue}`);
        pre.appendChild(ansiFragment(plan.traceback || `${plan.ename}: ${plan.evalue}`));
        return pre;
      }
      default:
        return null;
    }
  }
}
