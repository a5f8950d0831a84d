/**
 * Rendering Jupyter outputs (stream, display_data, execute_result, error)
 * into an output area, as they arrive.
 *
 * `planOutput` decides what to show (pure, unit-tested); `OutputArea` puts
 * it on the page. HTML from the kernel is sanitized; SVG is shown as an
 * image so that no script inside it can run.
 */

import DOMPurify, { type DOMPurify as Purifier, type UponSanitizeAttributeHook } from 'dompurify';

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

/** Attributes whose URL the browser fetches by itself (a link's `href` waits for a click). */
const FETCHED_URL_ATTRS = new Set(['src', 'srcset', 'poster', 'background', 'href', 'xlink:href']);
const LINKS = new Set(['a', 'area']);
const LOCAL_URL = /^(?:data|blob):/i;
/** CSS functions that fetch, once `url(data:…)` and `url(blob:…)` are taken out. */
const CSS_FETCH = /(?:url|image|image-set|src)\(/i;
const CSS_LOCAL_URL = /url\(\s*['"]?\s*(?:data|blob):/gi;

function cssFetches(css: string): boolean {
  return CSS_FETCH.test(css.replace(CSS_LOCAL_URL, ''));
}

const dropFetchingAttribute: UponSanitizeAttributeHook = (node, event) => {
  const name = event.attrName;
  const isLink = LINKS.has(node.nodeName.toLowerCase()) && (name === 'href' || name === 'xlink:href');
  const fetchesUrl = FETCHED_URL_ATTRS.has(name) && !isLink && !LOCAL_URL.test(event.attrValue);
  // srcset: each candidate is a URL to check; data: images come as src. SVG presentation
  // attributes (fill, filter, cursor…) take url() too; style is pruned declaration by declaration.
  if (name === 'srcset' || fetchesUrl || (name !== 'style' && cssFetches(event.attrValue))) {
    event.keepAttr = false;
  }
};

function dropFetchingStyle(node: Element): void {
  const style = (node as HTMLElement).style;
  if (!style || !node.hasAttribute('style')) {
    return;
  }
  // Declarations as the browser parsed them, escapes resolved (`\75rl(` is `url(`);
  // a backslash still there sits in a custom property, which var() would resolve later.
  for (const property of Array.from(style)) {
    const value = style.getPropertyValue(property);
    if (cssFetches(value) || value.includes('\\')) {
      style.removeProperty(property);
    }
  }
  if (style.length === 0) {
    node.removeAttribute('style');
  }
}

/** Frames and forms are gone, and so is all that loads or styles beyond the output itself. */
const FORBID_TAGS = ['style', 'link', 'meta', 'base', 'iframe', 'frame', 'object', 'embed', 'form'];
const FORM_FIELDS = ['input', 'button', 'select', 'option', 'optgroup', 'datalist', 'textarea'];

let purifier: Purifier | null = null;

/**
 * Kernel HTML must not act on the page: no script, no request of its own (a
 * remote image or stylesheet tells its server who looked, and when), nothing
 * that restyles the page (`<style>` is page-wide), that the page's code could
 * take for its own elements (`id` and `name` clobber `getElementById` and
 * globals) or that a person could type a secret into (forms). The page's
 * Content-Security-Policy blocks such requests again should one slip through.
 *
 * An instance of our own, so that the hooks reach no other user of DOMPurify;
 * made on first use, as this module also loads where there is no DOM.
 */
function kernelHtmlPurifier(): Purifier {
  if (!purifier) {
    purifier = DOMPurify(window);
    purifier.addHook('uponSanitizeAttribute', dropFetchingAttribute);
    purifier.addHook('afterSanitizeAttributes', dropFetchingStyle);
  }
  return purifier;
}

/** HTML from the kernel, inert: pandas tables keep their markup, classes and inline styles. */
export function sanitizeHtml(html: string): DocumentFragment {
  return kernelHtmlPurifier().sanitize(html, {
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS: [...FORBID_TAGS, ...FORM_FIELDS],
    FORBID_ATTR: ['id', 'name']
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
