/**
 * The sidebar panel: runs the active notebook cell's or file editor's code
 * on a kernel of the sandboxed kernelspec, with streamed output, the
 * complexity report and the snippet library.
 */

import type { ServiceManager, Kernel } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { CodeRemoteAPI, DEFAULT_KERNEL } from '../common/api';
import { bannerFor } from '../common/banner';
import { OutputArea } from '../common/outputs';
import { AnalysisPanel, SnippetPanel } from '../common/panels';
import { Run } from '../common/run';
import { InputPrompt } from '../common/stdin';

/** Where the panel's code comes from and where snippets go. */
export interface CodeSource {
  /** The active cell's or editor's text, and a name for it; null when none is open. */
  current(): { code: string; where: string } | null;
  /** Insert at the cursor of the active cell or editor; false when there is none. */
  insert(code: string): boolean;
}

export class CodeRemotePanel extends Widget {
  private kernel: Kernel.IKernelConnection | null = null;
  private starting: Promise<Kernel.IKernelConnection> | null = null;
  private run: Run | null = null;
  private readonly api: CodeRemoteAPI;
  private readonly output = new OutputArea();
  private readonly stdin = new InputPrompt(this.output);
  private readonly banner: HTMLElement;
  private readonly status: HTMLElement;
  private readonly runButton: HTMLButtonElement;
  private readonly timeout: HTMLInputElement;

  constructor(
    private readonly services: ServiceManager.IManager,
    private readonly source: CodeSource
  ) {
    super();
    this.id = 'coderemote-panel';
    this.addClass('cr-lab-panel');
    this.title.caption = 'Code Remote: run in a sandbox';

    const node = this.node;
    const heading = document.createElement('h2');
    heading.textContent = 'Code Remote sandbox';
    this.runButton = button('Run active cell', 'cr-run', () => void this.runActive());
    const interrupt = button('Interrupt', 'cr-interrupt', () => void this.run?.interrupt());
    const timeoutLabel = document.createElement('label');
    timeoutLabel.textContent = 'Timeout (s) ';
    this.timeout = Object.assign(document.createElement('input'), { type: 'number', min: '0', value: '10', className: 'cr-timeout' });
    timeoutLabel.appendChild(this.timeout);
    const toolbar = document.createElement('div');
    toolbar.className = 'cr-lab-toolbar';
    toolbar.append(this.runButton, interrupt, timeoutLabel);
    this.status = document.createElement('p');
    this.status.className = 'cr-muted cr-run-status';
    this.status.setAttribute('role', 'status');
    this.banner = document.createElement('div');
    this.banner.setAttribute('role', 'alert');
    this.banner.hidden = true;
    this.output.node.setAttribute('role', 'log');
    this.output.node.setAttribute('aria-live', 'polite');
    this.output.node.setAttribute('aria-label', 'Sandbox output');

    const api = (this.api = new CodeRemoteAPI(services.serverSettings));
    const getCode = () => this.source.current()?.code ?? '';
    const analysis = new AnalysisPanel({ api, getCode });
    const snippets = new SnippetPanel({
      api,
      getCode,
      useLabel: 'Insert',
      useSnippet: snippet => {
        if (!this.source.insert(snippet.code)) {
          this.status.textContent = 'Open a notebook or a file to insert the snippet into.';
        }
      }
    });
    node.append(heading, toolbar, this.status, this.banner, this.output.node, analysis.node, snippets.node);
    void snippets.refresh(false);
  }

  /** Run the active cell or editor's code in the sandboxed kernel of this panel. */
  async runActive(): Promise<void> {
    const current = this.source.current();
    if (!current) {
      this.status.textContent = 'Open a notebook or a Python file first.';
      return;
    }
    if (this.run) {
      return;
    }
    this.runButton.disabled = true;
    this.banner.hidden = true;
    this.output.clear();
    this.status.textContent = `Running ${current.where}…`;
    try {
      const kernel = await this.ensureKernel();
      const timeoutSeconds = Math.max(0, Number(this.timeout.value) || 0);
      this.run = new Run(
        kernel,
        current.code,
        {
          output: output => this.output.add(output),
          clear: wait => this.output.clear(wait),
          input: (prompt, password) => this.stdin.ask(prompt, password)
        },
        { timeoutSeconds }
      );
      const result = await this.run.done;
      this.status.textContent = `${current.where}: ${result.status} · ${Math.round(result.durationMs)} ms`;
      this.status.dataset.status = result.status;
      const banner = bannerFor(result.status, { timeoutSeconds });
      if (banner) {
        this.banner.hidden = false;
        this.banner.className = `cr-banner cr-banner-${banner.level}`;
        this.banner.textContent = `${banner.title}: ${banner.detail}`;
      }
    } catch (error) {
      this.status.textContent = `The sandbox could not start: ${(error as Error).message}`;
    } finally {
      this.stdin.remove();
      this.run = null;
      this.runButton.disabled = false;
    }
  }

  /** The service's kernelspec; the default one when its health report cannot be read. */
  private kernelName(): Promise<string> {
    return this.api.kernelName().catch(() => DEFAULT_KERNEL);
  }

  private ensureKernel(): Promise<Kernel.IKernelConnection> {
    if (this.kernel && !this.kernel.isDisposed && this.kernel.status !== 'dead') {
      return Promise.resolve(this.kernel);
    }
    if (!this.starting) {
      this.status.textContent = 'Starting a sandbox…';
      this.starting = this.kernelName().then(name => this.services.kernels.startNew({ name })).then(
        kernel => {
          this.kernel = kernel;
          this.starting = null;
          return kernel;
        },
        error => {
          this.starting = null;
          throw error;
        }
      );
    }
    return this.starting;
  }

  dispose(): void {
    if (this.kernel && !this.kernel.isDisposed) {
      void this.kernel.shutdown();
    }
    super.dispose();
  }
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const b = Object.assign(document.createElement('button'), { type: 'button', textContent: label, className });
  b.classList.add('jp-Button', 'jp-mod-styled');
  b.addEventListener('click', onClick);
  return b;
}
