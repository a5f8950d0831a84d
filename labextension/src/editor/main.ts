/**
 * The standalone editor page at `{base_url}coderemote/`: Monaco, a sandboxed
 * kernel over the Jupyter kernel websocket, streamed output, the analysis
 * panel and the snippet library.
 */

import { type Kernel, KernelManager, ServerConnection } from '@jupyterlab/services';

import { CodeRemoteAPI } from '../common/api';
import { bannerFor, type RunStatus } from '../common/banner';
import { OutputArea } from '../common/outputs';
import { AnalysisPanel, SnippetPanel } from '../common/panels';
import { Run } from '../common/run';
import { InputPrompt } from '../common/stdin';
import { monaco, registerKernelProviders } from './monaco';
import { Credentials, type OidcConfig, PASTED_TOKEN_KEY } from './signin';
import './page.css';

/** Rendered into the page by the server (templates/index.html). */
interface PageConfig {
  baseUrl: string;
  staticUrl: string;
  kernelName: string;
  defaultTimeoutSeconds: number;
  /** Tokens are JWTs checked by the server (JWTIdentityProvider), not Jupyter's own token. */
  jwtMode: boolean;
  /** OpenID Connect sign-in, when the server names an issuer and client id. */
  oidc: OidcConfig | null;
}

/** JEP 119: how a browser sends a token on a websocket (it cannot set headers there). */
const WS_TOKEN_PROTOCOL = 'v1.token.websocket.jupyter.org';
const STARTER = `import time

for i in range(5):
    print("tick", i, flush=True)
    time.sleep(0.3)
`;

const config: PageConfig = JSON.parse(document.getElementById('coderemote-config')!.textContent!);

(self as unknown as { MonacoEnvironment: monaco.Environment }).MonacoEnvironment = {
  getWorkerUrl: () => `${config.staticUrl}editor.worker.js`
};

function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

/**
 * Every call reads the token anew, so a renewed one is used from the next call
 * on: `Authorization: Bearer` on HTTP; on the websocket the JEP 119
 * subprotocol in JWT mode (not in the URL, which servers log), Jupyter's
 * `?token=` otherwise.
 */
function serverSettings(credentials: Credentials): ServerConnection.ISettings {
  const wsUrl = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${config.baseUrl}`;
  class TokenWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      const token = credentials.token();
      const offered = protocols === undefined ? [] : Array.isArray(protocols) ? protocols : [protocols];
      if (token && config.jwtMode && offered.length > 0) {
        super(url, [...offered, `${WS_TOKEN_PROTOCOL}.${encodeURIComponent(token)}`]);
      } else if (token) {
        const withToken = new URL(url, location.href);
        withToken.searchParams.set('token', token);
        super(withToken, offered);
      } else {
        super(url, offered);
      }
    }
  }
  return ServerConnection.makeSettings({
    baseUrl: config.baseUrl,
    wsUrl,
    appendToken: false,
    WebSocket: TokenWebSocket,
    fetch: (input: RequestInfo, init?: RequestInit) => {
      const request = new Request(input, init);
      const token = credentials.token();
      if (token) {
        request.headers.set('Authorization', `Bearer ${token}`);
      }
      return fetch(request);
    }
  });
}

class EditorPage {
  private readonly credentials = new Credentials(
    config.oidc,
    new URL(`${config.baseUrl}coderemote/`, location.origin).href,
    () => this.showUser()
  );
  private settings = serverSettings(this.credentials);
  private api = new CodeRemoteAPI(this.settings);
  private kernels = new KernelManager({ serverSettings: this.settings });
  private kernel: Kernel.IKernelConnection | null = null;
  private run: Run | null = null;
  private readonly output = new OutputArea($('output'));
  private readonly stdin = new InputPrompt(this.output);
  private readonly editor: monaco.editor.IStandaloneCodeEditor;
  private readonly snippets: SnippetPanel;

  constructor() {
    this.editor = monaco.editor.create($('editor'), {
      value: STARTER,
      language: 'python',
      automaticLayout: true,
      minimap: { enabled: false },
      fontSize: 14,
      scrollBeyondLastLine: false,
      ariaLabel: 'Python code. Ctrl+Enter runs it; Ctrl+M then Tab moves focus out of the editor.',
      tabSize: 4
    });
    this.editor.addCommand(monaco.KeyMod.CtrlCmd | monaco.KeyCode.Enter, () => void this.runCode());
    registerKernelProviders(() => this.kernel);

    $('run').addEventListener('click', () => void this.runCode());
    $('interrupt').addEventListener('click', () => void this.interrupt());
    $('restart').addEventListener('click', () => void this.restart());
    $('timeout').setAttribute('value', String(config.defaultTimeoutSeconds));
    document.addEventListener('keydown', event => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && !this.editor.hasTextFocus()) {
        event.preventDefault();
        void this.runCode();
      }
    });

    const panelOptions = {
      api: this.api,
      getCode: () => this.editor.getValue(),
      onUnauthorized: () => this.showSignIn()
    };
    $('side').append(
      new AnalysisPanel(panelOptions).node,
      (this.snippets = new SnippetPanel({
        ...panelOptions,
        useLabel: 'Open',
        useSnippet: snippet => {
          this.editor.setValue(snippet.code);
          this.editor.focus();
        }
      })).node
    );
    this.setUpSignIn();
    window.addEventListener('pagehide', () => this.shutDownOnLeave());
  }

  async start(): Promise<void> {
    const state = await this.credentials.start();
    if (state === 'redirecting') {
      return; // on to the provider's sign-in page
    }
    this.showUser();
    if (state === 'failed') {
      this.showBanner('error', 'Not signed in', this.credentials.error);
      this.showSignIn();
      return;
    }
    void this.snippets.refresh(false);
    await this.startKernel();
  }

  private async startKernel(): Promise<void> {
    this.setKernelStatus('starting sandbox…');
    try {
      const kernel = await this.kernels.startNew({ name: config.kernelName });
      kernel.statusChanged.connect((_, status) => this.setKernelStatus(status));
      kernel.connectionStatusChanged.connect((_, status) => {
        if (status !== 'connected') {
          this.setKernelStatus(status);
        }
      });
      this.kernel = kernel;
      await kernel.info;
      this.setKernelStatus(kernel.status);
    } catch (error) {
      const status = (error as { response?: Response }).response?.status;
      if (status === 401 || status === 403) {
        this.showSignIn();
      }
      this.setKernelStatus('unavailable');
      this.showBanner('error', 'Sandbox unavailable', (error as Error).message);
    }
  }

  private async runCode(): Promise<void> {
    if (this.run) {
      return; // one run at a time: the kernel would queue it anyway
    }
    if (!this.kernel || this.kernel.isDisposed || this.kernel.status === 'dead') {
      await this.startKernel();
      if (!this.kernel) {
        return;
      }
    }
    const kernel = this.kernel;
    const timeoutSeconds = Math.max(0, Number(($('timeout') as HTMLInputElement).value) || 0);
    this.output.clear();
    this.hideBanner();
    this.setRunning(true);
    try {
      this.run = new Run(
        kernel,
        this.editor.getValue(),
        {
          output: output => this.output.add(output),
          clear: wait => this.output.clear(wait),
          input: (prompt, password) => this.stdin.ask(prompt, password)
        },
        { timeoutSeconds }
      );
      const result = await this.run.done;
      this.showResult(result.status, result.durationMs, timeoutSeconds);
    } catch (error) {
      this.showBanner('error', 'Could not run', (error as Error).message);
      $('run-status').textContent = 'not run';
      $('run-status').dataset.status = 'failed';
    } finally {
      this.run = null;
      this.setRunning(false);
      this.stdin.remove();
    }
  }

  private async interrupt(): Promise<void> {
    if (this.run) {
      await this.run.interrupt();
    } else {
      await this.kernel?.interrupt();
    }
  }

  private async restart(): Promise<void> {
    if (!this.kernel || this.kernel.isDisposed || this.kernel.status === 'dead') {
      return this.startKernel();
    }
    this.run?.restartedByUser();
    this.setKernelStatus('restarting');
    await this.kernel.restart();
  }

  private showResult(status: RunStatus, durationMs: number, timeoutSeconds: number): void {
    $('run-status').textContent = `${status} · ${Math.round(durationMs)} ms`;
    $('run-status').dataset.status = status;
    const banner = bannerFor(status, { timeoutSeconds });
    if (banner) {
      this.showBanner(banner.level, banner.title, banner.detail, status);
    }
  }

  private showBanner(level: string, title: string, detail: string, status = ''): void {
    const banner = $('banner');
    banner.hidden = false;
    banner.className = `cr-banner cr-banner-${level}`;
    banner.dataset.status = status;
    banner.replaceChildren(
      Object.assign(document.createElement('strong'), { textContent: title }),
      document.createTextNode(` ${detail}`)
    );
  }

  private hideBanner(): void {
    $('banner').hidden = true;
    $('banner').dataset.status = '';
  }

  private setRunning(running: boolean): void {
    ($('run') as HTMLButtonElement).disabled = running;
    document.body.classList.toggle('cr-running', running);
    if (running) {
      $('run-status').textContent = 'running…';
      $('run-status').dataset.status = 'running';
    }
  }

  private setKernelStatus(status: string): void {
    $('kernel-status').textContent = `Sandbox: ${status}`;
    $('kernel-status').dataset.status = status;
  }

  private setUpSignIn(): void {
    const dialog = $('signin') as HTMLDialogElement;
    $('signin-open').addEventListener('click', () => dialog.showModal());
    ($('signin-form') as HTMLFormElement).addEventListener('submit', event => {
      event.preventDefault();
      const token = ($('signin-token') as HTMLInputElement).value.trim();
      if (token) {
        sessionStorage.setItem(PASTED_TOKEN_KEY, token);
      } else {
        sessionStorage.removeItem(PASTED_TOKEN_KEY);
      }
      dialog.close();
      location.reload(); // every connection (REST and websocket) picks the token up
    });
    $('signin-cancel').addEventListener('click', () => dialog.close());
    if (this.credentials.oidcAvailable) {
      $('signin-oidc-part').hidden = false;
      $('signin-issuer').textContent = new URL(this.credentials.issuer).host;
      $('signin-oidc').addEventListener('click', () => void this.credentials.signIn());
    }
    $('signout').addEventListener('click', () => {
      void this.credentials.signOut().then(() => location.reload());
    });
  }

  /** The header says who the page calls the server as. */
  private showUser(): void {
    const name = this.credentials.userName();
    const pasted = !name && sessionStorage.getItem(PASTED_TOKEN_KEY);
    $('signin-user').hidden = !name;
    $('signin-user').textContent = name ? `Signed in as ${name}` : '';
    $('signout').hidden = !name && !pasted;
    if (name) {
      $('signin-open').hidden = true;
    } else if (pasted) {
      $('signin-open').hidden = false;
      $('signin-open').textContent = 'Signed in (change token)';
    }
    if (this.credentials.error && name) {
      this.showBanner('warning', 'Sign-in', this.credentials.error);
    }
  }

  private showSignIn(): void {
    $('signin-open').hidden = false;
    $('signin-open').textContent = 'Sign in';
    const dialog = $('signin') as HTMLDialogElement;
    if (!dialog.open) {
      dialog.showModal();
    }
  }

  /** The sandbox is not left running when the page goes away. */
  private shutDownOnLeave(): void {
    if (!this.kernel) {
      return;
    }
    const url = `${config.baseUrl}api/kernels/${encodeURIComponent(this.kernel.id)}`;
    const xsrf = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/)?.[1];
    const jwt = this.credentials.token();
    void fetch(url, {
      method: 'DELETE',
      keepalive: true,
      headers: {
        ...(xsrf ? { 'X-XSRFToken': decodeURIComponent(xsrf) } : {}),
        ...(jwt ? { Authorization: `Bearer ${jwt}` } : {})
      }
    });
  }
}

void new EditorPage().start();
