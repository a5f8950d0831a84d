/**
 * The analysis panel and the snippet library, as plain DOM so that the
 * standalone page and the JupyterLab sidebar show the same thing.
 * An API that answers 404 (not deployed here) shows "not available".
 */

import { type AnalysisReport, ApiError, type CodeRemoteAPI, type Snippet } from './api';

let uid = 0;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> & { dataset?: Record<string, string> } = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const { dataset, ...rest } = props;
  const node = Object.assign(document.createElement(tag), rest);
  for (const [key, value] of Object.entries(dataset ?? {})) {
    node.dataset[key] = value;
  }
  node.append(...children);
  return node;
}

/** A message for a failed call; 401 also asks the page to show its sign-in. */
function failure(error: unknown, what: string, onUnauthorized?: () => void): string {
  if (error instanceof ApiError) {
    if (error.notAvailable) {
      return `${what} is not available on this server.`;
    }
    if (error.unauthorized) {
      onUnauthorized?.();
      return 'Sign in to use this.';
    }
    return `${what} failed: ${error.message}`;
  }
  return `${what} failed: ${(error as Error).message ?? error}`;
}

export interface PanelOptions {
  api: CodeRemoteAPI;
  /** The code in the editor now. */
  getCode(): string;
  onUnauthorized?(): void;
}

/** "Analyze" and the complexity report. */
export class AnalysisPanel {
  readonly node: HTMLElement;
  private readonly result: HTMLElement;
  private readonly button: HTMLButtonElement;

  constructor(private readonly options: PanelOptions) {
    this.button = el('button', { type: 'button', className: 'cr-analyze', textContent: 'Analyze complexity' });
    this.button.addEventListener('click', () => void this.analyze());
    this.result = el('div', { className: 'cr-analysis-result' });
    this.result.setAttribute('aria-live', 'polite');
    this.node = el('section', { className: 'cr-analysis' }, el('h2', { textContent: 'Complexity' }), this.button, this.result);
    this.node.setAttribute('aria-label', 'Complexity analysis');
  }

  async analyze(): Promise<void> {
    this.button.disabled = true;
    this.result.replaceChildren(el('p', { className: 'cr-muted', textContent: 'Analyzing…' }));
    const code = this.options.getCode();
    try {
      // The static report answers in milliseconds; the full one (timed runs in a
      // sandbox, a model when configured) follows and replaces it.
      this.show(await this.options.api.analyze(code, ['static']), true);
      this.show(await this.options.api.analyze(code), false);
    } catch (error) {
      this.result.replaceChildren(
        el('p', { className: 'cr-notice', textContent: failure(error, 'Analysis', this.options.onUnauthorized) })
      );
    } finally {
      this.button.disabled = false;
    }
  }

  private show(report: AnalysisReport, pending: boolean): void {
    const list = (items: string[] | undefined, empty: string): HTMLElement =>
      items && items.length ? el('ul', {}, ...items.map(item => el('li', { textContent: item }))) : el('p', { className: 'cr-muted', textContent: empty });
    const confidence = typeof report.confidence === 'number' ? `${Math.round(report.confidence * 100)} %` : '—';
    this.result.replaceChildren(
      el(
        'dl',
        { className: 'cr-complexity' },
        el('dt', { textContent: 'Time' }),
        el('dd', { className: 'cr-time', textContent: report.time_complexity }),
        el('dt', { textContent: 'Space' }),
        el('dd', { className: 'cr-space', textContent: report.space_complexity })
      ),
      el('p', { className: 'cr-explanation', textContent: report.explanation }),
      el('h3', { textContent: 'Patterns' }),
      list(report.patterns, 'None detected.'),
      el('h3', { textContent: 'Suggestions' }),
      list(report.suggestions, 'None.'),
      el('p', {
        className: 'cr-muted',
        textContent: `Methods: ${(report.methods_used ?? []).join(', ') || '—'} · confidence ${confidence}${report.model_used ? ` · model ${report.model_used}` : ''}`
      }),
      ...(pending ? [el('p', { className: 'cr-muted cr-pending', textContent: 'Measuring the code in a sandbox…' })] : [])
    );
  }
}

export interface SnippetPanelOptions extends PanelOptions {
  /** Open a snippet: replace the editor's code (page) or insert at the cursor (JupyterLab). */
  useSnippet(snippet: Snippet): void;
  useLabel: string;
}

/** Save, list, star, search and open snippets. */
export class SnippetPanel {
  readonly node: HTMLElement;
  private readonly list: HTMLElement;
  private readonly status: HTMLElement;
  private readonly search: HTMLInputElement;
  private readonly starredOnly: HTMLInputElement;
  private readonly dialog: HTMLDialogElement;
  private readonly form: HTMLFormElement;

  constructor(private readonly options: SnippetPanelOptions) {
    const id = `cr-snippets-${++uid}`;
    const saveButton = el('button', { type: 'button', className: 'cr-save', textContent: 'Save snippet…' });
    saveButton.addEventListener('click', () => this.openSaveDialog());
    this.search = el('input', { type: 'search', id: `${id}-q`, className: 'cr-search', placeholder: 'e.g. binary search' });
    this.starredOnly = el('input', { type: 'checkbox', id: `${id}-starred`, className: 'cr-starred-only' });
    const searchForm = el(
      'form',
      { className: 'cr-snippet-search', role: 'search' },
      el('label', { htmlFor: `${id}-q`, textContent: 'Search snippets' }),
      this.search,
      el('button', { type: 'submit', textContent: 'Search' }),
      el('label', { className: 'cr-inline' }, this.starredOnly, ' Starred only')
    );
    searchForm.addEventListener('submit', event => {
      event.preventDefault();
      void this.refresh();
    });
    this.starredOnly.addEventListener('change', () => void this.refresh());
    this.status = el('p', { className: 'cr-muted' });
    this.status.setAttribute('aria-live', 'polite');
    this.list = el('ul', { className: 'cr-snippet-list' });

    this.form = el(
      'form',
      { method: 'dialog' },
      el('h2', { textContent: 'Save snippet' }),
      el('label', { htmlFor: `${id}-name`, textContent: 'Name' }),
      el('input', { id: `${id}-name`, name: 'name', required: true, maxLength: 200 }),
      el('label', { htmlFor: `${id}-description`, textContent: 'Description' }),
      el('textarea', { id: `${id}-description`, name: 'description', rows: 3 }),
      el(
        'div',
        { className: 'cr-dialog-buttons' },
        el('button', { type: 'submit', value: 'save', className: 'cr-primary', textContent: 'Save' }),
        el('button', { type: 'button', value: 'cancel', className: 'cr-cancel', textContent: 'Cancel' })
      )
    );
    this.dialog = el('dialog', { className: 'cr-dialog' }, this.form);
    this.dialog.setAttribute('aria-label', 'Save snippet');
    this.form.querySelector('.cr-cancel')!.addEventListener('click', () => this.dialog.close());
    this.form.addEventListener('submit', event => {
      event.preventDefault();
      void this.save();
    });

    this.node = el(
      'section',
      { className: 'cr-snippets' },
      el('h2', { textContent: 'Snippets' }),
      saveButton,
      searchForm,
      this.status,
      this.list,
      this.dialog
    );
    this.node.setAttribute('aria-label', 'Snippet library');
  }

  openSaveDialog(): void {
    this.form.reset();
    this.dialog.showModal();
  }

  private async save(): Promise<void> {
    const data = new FormData(this.form);
    try {
      await this.options.api.saveSnippet({
        name: String(data.get('name') ?? ''),
        description: String(data.get('description') ?? ''),
        code: this.options.getCode(),
        language: 'python'
      });
      this.dialog.close();
      this.status.textContent = 'Saved.';
      await this.refresh(false);
    } catch (error) {
      this.dialog.close();
      this.status.textContent = failure(error, 'Saving', this.options.onUnauthorized);
    }
  }

  /** Load the list: a search when there is a query, else the latest (or starred) snippets. */
  async refresh(announce = true): Promise<void> {
    const q = this.search.value.trim();
    try {
      let snippets: { snippet: Snippet; score?: number }[];
      if (q) {
        snippets = await this.options.api.searchSnippets(q);
        if (this.starredOnly.checked) {
          snippets = snippets.filter(hit => hit.snippet.starred);
        }
      } else {
        const list = await this.options.api.listSnippets({ starred: this.starredOnly.checked || undefined, limit: 50 });
        snippets = list.map(snippet => ({ snippet }));
      }
      this.list.replaceChildren(...snippets.map(hit => this.item(hit.snippet)));
      if (announce) {
        this.status.textContent = snippets.length ? `${snippets.length} snippet(s).` : 'No snippets.';
      }
    } catch (error) {
      this.list.replaceChildren();
      this.status.textContent = failure(error, 'The snippet library', this.options.onUnauthorized);
    }
  }

  private item(snippet: Snippet): HTMLElement {
    const star = el('button', {
      type: 'button',
      className: 'cr-star',
      textContent: snippet.starred ? '★' : '☆'
    });
    star.setAttribute('aria-pressed', String(Boolean(snippet.starred)));
    star.setAttribute('aria-label', `Star ${snippet.name}`);
    star.addEventListener('click', async () => {
      try {
        await this.options.api.setStar(snippet.id, !snippet.starred);
        snippet.starred = !snippet.starred;
        star.textContent = snippet.starred ? '★' : '☆';
        star.setAttribute('aria-pressed', String(snippet.starred));
      } catch (error) {
        this.status.textContent = failure(error, 'Starring', this.options.onUnauthorized);
      }
    });
    const use = el('button', { type: 'button', className: 'cr-use', textContent: this.options.useLabel });
    use.setAttribute('aria-label', `${this.options.useLabel} ${snippet.name}`);
    use.addEventListener('click', () => this.options.useSnippet(snippet));
    const remove = el('button', { type: 'button', className: 'cr-delete', textContent: 'Delete' });
    remove.setAttribute('aria-label', `Delete ${snippet.name}`);
    remove.addEventListener('click', async () => {
      try {
        await this.options.api.deleteSnippet(snippet.id);
        await this.refresh();
      } catch (error) {
        this.status.textContent = failure(error, 'Deleting', this.options.onUnauthorized);
      }
    });
    return el(
      'li',
      { className: 'cr-snippet', dataset: { id: String(snippet.id) } },
      el(
        'div',
        { className: 'cr-snippet-head' },
        star,
        el('strong', { className: 'cr-snippet-name', textContent: snippet.name }),
        snippet.time_complexity ? el('code', { className: 'cr-snippet-complexity', textContent: snippet.time_complexity }) : ''
      ),
      snippet.description ? el('p', { className: 'cr-muted', textContent: snippet.description }) : '',
      el('div', { className: 'cr-snippet-actions' }, use, remove)
    );
  }
}
