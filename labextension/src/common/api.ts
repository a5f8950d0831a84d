/**
 * Calls to the `coderemote` REST API (kernel_gateway_ext/openapi.json, docs/architecture.md) through
 * Jupyter's ServerConnection, which adds the XSRF token and the login.
 */

import { ServerConnection } from '@jupyterlab/services';

/** The kernelspec of a service whose health report does not name one. */
export const DEFAULT_KERNEL = 'python3-sandboxed';

/** An error answer of the API; `status` 404 means the route is not deployed here. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }

  get notAvailable(): boolean {
    return this.status === 404;
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** `path` is under `api/coderemote/`; the body is JSON both ways. */
export async function requestAPI<T>(
  settings: ServerConnection.ISettings,
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const url = `${settings.baseUrl}api/coderemote/${path}`;
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { message: text };
  }
  if (!response.ok) {
    const message = (body as { message?: string } | null)?.message || response.statusText;
    throw new ApiError(response.status, message);
  }
  return body as T;
}

/** The complexity report of `POST api/coderemote/analyze`. */
export interface AnalysisReport {
  time_complexity: string;
  space_complexity: string;
  explanation: string;
  patterns: string[];
  suggestions: string[];
  methods_used: string[];
  confidence: number;
  model_used: string | null;
}

export interface Snippet {
  id: string | number;
  name: string;
  description?: string;
  code: string;
  language?: string;
  /** Normalized from the server's `is_starred` (see `normalizeSnippet`). */
  starred?: boolean;
  is_starred?: boolean;
  time_complexity?: string | null;
  created_at?: string;
  updated_at?: string;
}

export interface SnippetQuery {
  starred?: boolean;
  q?: string;
  limit?: number;
  offset?: number;
}

/** The REST calls the panels make. */
export class CodeRemoteAPI {
  constructor(readonly settings: ServerConnection.ISettings) {}

  /** The kernelspec of the service's kernels (`CodeRemoteApp.kernel_name`), from its health report. */
  async kernelName(): Promise<string> {
    const health = await requestAPI<{ kernel_name?: string }>(this.settings, 'health');
    return health.kernel_name || DEFAULT_KERNEL;
  }

  /** `methods` omitted: every method the server offers (timed runs take seconds). */
  analyze(code: string, methods?: string[]): Promise<AnalysisReport> {
    return requestAPI(this.settings, 'analyze', { method: 'POST', body: JSON.stringify(methods ? { code, methods } : { code }) });
  }

  async listSnippets(query: SnippetQuery = {}): Promise<Snippet[]> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== '') {
        params.set(key, String(value));
      }
    }
    const body = await requestAPI<unknown>(this.settings, `snippets?${params}`);
    return snippetList(body);
  }

  async searchSnippets(q: string, limit = 20): Promise<{ snippet: Snippet; score: number }[]> {
    const params = new URLSearchParams({ q, limit: String(limit) });
    const hits = await requestAPI<{ snippet: Snippet; score: number }[]>(this.settings, `snippets/search?${params}`);
    return hits.map(hit => ({ ...hit, snippet: normalizeSnippet(hit.snippet) }));
  }

  async saveSnippet(snippet: { name: string; description: string; code: string; language: string }): Promise<Snippet> {
    return normalizeSnippet(await requestAPI(this.settings, 'snippets', { method: 'POST', body: JSON.stringify(snippet) }));
  }

  setStar(id: Snippet['id'], starred: boolean): Promise<unknown> {
    return requestAPI(this.settings, `snippets/${encodeURIComponent(id)}/star`, {
      method: starred ? 'PUT' : 'DELETE'
    });
  }

  deleteSnippet(id: Snippet['id']): Promise<unknown> {
    return requestAPI(this.settings, `snippets/${encodeURIComponent(id)}`, { method: 'DELETE' });
  }
}

/** The snippet list, whether the server answers a bare array or a page object (`{snippets, total}`). */
export function snippetList(body: unknown): Snippet[] {
  if (Array.isArray(body)) {
    return body.map(normalizeSnippet);
  }
  const page = (body ?? {}) as { snippets?: Snippet[]; items?: Snippet[]; results?: Snippet[] };
  return (page.snippets ?? page.items ?? page.results ?? []).map(normalizeSnippet);
}

/** The snippet library's API names the star `is_starred`; the panels read `starred`. */
export function normalizeSnippet(snippet: Snippet): Snippet {
  return { ...snippet, starred: Boolean(snippet.starred ?? snippet.is_starred) };
}
