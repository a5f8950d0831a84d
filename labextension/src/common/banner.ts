/**
 * How a run ended, and the banner a person sees for it.
 *
 * The statuses are those of the REST execute answer (kernel_gateway_ext/openapi.json) plus
 * `interrupted`, which only a person pressing Interrupt produces.
 */

export type RunStatus = 'ok' | 'error' | 'timeout' | 'memory_limit' | 'output_limit' | 'killed' | 'interrupted';

export interface Banner {
  status: RunStatus;
  /** `error` for limits and failures, `warning` for what the person asked for. */
  level: 'error' | 'warning';
  title: string;
  detail: string;
}

export interface BannerContext {
  /** The run timeout in seconds, for the `timeout` banner. */
  timeoutSeconds?: number;
}

/** The banner for a finished run; `null` when the run went well. */
export function bannerFor(status: RunStatus, context: BannerContext = {}): Banner | null {
  switch (status) {
    case 'ok':
      return null;
    case 'error':
      return { status, level: 'error', title: 'Error', detail: 'The code raised an exception; see the traceback below.' };
    case 'timeout': {
      const limit = context.timeoutSeconds !== undefined ? ` after ${context.timeoutSeconds} s` : '';
      return {
        status,
        level: 'error',
        title: 'Time limit reached',
        detail: `The run was stopped${limit}. Raise the run timeout or make the code faster.`
      };
    }
    case 'memory_limit':
      return {
        status,
        level: 'error',
        title: 'Memory limit reached',
        detail: 'The sandbox ran out of memory and was restarted; variables from earlier runs are gone.'
      };
    case 'output_limit':
      return {
        status,
        level: 'error',
        title: 'Output limit reached',
        detail: 'The program printed more than the sandbox allows; the rest of its output was cut.'
      };
    case 'killed':
      return {
        status,
        level: 'error',
        title: 'Sandbox stopped',
        detail: 'The sandbox ended unexpectedly and was restarted; variables from earlier runs are gone.'
      };
    case 'interrupted':
      return { status, level: 'warning', title: 'Interrupted', detail: 'The run was interrupted.' };
  }
}

/**
 * What a dead or restarting kernel means. The server's kernel websocket adds
 * `coderemote.reason` to the `restarting` status it sends when a sandbox dies
 * (`memory_limit` when the cgroup killed it for memory).
 */
export function deathStatus(statusContent: { coderemote?: { reason?: string } } | undefined): RunStatus {
  return statusContent?.coderemote?.reason === 'memory_limit' ? 'memory_limit' : 'killed';
}
