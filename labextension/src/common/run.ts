/**
 * Running code on a kernel over the Jupyter kernel protocol (websocket),
 * with output streamed as it comes, `input()` answered by the person, a run
 * timeout that interrupts, and the end of the run told as a `RunStatus`.
 */

import type { Kernel, KernelMessage } from '@jupyterlab/services';

import { deathStatus, type RunStatus } from './banner';
import type { JupyterOutput } from './outputs';

/** Metadata the sandboxed kernel adds to every execute_reply. */
const METADATA_KEY = 'coderemote';

export interface RunHandlers {
  /** Each output as it arrives (stream text, images, errors...). */
  output(output: JupyterOutput): void;
  clear(wait: boolean): void;
  /** The kernel asks for a line of input (`input()`); resolve with the answer. */
  input(prompt: string, password: boolean): Promise<string>;
}

export interface RunOptions {
  /** Interrupt the run after this many seconds; 0 for no limit. */
  timeoutSeconds: number;
  /** After an interrupt, how long the kernel has to answer before it is restarted. */
  interruptGraceMs?: number;
}

export interface RunResult {
  status: RunStatus;
  executionCount: number | null;
  durationMs: number;
}

/**
 * One run of `code`. `interrupt()` asks the kernel to stop; the promise of
 * `done` settles to how the run ended (never rejects).
 */
export class Run {
  readonly done: Promise<RunResult>;
  private interruptedByUser = false;
  private timedOut = false;
  private finish!: (status: RunStatus, count?: number | null) => void;

  constructor(
    private readonly kernel: Kernel.IKernelConnection,
    code: string,
    handlers: RunHandlers,
    private readonly options: RunOptions
  ) {
    const started = performance.now();
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    this.done = new Promise<RunResult>(resolve => {
      this.finish = (status, count = null) => {
        if (settled) {
          return;
        }
        settled = true;
        clearTimeout(timer);
        kernel.iopubMessage.disconnect(onStatus);
        resolve({ status, executionCount: count, durationMs: performance.now() - started });
      };
    });

    // A sandbox that dies mid-run: the server sends `restarting` (or `dead`).
    const onStatus = (_: unknown, msg: KernelMessage.IIOPubMessage): void => {
      if (KernelMessageIs.status(msg)) {
        const state = msg.content.execution_state as string;
        if (state === 'restarting' || state === 'dead') {
          this.finish(deathStatus(msg.content as never));
        }
      }
    };
    kernel.iopubMessage.connect(onStatus);

    const future = kernel.requestExecute(
      { code, allow_stdin: true, stop_on_error: true, store_history: true, silent: false },
      true
    );
    future.onIOPub = msg => {
      const type = msg.header.msg_type;
      if (type === 'stream' || type === 'display_data' || type === 'execute_result' || type === 'error') {
        handlers.output({ output_type: type, ...(msg.content as object) } as JupyterOutput);
      } else if (type === 'update_display_data') {
        handlers.output({ output_type: 'display_data', ...(msg.content as object) } as JupyterOutput);
      } else if (type === 'clear_output') {
        handlers.clear((msg.content as KernelMessage.IClearOutputMsg['content']).wait);
      }
    };
    future.onStdin = msg => {
      if (msg.header.msg_type !== 'input_request') {
        return;
      }
      const request = msg as KernelMessage.IInputRequestMsg;
      void handlers.input(request.content.prompt, request.content.password).then(value => {
        if (!future.isDisposed) {
          future.sendInputReply({ status: 'ok', value }, request.header);
        }
      });
    };
    future.done.then(
      reply => {
        const content = reply.content as KernelMessage.IExecuteReplyMsg['content'];
        const metadata = (reply.metadata ?? {}) as Record<string, { output_limit?: boolean } | undefined>;
        const count = 'execution_count' in content ? content.execution_count : null;
        this.finish(this.statusOf(content.status, metadata[METADATA_KEY]?.output_limit === true), count);
      },
      // The future is cancelled when the kernel restarts or the connection drops.
      () => this.finish(kernel.status === 'dead' ? 'killed' : this.statusOf('abort', false))
    );

    if (options.timeoutSeconds > 0) {
      timer = setTimeout(() => {
        this.timedOut = true;
        void this.stop();
      }, options.timeoutSeconds * 1000);
    }
  }

  /** Interrupt, as a person asked. */
  interrupt(): Promise<void> {
    this.interruptedByUser = true;
    return this.stop();
  }

  /** The person restarts the kernel under this run: it ends as interrupted, not as a dead sandbox. */
  restartedByUser(): void {
    this.interruptedByUser = true;
  }

  private statusOf(replyStatus: string, outputLimit: boolean): RunStatus {
    if (this.timedOut) {
      return 'timeout';
    }
    if (outputLimit) {
      return 'output_limit';
    }
    if (this.interruptedByUser) {
      return 'interrupted';
    }
    return replyStatus === 'ok' ? 'ok' : replyStatus === 'error' ? 'error' : 'killed';
  }

  /** Interrupt the kernel; restart it when the code does not stop in time (a C loop, a swallowed KeyboardInterrupt). */
  private async stop(): Promise<void> {
    const grace = this.options.interruptGraceMs ?? 2000;
    const stillRunning = new Promise<boolean>(resolve => {
      const timer = setTimeout(() => resolve(true), grace);
      void this.done.then(() => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    try {
      await this.kernel.interrupt();
    } catch {
      // Interrupt failed (kernel gone): the restart below handles it.
    }
    if (await stillRunning) {
      this.finish(this.statusOf('abort', false));
      await this.kernel.restart();
    }
  }
}

/** Message-type guards without importing the services runtime into pure modules. */
const KernelMessageIs = {
  status(msg: KernelMessage.IMessage): msg is KernelMessage.IStatusMsg {
    return msg.header.msg_type === 'status';
  }
};
